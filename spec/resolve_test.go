package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func mustNode(t *testing.T, doc string) *NodeConfig {
	t.Helper()
	nc, err := ParseNodeConfig([]byte(doc))
	if err != nil {
		t.Fatalf("node config: %v", err)
	}
	return nc
}

func TestResolveNoPolicy(t *testing.T) {
	for name, node := range map[string]*NodeConfig{"nil node": nil, "empty node": {}, "ceiling only": {Ceiling: &Ceiling{MinIsolation: TierSession}}} {
		eff, err := Resolve(map[string]string{"other": "x"}, node, nil)
		if eff != nil || err != nil {
			t.Errorf("%s: got %v, %v; want nil, nil", name, eff, err)
		}
	}
	_, err := Resolve(nil, &NodeConfig{RequirePolicy: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "requirePolicy") {
		t.Errorf("requirePolicy: %v", err)
	}
}

func TestResolveDefaultsFilled(t *testing.T) {
	eff, err := Resolve(map[string]string{AnnotationIdentity: "a1"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := false
	want := AgentPolicy{
		APIVersion: APIVersion, Kind: Kind, Identity: &Identity{Agent: "a1"}, Isolation: TierProcess, Mode: ModeEnforce,
		Network: &Network{Egress: &Egress{Default: Deny}, Ingress: &Ingress{Default: Deny, HostLoopback: Deny}},
		UI:      &UI{Disable: true, Clipboard: "none", Injection: &f},
		Process: &Process{Capabilities: DefaultAgentCapabilities},
	}
	if !reflect.DeepEqual(eff.Policy, want) {
		t.Errorf("got  %s\nwant %s", compactJSON(eff.Policy), compactJSON(want))
	}
	if !strings.HasPrefix(eff.Digest, "sha256:") || len(eff.Digest) != 71 {
		t.Errorf("digest %q", eff.Digest)
	}
	if !reflect.DeepEqual(eff.Sources, []string{"annotation io.mxc.identity"}) {
		t.Errorf("sources %v", eff.Sources)
	}
	// The digest is stable and covers every field.
	again, _ := Resolve(map[string]string{AnnotationIdentity: "a1"}, nil, nil)
	other, _ := Resolve(map[string]string{AnnotationIdentity: "a2"}, nil, nil)
	if again.Digest != eff.Digest || other.Digest == eff.Digest {
		t.Errorf("digests %s %s %s", eff.Digest, again.Digest, other.Digest)
	}
	if eff.Timeout() != 0 || eff.EgressDefault() != Deny || eff.AllowsName("example.com") {
		t.Error("defaults are not deny-all")
	}
}

const nodeDoc = `
default:
  metadata: {name: node-default}
  isolation: process
  filesystem: {readonlyPaths: [/usr], readwritePaths: [/tmp]}
ceiling:
  minIsolation: process
  readwritePaths: [/workspace, /tmp]
  readonlyPaths: [/usr, /lib, /etc]
  deniedPaths: [/etc/shadow]
  egressAllow:
    - to: [{host: "*.example.com"}, {cidr: 10.0.0.0/8, except: [10.9.0.0/16]}]
      ports: [{protocol: tcp, port: 443}, {protocol: tcp, port: 8000, endPort: 8999}]
    - to: [{host: dns.example.net}]
  capabilities: [CAP_CHOWN, CAP_KILL, CAP_NET_RAW]
  maxResources: {cpus: 2, memory: 2Gi, pids: 100}
  maxTimeout: 60000
policies:
  web:
    metadata: {name: web}
    network: {egress: {allow: [{to: [{host: api.example.com}], ports: [{protocol: tcp, port: 443}]}]}}
policyDir: /etc/mxc/policies
`

func TestResolveLayers(t *testing.T) {
	node := mustNode(t, nodeDoc)
	loader := func(name string) ([]byte, error) {
		if name == "fromdir" {
			return []byte(minimal + "metadata: {name: fromdir}\nisolation: session\n"), nil
		}
		if name == "mxcdir" {
			return []byte(`{"version":"1.0.0","process":{"commandLine":"x"}}`), nil
		}
		return nil, fmt.Errorf("open /etc/mxc/policies/%s.yaml: %w", name, fs.ErrNotExist)
	}

	// No annotation: the node default, bounded and supplied by the ceiling.
	eff, err := Resolve(nil, node, loader)
	if err != nil {
		t.Fatal(err)
	}
	p := eff.Policy
	if p.Metadata.Name != "node-default" || !reflect.DeepEqual(p.Filesystem.DeniedPaths, []string{"/etc/shadow"}) ||
		p.Resources.CPUs != 2 || p.Resources.Memory != 2<<30 || p.Resources.Pids != 100 || p.Process.Timeout != 60000 ||
		!reflect.DeepEqual(p.Process.Capabilities, []string{"CAP_CHOWN", "CAP_KILL"}) {
		t.Errorf("node default: %s", compactJSON(p))
	}
	if !reflect.DeepEqual(eff.Sources, []string{"node default", "node ceiling"}) {
		t.Errorf("sources %v", eff.Sources)
	}

	// Short keys replace what they name in the node default.
	eff, err = Resolve(map[string]string{AnnotationIsolation: "session", AnnotationFSReadwrite: "/workspace"}, node, loader)
	if err != nil {
		t.Fatal(err)
	}
	if eff.Policy.Isolation != TierSession || !reflect.DeepEqual(eff.Policy.Filesystem.ReadwritePaths, []string{"/workspace"}) ||
		!reflect.DeepEqual(eff.Policy.Filesystem.ReadonlyPaths, []string{"/usr"}) {
		t.Errorf("short keys over default: %s", compactJSON(eff.Policy))
	}

	// A ref inline in the node config, with an identity layered on top.
	eff, err = Resolve(map[string]string{AnnotationPolicyRef: "web", AnnotationIdentity: "w1"}, node, loader)
	if err != nil {
		t.Fatal(err)
	}
	if eff.Policy.Metadata.Name != "web" || eff.Policy.Identity.Agent != "w1" || eff.Sources[0] != "policy ref web (node config)" {
		t.Errorf("ref: %s %v", compactJSON(eff.Policy), eff.Sources)
	}
	// The ceiling supplies file grants to a policy that names none.
	if !reflect.DeepEqual(eff.Policy.Filesystem.ReadwritePaths, []string{"/workspace", "/tmp"}) {
		t.Errorf("supplied grants: %s", compactJSON(eff.Policy.Filesystem))
	}

	// A ref from the policy directory, MXC documents included.
	eff, err = Resolve(map[string]string{AnnotationPolicyRef: "fromdir"}, node, loader)
	if err != nil || eff.Policy.Isolation != TierSession || !strings.HasPrefix(eff.Sources[0], "policy ref fromdir (policyDir") {
		t.Errorf("dir ref: %v %v", err, eff)
	}
	eff, err = Resolve(map[string]string{AnnotationPolicyRef: "mxcdir"}, node, loader)
	if err != nil || len(eff.Notes) != 1 {
		t.Errorf("mxc dir ref: %v %v", err, eff)
	}
	_, err = Resolve(map[string]string{AnnotationPolicyRef: "nope"}, node, loader)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing ref: %v", err)
	}
	_, err = Resolve(map[string]string{AnnotationPolicyRef: "nope"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `no policy named "nope" is installed`) {
		t.Errorf("missing ref without node: %v", err)
	}
}

func TestResolveConflicts(t *testing.T) {
	doc := `{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy","isolation":"session","identity":{"agent":"a"},
	  "filesystem":{"readonlyPaths":["/usr"]},"ui":{"disable":true},"mode":"enforce",
	  "network":{"egress":{"allow":[{"to":[{"host":"a.example.com"}]}]}}}`
	tests := []struct {
		key, value, want string
	}{
		{AnnotationIsolation, "process", "annotation io.mxc.isolation conflicts with isolation session in annotation io.mxc.policy"},
		{AnnotationIdentity, "b", `annotation io.mxc.identity conflicts with identity.agent "a"`},
		{AnnotationFSReadonly, "/lib", `annotation io.mxc.fs.readonly conflicts with filesystem.readonlyPaths ["/usr"]`},
		{AnnotationUI, "enable", "annotation io.mxc.ui conflicts with ui"},
		{AnnotationMode, "audit", "annotation io.mxc.mode conflicts with mode enforce"},
		{AnnotationNetworkAllow, "b.example.com", "annotation io.mxc.network.allow conflicts with network.egress.allow"},
	}
	for _, tt := range tests {
		_, err := Resolve(map[string]string{AnnotationPolicy: doc, tt.key: tt.value}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%s: err = %v, want %q", tt.key, tt.value, err, tt.want)
		}
	}
	// Repeating the document's value, or filling an unset field, is fine.
	for k, v := range map[string]string{AnnotationIsolation: "session", AnnotationIdentity: "a", AnnotationFSReadonly: "/usr",
		AnnotationFSDeny: "/usr/secret", AnnotationUI: "disable", AnnotationNetworkAllow: "a.example.com"} {
		if _, err := Resolve(map[string]string{AnnotationPolicy: doc, k: v}, nil, nil); err != nil {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}

func TestResolveCeiling(t *testing.T) {
	node := mustNode(t, nodeDoc)
	tests := []struct {
		name string
		doc  string
		want string // "" = accepted
	}{
		{"within", "isolation: session\nfilesystem: {readwritePaths: [/workspace/x]}\nnetwork: {egress: {allow: [{to: [{host: a.example.com}, {host: '*.b.example.com'}, {cidr: 10.1.0.0/16}], ports: [{protocol: tcp, port: 8080, endPort: 8090}]}, {to: [{host: dns.example.net}]}]}}\nresources: {cpus: 1}", ""},
		{"isolation below", "isolation: process\n", ""},
		{"min isolation", "isolation: process\n", ""},
		{"readwrite outside", "filesystem: {readwritePaths: [/home]}", "filesystem.readwritePaths[0]: read-write /home is beyond the node ceiling (ceiling.readwritePaths)"},
		{"readonly outside", "filesystem: {readonlyPaths: [/var]}", "filesystem.readonlyPaths[0]: read-only /var is beyond the node ceiling (ceiling.readonlyPaths)"},
		{"readonly under readwrite root", "filesystem: {readonlyPaths: [/workspace]}", ""},
		{"host outside", "network: {egress: {allow: [{to: [{host: example.com}]}]}}", "network.egress.allow[0].to[0]: example.com is beyond the node ceiling (ceiling.egressAllow)"},
		{"wildcard wider", "network: {egress: {allow: [{to: [{host: '*.com.example.com'}, {host: '*.example.com'}]}]}}", "network.egress.allow[0].to[0]: any protocol (every port) to any name under com.example.com is beyond"},
		{"port outside", "network: {egress: {allow: [{to: [{host: a.example.com}], ports: [{protocol: tcp, port: 22}]}]}}", "network.egress.allow[0].ports[0]: tcp/22 to a.example.com is beyond the node ceiling (ceiling.egressAllow)"},
		{"udp outside", "network: {egress: {allow: [{to: [{host: a.example.com}], ports: [{protocol: udp, port: 443}]}]}}", "udp/443 to a.example.com is beyond"},
		{"cidr wider", "network: {egress: {allow: [{to: [{cidr: 10.0.0.0/7}], ports: [{protocol: tcp, port: 443}]}]}}", "10.0.0.0/7 is beyond"},
		{"cidr into except", "network: {egress: {allow: [{to: [{cidr: 10.0.0.0/8}], ports: [{protocol: tcp, port: 443}]}]}}", "10.0.0.0/8 is beyond"},
		{"cidr excepting the hole", "network: {egress: {allow: [{to: [{cidr: 10.0.0.0/8, except: [10.8.0.0/13]}], ports: [{protocol: tcp, port: 443}]}]}}", ""},
		{"every address", "network: {egress: {allow: [{ports: [{protocol: tcp, port: 443}]}]}}", "network.egress.allow[0]: every address is beyond"},
		{"default allow", "network: {egress: {default: allow}}", "network.egress.default: allow is beyond the node ceiling (ceiling.allowEgressDefaultAllow)"},
		{"ingress", "network: {ingress: {default: allow, hostLoopback: allow}}", "network.ingress.hostLoopback: allow is beyond the node ceiling (ceiling.allowIngress)"},
		{"ui", "ui: {disable: false}", "ui: display, clipboard or input access is beyond the node ceiling (ceiling.allowUI)"},
		{"audit", "mode: audit", "mode: audit is beyond the node ceiling (ceiling.allowAudit)"},
		{"caps", "process: {capabilities: [CAP_SYS_ADMIN]}", "process.capabilities[0]: CAP_SYS_ADMIN is beyond the node ceiling (ceiling.capabilities)"},
		{"caps dangerous allowed", "process: {capabilities: [CAP_NET_RAW]}", ""},
		{"ptrace", "process: {allowPtrace: true}", "process.allowPtrace: true is beyond the node ceiling (ceiling.allowPtrace)"},
		{"cpus", "resources: {cpus: 3}", "resources.cpus: 3 is beyond the node ceiling (ceiling.maxResources.cpus 2)"},
		{"memory", "resources: {memory: 3Gi}", "resources.memory: 3Gi is beyond the node ceiling (ceiling.maxResources.memory 2Gi)"},
		{"pids", "resources: {pids: 101}", "resources.pids: 101 is beyond the node ceiling (ceiling.maxResources.pids 100)"},
		{"timeout", "process: {timeout: 60001}", "process.timeout: 60001 is beyond the node ceiling (ceiling.maxTimeout 60000)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := ParsePolicy([]byte(minimal + tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewEffective(p, node, nil, nil)
			if tt.want == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant %q", err, tt.want)
			}
		})
	}
	// The minimum tier.
	sess := mustNode(t, "ceiling: {minIsolation: session}")
	p, _, _ := ParsePolicy([]byte(minimal + "isolation: process"))
	if _, err := NewEffective(p, sess, nil, nil); err == nil || !strings.Contains(err.Error(), "isolation: process is below the node ceiling's minimum (ceiling.minIsolation session)") {
		t.Errorf("minIsolation: %v", err)
	}
	p, _, _ = ParsePolicy([]byte(minimal))
	if eff, err := NewEffective(p, sess, nil, nil); err != nil || eff.Policy.Isolation != TierSession {
		t.Errorf("minIsolation supplied: %v", err)
	}
	// Without any node config the dangerous capabilities still need a ceiling.
	p, _, _ = ParsePolicy([]byte(minimal + "process: {capabilities: [CAP_NET_ADMIN, CAP_MKNOD]}"))
	if _, err := NewEffective(p, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "process.capabilities[0]: CAP_NET_ADMIN is beyond the node ceiling (no node config allows it)") || strings.Contains(err.Error(), "MKNOD") {
		t.Errorf("no node config: %v", err)
	}
	// An empty egressAllow means no egress at all.
	p, _, _ = ParsePolicy([]byte(minimal + "network: {egress: {allow: [{to: [{host: a.example.com}]}]}}"))
	if _, err := NewEffective(p, mustNode(t, "ceiling: {allowUI: true}"), nil, nil); err == nil || !strings.Contains(err.Error(), "ceiling.egressAllow is empty") {
		t.Errorf("empty egressAllow: %v", err)
	}
	// Capabilities: a ceiling that leaves nothing of the default set.
	eff, err := NewEffective(&AgentPolicy{APIVersion: APIVersion, Kind: Kind}, mustNode(t, "ceiling: {capabilities: [CAP_SYS_TIME]}"), nil, nil)
	if err != nil || !eff.Policy.Process.NoCapabilities || len(eff.Policy.Process.Capabilities) != 0 {
		t.Errorf("no caps left: %v %s", err, compactJSON(eff.Policy.Process))
	}
}

func TestParseNodeConfigErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"ceilling: {}", "ceilling: unknown field"},
		{"ceiling: {minIsolation: vm}", `ceiling.minIsolation: "vm" is not a tier`},
		{"ceiling: {deniedPaths: [etc]}", `ceiling.deniedPaths[0]: "etc" is not absolute`},
		{"ceiling: {egressAllow: [{to: [{host: '*.com'}]}]}", "ceiling.egressAllow[0].to[0].host"},
		{"ceiling: {capabilities: [CAP_FOO]}", `ceiling.capabilities[0]: "CAP_FOO" is not a Linux capability`},
		{"ceiling: {maxResources: {memory: 1k}}", "ceiling.maxResources.memory"},
		{"ceiling: {maxTimeout: 5000000000}", "ceiling.maxTimeout: 5000000000 is above 4294967295"},
		{"ceiling: {minIsolation: session}\ndefault: {isolation: process}", "default.isolation: process is below the node ceiling's minimum"},
		{"default: {mode: loud}", `default.mode: "loud" is not a mode`},
		{"policies: {Bad_Name: {}}", `policies.Bad_Name: "Bad_Name" is not a valid policy name`},
		{"ceiling: {}\npolicies: {web: {mode: audit}}", "policies.web.mode: audit is beyond the node ceiling (ceiling.allowAudit)"},
		{"policyDir: etc/mxc", `policyDir: "etc/mxc" is not absolute`},
		{"dns: {upstreams: [8.8.8.8]}", `dns.upstreams[0]: "8.8.8.8" is not ip:port`},
		{"dns: {minTTL: 10, maxTTL: 5}", "dns.minTTL: 10 is above maxTTL 5"},
		{"session: {idBase: 4000000000, idSize: 65536, slots: 10000}", "session: idBase + idSize*slots"},
		{"session: {idBase: -1}", "session.idBase: -1 is below 0"},
		{"requirePolicy: yes please", "requirePolicy: expected true or false"},
	}
	for _, tt := range tests {
		_, err := ParseNodeConfig([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v\nwant %q", tt.doc, err, tt.want)
		}
	}
	nc := mustNode(t, "windows: {utilityVMPath: 'C:\\uvm'}\nsession: {idSize: 65536}\nallowDegraded: true\n")
	if !nc.AllowDegraded || nc.Windows.UtilityVMPath != `C:\uvm` {
		t.Errorf("%+v", nc)
	}
}

func TestParseEffective(t *testing.T) {
	eff := effOf(t, "metadata: {name: e}\nnetwork: {egress: {allow: [{to: [{host: API.example.com.}]}]}}", nil)
	if h := eff.Policy.Network.Egress.Allow[0].To[0].Host; h != "api.example.com" {
		t.Errorf("host not normalized: %q", h)
	}
	b, _ := json.Marshal(eff)
	back, err := ParseEffective(b)
	if err != nil || !reflect.DeepEqual(back, eff) {
		t.Fatalf("%v\n%s", err, b)
	}
	tampered := strings.Replace(string(b), `"name":"e"`, `"name":"f"`, 1)
	if _, err := ParseEffective([]byte(tampered)); err == nil || !strings.Contains(err.Error(), "digest: ") {
		t.Errorf("tampered: %v", err)
	}
	if _, err := ParseEffective([]byte(`{"policy":{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy","mode":"x"},"digest":"","extra":1}`)); err == nil || !strings.Contains(err.Error(), "extra: unknown field") {
		t.Errorf("strict: %v", err)
	}
}
