package spec

import (
	"reflect"
	"strings"
	"testing"
)

const minimal = "apiVersion: mxc.dev/v1alpha1\nkind: AgentPolicy\n"

func errStrings(err error) []string {
	var out []string
	for _, e := range Errors(err) {
		out = append(out, e.Error())
	}
	return out
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // every one must appear among the errors
	}{
		{"endPort above range", minimal + `
network:
  egress:
    allow:
      - to: [{host: api.openai.com}]
      - to: [{cidr: 192.0.2.0/24}]
        ports: [{protocol: tcp, port: 80, endPort: 70000}]
`, []string{"network.egress.allow[1].ports[0].endPort: 70000 is above 65535"}},
		{"unknown field", minimal + "netwrok: {}\n", []string{"netwrok: unknown field"}},
		{"kubernetes-style spec wrapper", minimal + "spec: {filesystem: {}}\n", []string{"spec: unknown field (a policy has no spec: section"}},
		{"unknown field suggestion", minimal + "filesystem: {readOnlyPaths: [/usr]}\n", []string{`filesystem.readOnlyPaths: unknown field (did you mean "readonlyPaths"?)`}},
		{"wrong type", minimal + "resources: {cpus: two}\n", []string{"resources.cpus: expected a number, got a string"}},
		{"wrong type list", minimal + "filesystem: {readonlyPaths: /usr}\n", []string{"filesystem.readonlyPaths: expected a list, got a string"}},
		{"yaml bool for string", minimal + "ui: {clipboard: no}\n", []string{"ui.clipboard: expected a string, got a boolean"}},
		{"fraction for int", minimal + "resources: {pids: 1.5}\n", []string{"resources.pids: 1.5 is not an integer"}},
		{"negative timeout", minimal + "process: {timeout: -1}\n", []string{"process.timeout: -1 is below 0"}},
		{"timeout above uint32", minimal + "process: {timeout: 4294967296}\n", []string{"process.timeout: 4294967296 is above 4294967295"}},
		{"port zero", minimal + "network: {egress: {allow: [{ports: [{port: 0}]}]}}\n", []string{"network.egress.allow[0].ports[0].port: 0 is below 1"}},
		{"empty to", minimal + "network: {egress: {allow: [{to: []}]}}\n", []string{"network.egress.allow[0].to: must not be empty"}},
		{"bad memory", minimal + "resources: {memory: 2GB}\n", []string{`resources.memory: "2GB" is not a size`}},
		{"missing apiVersion", "kind: AgentPolicy\n", []string{"apiVersion: required"}},
		{"wrong kind", "apiVersion: mxc.dev/v1alpha1\nkind: Pod\n", []string{`kind: "Pod" is not supported`}},
		{"duplicate key yaml", minimal + "mode: enforce\nmode: audit\n", []string{"already set"}},
		{"duplicate key json", `{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy","mode":"enforce","mode":"audit"}`, []string{"mode: duplicate key"}},
		{"two yaml documents", minimal + "---\n" + minimal, []string{"more than one YAML document"}},
		{"empty", "  \n", []string{"empty document"}},
		{"not an object", "[1, 2]", []string{"expected a policy object, got a list"}},
		{"bad json", `{"apiVersion": `, []string{"invalid JSON"}},
		{"too large", minimal + "#" + strings.Repeat("x", MaxDocumentSize), []string{"above the 1048576 byte limit"}},
		{"several at once", minimal + `
isolation: vm
mode: maybe
filesystem: {readonlyPaths: [usr, /a/../b], deniedPaths: [/]}
network:
  egress:
    default: block
    allow:
      - to: [{host: "*.com"}, {host: "*.github.io"}, {cidr: 192.0.2.1/24}, {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}, {host: a.b, cidr: 10.0.0.0/8}, {}]
        ports: [{protocol: sctp}, {port: 90, endPort: 80}, {endPort: 80}, {protocol: icmp, port: 1}]
ui: {clipboard: some}
resources: {cpus: 0.001, memory: 1Ki, pids: -1}
process: {capabilities: [net_admin, CAP_BOGUS]}
`, []string{
			`isolation: "vm" is not a tier`,
			`mode: "maybe" is not a mode`,
			`filesystem.readonlyPaths[0]: "usr" is not absolute`,
			`filesystem.readonlyPaths[1]: "/a/../b" is not clean (write /b)`,
			`filesystem.deniedPaths[0]: the root cannot be denied`,
			`network.egress.default: "block" is not an action`,
			`network.egress.allow[0].to[0].host: "*.com": a wildcard needs at least two labels after the star`,
			`network.egress.allow[0].to[1].host: "*.github.io": github.io is a public suffix`,
			`network.egress.allow[0].to[2].cidr: "192.0.2.1/24" has bits set after the prefix length (write 192.0.2.0/24)`,
			`network.egress.allow[0].to[3].except[0]: 11.0.0.0/16 is not inside 10.0.0.0/8`,
			`network.egress.allow[0].to[4]: give either host or cidr, not both`,
			`network.egress.allow[0].to[5]: give a host or a cidr`,
			`network.egress.allow[0].ports[0].protocol: "sctp" is not a protocol`,
			`network.egress.allow[0].ports[1].endPort: 80 is below port 90`,
			`network.egress.allow[0].ports[2].endPort: needs port`,
			`network.egress.allow[0].ports[3]: icmp has no ports`,
			`ui.clipboard: "some" is not a clipboard access`,
			`resources.cpus: 0.001 is below 0.01`,
			`resources.memory: 1Ki is below 4Mi`,
			`resources.pids: -1 is below 0`,
			`process.capabilities[0]: "net_admin": write CAP_NET_ADMIN`,
			`process.capabilities[1]: "CAP_BOGUS" is not a Linux capability`,
		}},
		{"several decode errors at once", minimal + "ui: {disable: 1}\nresources: {cpus: x}\nbogus: 1\n", []string{
			"ui.disable: expected true or false, got a number",
			"resources.cpus: expected a number, got a string",
			"bogus: unknown field",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := ParsePolicy([]byte(tt.doc))
			if err == nil {
				t.Fatalf("no error; policy %+v", p)
			}
			got := errStrings(err)
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					if strings.Contains(g, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing error %q in:\n%s", w, strings.Join(got, "\n"))
				}
			}
			if len(tt.want) > 1 && len(got) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
		})
	}
}

func TestParsePolicyYAMLAndJSONAgree(t *testing.T) {
	y := minimal + `
metadata: {name: a, labels: {team: x}}
identity: {agent: agent-1}
isolation: session
filesystem: {readonlyPaths: [/usr], readwritePaths: [/w], deniedPaths: [/w/.env]}
network:
  egress:
    default: deny
    allow: [{to: [{host: api.example.com}], ports: [{protocol: tcp, port: 443}]}]
  ingress: {default: deny, hostLoopback: allow}
ui: {disable: true, clipboard: none, injection: false}
resources: {cpus: 1.5, memory: 1.5Gi, pids: 100}
process: {timeout: 1000, capabilities: [CAP_CHOWN], allowPtrace: true}
lifecycle: {destroyOnExit: true, preservePolicy: false}
mode: audit
`
	j := `{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy",
"metadata":{"name":"a","labels":{"team":"x"}},"identity":{"agent":"agent-1"},"isolation":"session",
"filesystem":{"readonlyPaths":["/usr"],"readwritePaths":["/w"],"deniedPaths":["/w/.env"]},
"network":{"egress":{"default":"deny","allow":[{"to":[{"host":"api.example.com"}],"ports":[{"protocol":"tcp","port":443}]}]},
"ingress":{"default":"deny","hostLoopback":"allow"}},
"ui":{"disable":true,"clipboard":"none","injection":false},
"resources":{"cpus":1.5,"memory":1610612736,"pids":100},
"process":{"timeout":1000,"capabilities":["CAP_CHOWN"],"allowPtrace":true},
"lifecycle":{"destroyOnExit":true,"preservePolicy":false},"mode":"audit"}`
	py, _, err := ParsePolicy([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	pj, _, err := ParsePolicy([]byte(j))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(py, pj) {
		t.Fatalf("YAML and JSON differ:\n%+v\n%+v", py, pj)
	}
	if py.Resources.Memory != 1610612736 {
		t.Errorf("memory = %d", py.Resources.Memory)
	}
	if py.UI.Injection == nil || *py.UI.Injection {
		t.Errorf("injection = %v", py.UI.Injection)
	}
	// A YAML flow mapping that is not JSON still parses.
	if _, _, err := ParsePolicy([]byte("{apiVersion: mxc.dev/v1alpha1, kind: AgentPolicy}")); err != nil {
		t.Errorf("flow mapping: %v", err)
	}
}

func TestByteSize(t *testing.T) {
	good := map[string]ByteSize{
		"0": 0, "1024": 1024, "1Ki": 1024, "2Gi": 2 << 30, "512M": 512e6, "1.5Gi": 3 << 29, "1k": 1000, "1Ei": 1 << 60,
	}
	for in, want := range good {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2GB", "2m", "-1", "1/2Gi", "0x10", "1e3", "1.5", "8Ei", "Gi", " 1 Gi"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want error", in, got)
		}
	}
	for n, want := range map[ByteSize]string{0: "0", 1024: "1Ki", 2 << 30: "2Gi", 1536 << 20: "1536Mi", 1000: "1000"} {
		if got := n.String(); got != want {
			t.Errorf("String(%d) = %q, want %q", int64(n), got, want)
		}
	}
	var b ByteSize
	if err := b.UnmarshalJSON([]byte(`"2Gi"`)); err != nil || b != 2<<30 {
		t.Errorf("UnmarshalJSON: %d %v", b, err)
	}
	if err := b.UnmarshalJSON([]byte(`-5`)); err == nil {
		t.Error("negative size accepted")
	}
}
