package spec

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFSRulesDenyWins(t *testing.T) {
	eff := effOf(t, `filesystem:
  readonlyPaths: [/usr, /same, /d/inner, /both]
  readwritePaths: [/w, /same2, /d/rw, /both, /usr/local]
  deniedPaths: [/w/.env, /same, /same2, /d]`, nil)
	want := []PathRule{
		{"/both", AccessReadOnly}, {"/d", AccessDenied}, {"/same", AccessDenied}, {"/same2", AccessDenied},
		{"/usr", AccessReadOnly}, {"/w", AccessReadWrite}, {"/usr/local", AccessReadWrite}, {"/w/.env", AccessDenied},
	}
	if got := eff.FSRules(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	res := strings.Join(eff.Resolutions(), "\n")
	for _, w := range []string{
		"denied /w/.env lies inside read-write /w: deny wins, /w/.env is masked",
		"/same is both read-only and denied: deny wins",
		"/same2 is both read-write and denied: deny wins",
		"read-only /d/inner lies inside denied /d: deny wins, it is not reachable",
		"read-write /d/rw lies inside denied /d: deny wins, it is not reachable",
		"/both is both read-only and read-write: read-only wins (the stricter rule)",
	} {
		if !strings.Contains(res, w) {
			t.Errorf("missing resolution %q in:\n%s", w, res)
		}
	}
	if !eff.RestrictsFiles() {
		t.Error("grants given but RestrictsFiles false")
	}
	if eff := effOf(t, "filesystem: {deniedPaths: [/x]}", nil); eff.RestrictsFiles() {
		t.Error("only denied paths, RestrictsFiles true")
	}
	if eff := effOf(t, "", nil); eff.FSRules() != nil || eff.RestrictsFiles() {
		t.Error("no filesystem section, rules returned")
	}
}

func TestEgressDestinations(t *testing.T) {
	eff := effOf(t, `network:
  egress:
    allow:
      - to: [{host: API.Example.com.}, {host: "*.cdn.example.net"}, {cidr: 192.0.2.0/24, except: [192.0.2.7/32]}]
        ports: [{protocol: tcp, port: 443}, {port: 8000, endPort: 8100}]
      - ports: [{protocol: udp, port: 123}]
    deny:
      - to: [{host: bad.cdn.example.net}]
      - to: [{host: api.example.com}]
        ports: [{protocol: tcp, port: 80}]
      - to: [{cidr: 192.0.2.0/25}]
        ports: [{protocol: tcp, port: 443}]
`, nil)
	ports := []PortRange{{ProtoTCP, 443, 443}, {ProtoAny, 8000, 8100}}
	want := []Destination{
		{Host: "api.example.com", Ports: ports, Rule: "network.egress.allow[0]"},
		{Host: "cdn.example.net", Wildcard: true, Ports: ports, Rule: "network.egress.allow[0]"},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Except: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}, Ports: ports, Rule: "network.egress.allow[0]"},
		{Any: true, Ports: []PortRange{{ProtoUDP, 123, 123}}, Rule: "network.egress.allow[1]"},
	}
	if got := eff.EgressAllow(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if len(eff.EgressDeny()) != 3 {
		t.Errorf("deny: %+v", eff.EgressDeny())
	}
	names := map[string]bool{
		"api.example.com": true, "API.EXAMPLE.COM.": true, "a.cdn.example.net": true, "x.y.cdn.example.net": true,
		"cdn.example.net":     true, // the udp/123 rule to every address makes every name resolvable
		"bad.cdn.example.net": false,
	}
	for n, want := range names {
		if got := eff.AllowsName(n); got != want {
			t.Errorf("AllowsName(%q) = %v", n, got)
		}
	}
	res := strings.Join(eff.Resolutions(), "\n")
	for _, w := range []string{
		"network.egress.deny[0] (bad.cdn.example.net) overrides network.egress.allow[0] (any name under cdn.example.net) for tcp/443, any protocol/8000-8100: deny wins",
		"network.egress.deny[1] (api.example.com) overrides network.egress.allow[0] (api.example.com) for", // tcp/80 vs tcp/443 & any/8000-8100: no overlap
		"network.egress.deny[2] (192.0.2.0/25) overrides network.egress.allow[0] (192.0.2.0/24 except 192.0.2.7/32) for tcp/443: deny wins",
		"an allowed host name whose addresses fall in a denied range is blocked there: deny wins",
	} {
		if strings.Contains(w, "deny[1]") {
			if strings.Contains(res, w) {
				t.Errorf("non-overlapping ports reported: %s", res)
			}
			continue
		}
		if !strings.Contains(res, w) {
			t.Errorf("missing resolution %q in:\n%s", w, res)
		}
	}
	strict := effOf(t, "network: {egress: {allow: [{to: [{host: a.example.com}]}]}}", nil)
	if strict.AllowsName("b.example.com") || !strict.AllowsName("a.example.com") || strict.AllowsName("x.a.example.com") {
		t.Error("exact host matching")
	}
	open := effOf(t, "network: {egress: {default: allow, deny: [{to: [{host: '*.evil.example'}]}]}}", nil)
	if !open.AllowsName("anything.example") || open.AllowsName("a.evil.example") || !open.AllowsName("evil.example") {
		t.Error("default allow matching")
	}
}

func TestTimeout(t *testing.T) {
	if d := effOf(t, "process: {timeout: 1800000}", nil).Timeout(); d != 30*time.Minute {
		t.Errorf("timeout %v", d)
	}
}

func TestExplain(t *testing.T) {
	eff := effOf(t, `metadata: {name: demo}
identity: {agent: bot}
mode: audit
filesystem: {readonlyPaths: [/usr], readwritePaths: [/w, /usr/local], deniedPaths: [/w/.env]}
network:
  egress:
    allow: [{to: [{host: "*.example.com"}], ports: [{protocol: tcp, port: 443}]}]
    deny: [{to: [{host: x.example.com}]}]
resources: {cpus: 1, memory: 1536Mi, pids: 10}
process: {timeout: 90000}
`, nil)
	eff.Notes = []string{"process.commandLine: not used"}
	out := Explain(eff)
	for _, w := range []string{
		"Policy demo, digest sha256:", "Agent identity on audit events: bot", "Mode: AUDIT",
		"May read and write: /w, /usr/local", "May only read: /usr", "Can neither read nor write (masked): /w/.env",
		"Everything else in the container is out of reach.",
		"/usr/local is writable inside read-only /usr",
		"Outbound: only to", "any name under example.com, tcp/443", "Never to:", "x.example.com, every port",
		"Inbound from the private network: deny; host loopback: deny.",
		"No display", "Clipboard: none. Keyboard/mouse injection: not allowed.",
		"CPU: 1 CPUs", "Memory: 1.5 GiB", "Processes: at most 10", "Stopped after 1m30s.",
		"Where the policy both allows and denies (deny wins):",
		"denied /w/.env lies inside read-write /w: deny wins",
		"network.egress.deny[0] (x.example.com) overrides network.egress.allow[0] (any name under example.com) for tcp/443: deny wins",
		"Read but not used", "process.commandLine: not used",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	if !strings.Contains(Explain(effOf(t, "", nil)), "Outbound: no destination at all") {
		t.Error("default deny not explained")
	}
	if !strings.Contains(Explain(nil), "plain OCI container") {
		t.Error("nil")
	}
}
