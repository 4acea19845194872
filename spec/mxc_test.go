package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// mxcFull is a one-shot request using every field of MXC 1.0.0's published
// OneShotRequest (schemas/stable/mxc-config.schema.1.0.0.json).
const mxcFull = `{
  "$schema": "https://github.com/microsoft/mxc/schemas/stable/mxc-config.schema.1.0.0.json",
  "_comment": ["any", "json", 1],
  "version": "1.0.0",
  "containerId": "c-123",
  "containment": "processcontainer",
  "fallback": {"allowDaclMutation": true},
  "filesystem": {"readonlyPaths": ["/usr"], "readwritePaths": ["/work"], "deniedPaths": ["/work/secret"]},
  "lifecycle": {"destroyOnExit": true, "preservePolicy": true},
  "lxc": {"distribution": "debian", "release": "bookworm"},
  "network": {
    "egress": {
      "default": "deny",
      "allow": [{"to": [{"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}], "ports": [{"protocol": "tcp", "port": 443, "endPort": 444}]}],
      "deny": [{"to": [{"cidr": "2001:db8::/32"}]}, {"ports": [{"protocol": "udp"}]}]
    },
    "ingress": {"default": "deny", "hostLoopback": "allow"}
  },
  "process": {"commandLine": "agent --run", "cwd": "/work", "env": ["A=1"], "inheritDefaultEnv": true, "timeout": 4294967295},
  "processContainer": {
    "capabilities": ["internetClient"],
    "captureDenials": {"mode": "block", "outputPath": "C:\\out", "retainEtl": false},
    "filesystem": {"enumeratePaths": ["C:\\x"]},
    "learningMode": false,
    "leastPrivilege": true,
    "network": {"allowedProxyPeer": "127.0.0.1:8080"},
    "ui": {"desktopSystemControl": false, "ime": true, "isolation": "desktop", "systemSettings": "none"}
  },
  "runtimeConfig": {"networkProxy": "http://127.0.0.1:3128"},
  "seatbelt": {"extraMachLookups": ["com.apple.x"], "guiAccess": false, "keychainAccess": false, "nestedPty": true, "profileOverride": "(version 1)"},
  "telemetry": {"enabled": false},
  "ui": {"disable": true, "clipboard": "read", "injection": false},
  "wslc": {"cpuCount": 2, "gpu": false, "image": "debian", "imageTarPath": "C:\\i.tar", "memoryMb": 2048,
           "portMappings": [{"containerPort": 80, "protocol": "tcp", "windowsPort": 8080}], "storagePath": "C:\\s", "targetOs": "linux"}
}`

func TestImportMXCFull(t *testing.T) {
	p, notes, err := ParsePolicy([]byte(mxcFull))
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	no := false
	want := &AgentPolicy{
		APIVersion: APIVersion, Kind: Kind, Isolation: TierProcess,
		Filesystem: &Filesystem{ReadonlyPaths: []string{"/usr"}, ReadwritePaths: []string{"/work"}, DeniedPaths: []string{"/work/secret"}},
		Network: &Network{
			Egress: &Egress{
				Default: Deny,
				Allow:   []Rule{{To: []Peer{{CIDR: "192.0.2.0/24", Except: []string{"192.0.2.128/25"}}}, Ports: []Port{{Protocol: ProtoTCP, Port: 443, EndPort: 444}}}},
				Deny:    []Rule{{To: []Peer{{CIDR: "2001:db8::/32"}}}, {Ports: []Port{{Protocol: ProtoUDP}}}},
			},
			Ingress: &Ingress{Default: Deny, HostLoopback: Allow},
		},
		UI:        &UI{Disable: true, Clipboard: "read", Injection: &no},
		Lifecycle: &Lifecycle{DestroyOnExit: &yes, PreservePolicy: &yes},
		Process:   &Process{Timeout: 4294967295},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", compactJSON(p), compactJSON(want))
	}
	wantNotes := []string{
		"process.commandLine", "process.cwd", "process.env", "process.inheritDefaultEnv", "containerId", "fallback",
		"lxc", "processContainer", "runtimeConfig.networkProxy", "seatbelt", "telemetry", "wslc",
	}
	if len(notes) != len(wantNotes) {
		t.Errorf("notes:\n%s", strings.Join(notes, "\n"))
	}
	for i, w := range wantNotes {
		if i < len(notes) && !strings.HasPrefix(notes[i], w+": not used") {
			t.Errorf("note %d = %q, want %s: not used ...", i, notes[i], w)
		}
	}
}

// TestMXCRoundTrip: the mapped sections read back exactly as MXC wrote
// them, and the converted policy survives its own JSON form unchanged.
func TestMXCRoundTrip(t *testing.T) {
	p, _, err := ParsePolicy([]byte(mxcFull))
	if err != nil {
		t.Fatal(err)
	}
	var orig map[string]json.RawMessage
	if err := json.Unmarshal([]byte(mxcFull), &orig); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	var mine map[string]json.RawMessage
	if err := json.Unmarshal(b, &mine); err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"filesystem", "network", "ui", "lifecycle"} {
		if canon(t, orig[section]) != canon(t, mine[section]) {
			t.Errorf("%s: MXC %s\nmxc %s", section, canon(t, orig[section]), canon(t, mine[section]))
		}
	}
	var proc struct {
		Timeout uint64 `json:"timeout"`
	}
	_ = json.Unmarshal(mine["process"], &proc)
	if proc.Timeout != 4294967295 {
		t.Errorf("process.timeout = %d", proc.Timeout)
	}
	again, notes, err := ParsePolicy(b)
	if err != nil || len(notes) != 0 {
		t.Fatalf("re-parse: %v %v", err, notes)
	}
	if !reflect.DeepEqual(p, again) {
		t.Errorf("round trip changed the policy:\n%s\n%s", b, compactJSON(again))
	}
}

func canon(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestMXCContainment(t *testing.T) {
	for c, want := range map[string]Tier{
		"process": TierProcess, "processcontainer": TierProcess, "bubblewrap": TierProcess, "seatbelt": TierProcess,
		"lxc": TierSession, "wslc": TierSession,
	} {
		doc := `{"version":"1.0.0","containment":"` + c + `","process":{"commandLine":"x"}}`
		p, notes, err := ParsePolicy([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		if p.Isolation != want {
			t.Errorf("%s -> %s, want %s", c, p.Isolation, want)
		}
		if c == "seatbelt" && !strings.Contains(strings.Join(notes, "\n"), "containment: seatbelt (macOS)") {
			t.Errorf("seatbelt: no note: %v", notes)
		}
	}
	doc := `{"version":"1.0.0","containment":"isolation_session","process":{"commandLine":"x"},
	  "network":{"egress":{"default":"allow"},"ingress":{"default":"allow","hostLoopback":"allow"}}}`
	p, _, err := ParsePolicy([]byte(doc))
	if err != nil || p.Isolation != TierSession || p.Network.Egress.Default != Allow {
		t.Errorf("isolation_session: %v %+v", err, p)
	}
}

func TestMXCErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"version", `{"version":"2.0.0","process":{"commandLine":"x"}}`, `version: 2.0.0 is not a supported MXC version`},
		{"missing process", `{"version":"1.0.0"}`, "process: required by MXC 1.0.0 one-shot requests"},
		{"empty commandLine", `{"version":"1.0.0","process":{"commandLine":""}}`, "process.commandLine: required and non-empty"},
		{"unknown field", `{"version":"1.0.0","process":{"commandLine":"x"},"bogus":1}`, "bogus: unknown field"},
		{"host is not MXC", `{"version":"1.0.0","process":{"commandLine":"x"},"network":{"egress":{"allow":[{"to":[{"host":"a.com"}]}]}}}`, "network.egress.allow[0].to[0].host: unknown field"},
		{"missing cidr", `{"version":"1.0.0","process":{"commandLine":"x"},"network":{"egress":{"allow":[{"to":[{"except":["10.0.0.0/9"]}]}]}}}`, "network.egress.allow[0].to[0].cidr: required by MXC 1.0.0"},
		{"bad containment", `{"version":"1.0.0","containment":"docker","process":{"commandLine":"x"}}`, `containment: "docker" is not an MXC 1.0.0 containment`},
		{"timeout range", `{"version":"1.0.0","process":{"commandLine":"x","timeout":4294967296}}`, "process.timeout: 4294967296 is above 4294967295"},
		{"endPort range", `{"version":"1.0.0","process":{"commandLine":"x"},"network":{"egress":{"allow":[{"ports":[{"port":1,"endPort":70000}]}]}}}`, "network.egress.allow[0].ports[0].endPort: 70000 is above 65535"},
		{"empty ports", `{"version":"1.0.0","process":{"commandLine":"x"},"network":{"egress":{"allow":[{"ports":[]}]}}}`, "network.egress.allow[0].ports: must not be empty"},
		{"isolation_session restricted", `{"version":"1.0.0","containment":"isolation_session","process":{"commandLine":"x"},"network":{"egress":{"default":"deny"},"ingress":{"default":"allow","hostLoopback":"allow"}}}`, "network.egress.default: MXC 1.0.0 requires allow"},
		{"isolation_session no network", `{"version":"1.0.0","containment":"isolation_session","process":{"commandLine":"x"}}`, "network: required by MXC 1.0.0 for containment isolation_session"},
		{"isolation_session proxy", `{"version":"1.0.0","containment":"isolation_session","process":{"commandLine":"x"},"runtimeConfig":{"networkProxy":"http://127.0.0.1:1"},"network":{"egress":{"default":"allow"},"ingress":{"default":"allow","hostLoopback":"allow"}}}`, "runtimeConfig.networkProxy: not allowed"},
		{"lxc required", `{"version":"1.0.0","process":{"commandLine":"x"},"lxc":{"distribution":"debian"}}`, "lxc.release: required"},
		{"pc capability", `{"version":"1.0.0","process":{"commandLine":"x"},"processContainer":{"capabilities":["a,b","LearningModeLogging"]}}`, "processContainer.capabilities[1]"},
		{"pc ui isolation", `{"version":"1.0.0","process":{"commandLine":"x"},"processContainer":{"ui":{"isolation":"none"}}}`, "processContainer.ui.isolation"},
		{"wslc port", `{"version":"1.0.0","process":{"commandLine":"x"},"wslc":{"portMappings":[{"containerPort":80}]}}`, "wslc.portMappings[0].windowsPort: required"},
		{"phase start", `{"version":"1.0.0","phase":"start","sandboxId":"s"}`, "carries no containment policy"},
		{"phase exec", `{"version":"1.0.0","phase":"exec","sandboxId":"s","process":{"commandLine":"x"}}`, "carries no containment policy"},
		{"phase bogus", `{"version":"1.0.0","phase":"run"}`, "is not an MXC 1.0.0 phase"},
		{"provision containment", `{"version":"1.0.0","phase":"provision","containment":"process"}`, "needs containment isolation_session or wslc"},
		{"provision unknown field", `{"version":"1.0.0","phase":"provision","containment":"wslc","process":{"commandLine":"x"}}`, "process: unknown field"},
		{"paths still checked", `{"version":"1.0.0","process":{"commandLine":"x"},"filesystem":{"readonlyPaths":["rel"]}}`, `filesystem.readonlyPaths[0]: "rel" is not absolute`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParsePolicy([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMXCProvision(t *testing.T) {
	p, notes, err := ParsePolicy([]byte(`{"version":"1.0.0","phase":"provision","containment":"wslc",
	  "filesystem":{"readwritePaths":["/w"]},"network":{"egress":{"default":"deny"}},"wslc":{"provision":{"image":"x"}},"telemetry":{"enabled":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Isolation != TierSession || p.Filesystem.ReadwritePaths[0] != "/w" || p.Network.Egress.Default != Deny || len(notes) != 2 {
		t.Errorf("wslc provision: %s %v", compactJSON(p), notes)
	}
	p, notes, err = ParsePolicy([]byte(`{"version":"1.0.0","phase":"provision","containment":"isolation_session",
	  "isolationSession":{"provision":{"appId":"a"}},"network":{"egress":{"default":"allow"},"ingress":{"default":"allow","hostLoopback":"allow"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Isolation != TierSession || p.Network.Ingress.HostLoopback != Allow || len(notes) != 1 {
		t.Errorf("isolation_session provision: %s %v", compactJSON(p), notes)
	}
}
