package hcs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	layerTop     = `C:\ProgramData\containerd\snapshots\12`
	layerBase    = `C:\ProgramData\containerd\snapshots\3`
	layerScratch = `C:\ProgramData\containerd\snapshots\15`
	uvmImage     = `C:\ProgramData\containerd\snapshots\3\UtilityVM`
	vol          = `\\?\Volume{1e5bbd1c-5d4e-4f0a-9b0c-6a0b3f6e2d11}\`
)

// baseSpec is a process-isolated Windows bundle as containerd hands it over.
func baseSpec() *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: "agent",
		Process: &specs.Process{
			Args: []string{`C:\tools\agent.exe`, "--task", "fix the build", `C:\work\repo\`},
			Env:  []string{`PATH=C:\Windows\System32;C:\tools`, "TASK_ID=42"},
			Cwd:  `C:\work`,
			User: specs.User{Username: "ContainerUser"},
		},
		Root:    &specs.Root{},
		Windows: &specs.Windows{LayerFolders: []string{layerTop, layerBase, layerScratch}},
	}
}

func workMounts(s *specs.Spec) {
	s.Mounts = []specs.Mount{
		{Source: `D:\agents\42\repo`, Destination: `C:\work\repo`},
		{Source: `D:\agents\42\cache`, Destination: `C:\work\cache`},
		{Source: `D:\tools`, Destination: `C:\tools`, Options: []string{"ro"}},
	}
}

func workFS() *spec.Filesystem {
	return &spec.Filesystem{
		ReadwritePaths: []string{`C:\work`},
		ReadonlyPaths:  []string{`C:\tools`, `C:\Windows`},
		DeniedPaths:    []string{`C:\Users\ContainerAdministrator`},
	}
}

func cidrRule(cidr string, except []string, ports ...spec.Port) spec.Rule {
	return spec.Rule{To: []spec.Peer{{CIDR: cidr, Except: except}}, Ports: ports}
}

type tcase struct {
	name   string
	spec   func(*specs.Spec)
	policy *spec.AgentPolicy // nil: no agent policy applies
	opts   func(*Options)
}

func cases() []tcase {
	tru := true
	return []tcase{
		// Plain translations: no agent policy, runhcs's behaviour.
		{name: "plain-process"},
		{name: "plain-volume-root", spec: func(s *specs.Spec) { s.Root.Path = vol }},
		{name: "plain-hyperv-spec", spec: func(s *specs.Spec) { s.Windows.HyperV = &specs.WindowsHyperV{UtilityVMPath: uvmImage} }},
		{name: "plain-mounts-and-pipe", spec: func(s *specs.Spec) {
			workMounts(s)
			s.Mounts = append(s.Mounts, specs.Mount{Source: `\\.\pipe\docker_engine`, Destination: `\\.\pipe\docker_engine`})
		}},
		{name: "plain-resources-annotations", spec: func(s *specs.Spec) {
			mem, bps, sandbox := uint64(4<<30), uint64(50<<20), uint64(20<<30)
			s.Windows.Resources = &specs.WindowsResources{
				Memory:  &specs.WindowsMemoryResources{Limit: &mem},
				Storage: &specs.WindowsStorageResources{Bps: &bps, SandboxSize: &sandbox},
			}
			s.Annotations = map[string]string{
				"io.microsoft.container.memory.sizeinmb":     "1024",
				"io.microsoft.container.processor.count":     "2",
				"io.microsoft.container.processdumplocation": `C:\dumps`,
				"io.kubernetes.cri.sandbox-id":               "abc",
			}
		}},
		{name: "plain-network", spec: func(s *specs.Spec) {
			s.Windows.Network = &specs.WindowsNetwork{EndpointList: []string{"6b1e7f0a-8a42-4d0e-9a3b-6f2c7b1d9e01"}, DNSSearchList: []string{"corp.example", "example"}, AllowUnqualifiedDNSQuery: true}
		}},
		{name: "plain-namespace", spec: func(s *specs.Spec) {
			s.Windows.Network = &specs.WindowsNetwork{NetworkNamespace: "0c9d9a61-3b0f-4b54-8a43-2d8c1f6a7e55"}
		}},
		{name: "plain-commandline-terminal", spec: func(s *specs.Spec) {
			s.Process.CommandLine = `cmd.exe /S /C "echo hi"`
			s.Process.Terminal = true
			s.Process.ConsoleSize = &specs.Box{Height: 40, Width: 120}
		}},

		// Tiers.
		{name: "tier-process", policy: &spec.AgentPolicy{Isolation: spec.TierProcess}},
		{name: "tier-session", policy: &spec.AgentPolicy{Isolation: spec.TierSession}},
		{name: "tier-microvm-node-uvm", policy: &spec.AgentPolicy{Isolation: spec.TierMicroVM},
			opts: func(o *Options) { o.UtilityVMPath = uvmImage }},
		{name: "tier-microvm-spec-uvm", policy: &spec.AgentPolicy{Isolation: spec.TierMicroVM},
			spec: func(s *specs.Spec) { s.Windows.HyperV = &specs.WindowsHyperV{UtilityVMPath: uvmImage} }},
		{name: "tier-process-spec-hyperv", policy: &spec.AgentPolicy{Isolation: spec.TierProcess},
			spec: func(s *specs.Spec) { s.Windows.HyperV = &specs.WindowsHyperV{UtilityVMPath: uvmImage} }},
		{name: "err-tier-microvm-no-uvm", policy: &spec.AgentPolicy{Isolation: spec.TierMicroVM}},

		// Filesystem.
		{name: "fs-mapped", spec: workMounts, policy: &spec.AgentPolicy{Filesystem: workFS()}},
		{name: "fs-readonly-forces-ro", policy: &spec.AgentPolicy{Filesystem: &spec.Filesystem{
			ReadwritePaths: []string{`C:\work`}, ReadonlyPaths: []string{`C:\data`},
		}}, spec: func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Source: `D:\datasets`, Destination: `c:/data/sets`}}
		}},
		{name: "err-fs-mount-not-covered", policy: &spec.AgentPolicy{Filesystem: workFS()}, spec: func(s *specs.Spec) {
			workMounts(s)
			s.Mounts = append(s.Mounts, specs.Mount{Source: `D:\secrets`, Destination: `C:\secrets`, Options: []string{"ro"}})
		}},
		{name: "err-fs-docker-pipe", policy: &spec.AgentPolicy{Filesystem: workFS()}, spec: func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Source: `\\.\pipe\docker_engine`, Destination: `\\.\pipe\docker_engine`}}
		}},
		{name: "err-fs-denied-inside-mapping", policy: &spec.AgentPolicy{Filesystem: &spec.Filesystem{
			ReadwritePaths: []string{`C:\work`}, DeniedPaths: []string{`C:\work\repo\.env`},
		}}, spec: workMounts},
		{name: "err-fs-denied-around-mapping", policy: &spec.AgentPolicy{Filesystem: &spec.Filesystem{
			ReadwritePaths: []string{`C:\work`}, DeniedPaths: []string{`C:\work\cache`},
		}}, spec: func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Source: `D:\agents\42\cache\npm`, Destination: `C:\work\cache\npm`}}
		}},
		{name: "err-fs-readonly-inside-writable", policy: &spec.AgentPolicy{Filesystem: &spec.Filesystem{
			ReadwritePaths: []string{`C:\work`}, ReadonlyPaths: []string{`C:\work\repo\.git`},
		}}, spec: workMounts},

		// Network.
		{name: "net-cidr-rules", policy: &spec.AgentPolicy{Network: &spec.Network{Egress: &spec.Egress{
			Default: spec.Deny,
			Allow: []spec.Rule{
				cidrRule("192.0.2.0/24", []string{"192.0.2.7/32", "192.0.2.128/25"}, spec.Port{Protocol: spec.ProtoTCP, Port: 5432, EndPort: 5433}, spec.Port{Protocol: spec.ProtoTCP, Port: 443}),
				cidrRule("2001:db8::/32", nil, spec.Port{Protocol: spec.ProtoAny, Port: 53}),
				cidrRule("198.51.100.10/32", nil, spec.Port{Protocol: spec.ProtoICMP}),
			},
			Deny: []spec.Rule{cidrRule("192.0.2.64/26", nil)},
		}}}, spec: func(s *specs.Spec) {
			s.Windows.Network = &specs.WindowsNetwork{EndpointList: []string{"6b1e7f0a-8a42-4d0e-9a3b-6f2c7b1d9e01"}}
		}},
		{name: "net-default-allow-with-deny", policy: &spec.AgentPolicy{Network: &spec.Network{
			Egress:  &spec.Egress{Default: spec.Allow, Deny: []spec.Rule{cidrRule("169.254.169.254/32", nil)}},
			Ingress: &spec.Ingress{Default: spec.Allow, HostLoopback: spec.Allow},
		}}},
		{name: "net-all-allow", policy: &spec.AgentPolicy{Network: &spec.Network{
			Egress:  &spec.Egress{Default: spec.Allow},
			Ingress: &spec.Ingress{Default: spec.Allow, HostLoopback: spec.Deny},
		}}},
		{name: "err-net-host-rule", policy: &spec.AgentPolicy{Network: &spec.Network{Egress: &spec.Egress{
			Allow: []spec.Rule{
				cidrRule("192.0.2.0/24", nil),
				{To: []spec.Peer{{Host: "api.openai.com"}}, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: 443}}},
			},
		}}}},
		{name: "err-net-shared-stack", policy: &spec.AgentPolicy{}, spec: func(s *specs.Spec) {
			s.Windows.Network = &specs.WindowsNetwork{NetworkSharedContainerName: "pause-1"}
		}},

		// Resources.
		{name: "res-process", policy: &spec.AgentPolicy{Resources: &spec.Resources{CPUs: 1.5, Memory: 2 << 30}}, spec: func(s *specs.Spec) {
			mem := uint64(8 << 30)
			shares := uint16(500)
			s.Windows.Resources = &specs.WindowsResources{Memory: &specs.WindowsMemoryResources{Limit: &mem}, CPU: &specs.WindowsCPUResources{Shares: &shares}}
		}},
		{name: "res-process-count-within", policy: &spec.AgentPolicy{Resources: &spec.Resources{CPUs: 4}}, spec: func(s *specs.Spec) {
			n := uint64(2)
			s.Windows.Resources = &specs.WindowsResources{CPU: &specs.WindowsCPUResources{Count: &n}}
		}},
		{name: "res-process-count-above", policy: &spec.AgentPolicy{Resources: &spec.Resources{CPUs: 2}}, spec: func(s *specs.Spec) {
			n := uint64(6)
			s.Windows.Resources = &specs.WindowsResources{CPU: &specs.WindowsCPUResources{Count: &n}}
		}},
		{name: "res-hyperv", policy: &spec.AgentPolicy{Isolation: spec.TierMicroVM, Resources: &spec.Resources{CPUs: 1.5, Memory: 1 << 30}},
			opts: func(o *Options) { o.UtilityVMPath = uvmImage }},
		{name: "res-cpus-above-host", policy: &spec.AgentPolicy{Resources: &spec.Resources{CPUs: 64}}},
		{name: "err-res-annotation-memory-above-policy", policy: &spec.AgentPolicy{Resources: &spec.Resources{Memory: 1 << 30}},
			spec: func(s *specs.Spec) {
				s.Annotations = map[string]string{"io.microsoft.container.memory.sizeinmb": "4096"}
			}},
		{name: "err-res-annotation-cpu-above-policy", policy: &spec.AgentPolicy{Resources: &spec.Resources{CPUs: 1}},
			spec: func(s *specs.Spec) { s.Annotations = map[string]string{"io.microsoft.container.processor.count": "4"} }},
		{name: "err-res-annotation-weight-with-cap", policy: &spec.AgentPolicy{Resources: &spec.Resources{CPUs: 1}},
			spec: func(s *specs.Spec) {
				s.Annotations = map[string]string{"io.microsoft.container.processor.weight": "200"}
			}},
		{name: "err-res-pids", policy: &spec.AgentPolicy{Resources: &spec.Resources{Pids: 256}}},
		{name: "res-pids-degraded", policy: &spec.AgentPolicy{Resources: &spec.Resources{Pids: 256}},
			opts: func(o *Options) { o.AllowDegraded = true }},
		{name: "err-res-cpu-mutually-exclusive", spec: func(s *specs.Spec) {
			n, m := uint64(2), uint16(5000)
			s.Windows.Resources = &specs.WindowsResources{CPU: &specs.WindowsCPUResources{Count: &n, Maximum: &m}}
		}},

		// hcsshim annotations.
		{name: "err-ann-hostprocess", policy: &spec.AgentPolicy{},
			spec: func(s *specs.Spec) { s.Annotations = map[string]string{"microsoft.com/hostprocess-container": "true"} }},
		{name: "err-ann-no-writable-shares", spec: func(s *specs.Spec) {
			workMounts(s)
			s.Annotations = map[string]string{"io.microsoft.disable-unsafe-operations": "true"}
		}},
		{name: "err-ann-bad-value", spec: func(s *specs.Spec) {
			s.Annotations = map[string]string{"io.microsoft.container.memory.sizeinmb": "2G"}
		}},
		{name: "err-ann-confidential", spec: func(s *specs.Spec) {
			s.Annotations = map[string]string{"io.microsoft.virtualmachine.wcow.securitypolicy": "e30="}
		}},

		// The rest of the policy.
		{name: "policy-ui-timeout-audit", policy: &spec.AgentPolicy{
			Identity: &spec.Identity{Agent: "codex-build-42"},
			UI:       &spec.UI{Disable: true, Clipboard: "none", Injection: new(bool)},
			Process:  &spec.Process{Timeout: 1800000},
			Mode:     spec.ModeAudit,
		}},
		{name: "err-policy-devices", policy: &spec.AgentPolicy{UI: &spec.UI{Disable: true, Injection: &tru}}, spec: func(s *specs.Spec) {
			s.Windows.Devices = []specs.WindowsDevice{{ID: "5B45201D-F2F2-4F3B-85BB-30FF1F953599", IDType: "class"}}
		}},

		// Spec errors.
		{name: "err-no-windows", spec: func(s *specs.Spec) { s.Windows = nil }},
		{name: "err-lcow", spec: func(s *specs.Spec) { s.Linux = &specs.Linux{} }},
		{name: "err-one-layer", spec: func(s *specs.Spec) { s.Windows.LayerFolders = []string{layerScratch} }},
		{name: "err-root-readonly", spec: func(s *specs.Spec) { s.Root.Readonly = true }},
		{name: "err-root-path", spec: func(s *specs.Spec) { s.Root.Path = `C:\rootfs` }},
		{name: "err-no-args", spec: func(s *specs.Spec) { s.Process.Args = nil }},
		{name: "err-bad-env", spec: func(s *specs.Spec) { s.Process.Env = []string{"NOEQUALS"} }},
		{name: "err-affinity", spec: func(s *specs.Spec) {
			s.Windows.Resources = &specs.WindowsResources{CPU: &specs.WindowsCPUResources{Affinity: []specs.WindowsCPUGroupAffinity{{Mask: 3}}}}
		}},
	}
}

// golden is one document per case in testdata/.
type golden struct {
	Case   string            `json:"case"`
	Policy *spec.AgentPolicy `json:"policy,omitempty"`
	Result *Result           `json:"result,omitempty"`
	Error  string            `json:"error,omitempty"`
}

func run(t *testing.T, tc tcase) golden {
	t.Helper()
	s := baseSpec()
	if tc.spec != nil {
		tc.spec(s)
	}
	var eff *spec.Effective
	if tc.policy != nil {
		tc.policy.APIVersion, tc.policy.Kind = spec.APIVersion, spec.Kind
		var err error
		eff, err = spec.NewEffective(tc.policy, nil, []string{"test"}, nil)
		if err != nil {
			t.Fatalf("test policy is not valid: %v", err)
		}
	}
	opts := Options{ID: "agent-42", HostCPUs: 8}
	if tc.opts != nil {
		tc.opts(&opts)
	}
	before, _ := json.Marshal(s)
	res, err := Translate(s, eff, opts)
	after, _ := json.Marshal(s)
	if !bytes.Equal(before, after) {
		t.Errorf("Translate modified the spec")
	}
	g := golden{Case: tc.name, Policy: tc.policy, Result: res}
	if err != nil {
		g.Error = err.Error()
		if res != nil {
			t.Errorf("error with a result")
		}
	}
	if strings.HasPrefix(tc.name, "err-") != (err != nil) {
		t.Errorf("case %s: error = %v; cases named err-* must fail and only they", tc.name, err)
	}
	return g
}

func TestTranslateGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			if seen[tc.name] {
				t.Fatalf("duplicate case name")
			}
			seen[tc.name] = true
			g := run(t, tc)
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./hcs -run TestTranslateGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the translation (go test ./hcs -update rewrites it after review):\n--- got\n%s", path, got)
			}
		})
	}
	// A golden file without a case is a stale document.
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); !seen[name] {
			t.Errorf("%s has no test case", f)
		}
	}
}
