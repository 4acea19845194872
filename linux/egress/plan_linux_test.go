package egress

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/spec"
)

func rangesString(rs []addrRange) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, " ")
}

func TestPeerRanges(t *testing.T) {
	for _, tc := range []struct {
		cidr   string
		except []string
		want   string
		err    string
	}{
		{cidr: "192.0.2.0/24", want: "192.0.2.0-192.0.2.255"},
		{cidr: "192.0.2.77/24", want: "192.0.2.0-192.0.2.255"},
		{cidr: "192.0.2.7", want: "192.0.2.7"},
		{cidr: "192.0.2.0/24", except: []string{"192.0.2.7/32"}, want: "192.0.2.0-192.0.2.6 192.0.2.8-192.0.2.255"},
		{cidr: "192.0.2.0/24", except: []string{"192.0.2.0/25", "192.0.2.255"}, want: "192.0.2.128-192.0.2.254"},
		{cidr: "192.0.2.0/24", except: []string{"192.0.2.0/24"}, want: ""},
		{cidr: "0.0.0.0/0", except: []string{"10.0.0.0/8"}, want: "0.0.0.0-9.255.255.255 11.0.0.0-255.255.255.255"},
		{cidr: "2001:db8::/32", except: []string{"2001:db8::/33"}, want: "2001:db8:8000::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{cidr: "::ffff:192.0.2.0/120", want: "192.0.2.0-192.0.2.255"},
		{cidr: "192.0.2.0/24", except: []string{"198.51.100.0/24"}, err: "outside cidr"},
		{cidr: "192.0.2.0/24", except: []string{"192.0.0.0/16"}, err: "outside cidr"},
		{cidr: "192.0.2.0/24", except: []string{"2001:db8::/32"}, err: "outside cidr"},
		{cidr: "192.0.2.0/33", err: "cidr"},
		{cidr: "example.com", err: "cidr"},
	} {
		rs, err := peerRanges(tc.cidr, tc.except)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("peerRanges(%s, %v) = %v, %v; want error %q", tc.cidr, tc.except, rs, err, tc.err)
			}
			continue
		}
		if err != nil || rangesString(mergeRanges(rs)) != tc.want {
			t.Errorf("peerRanges(%s, %v) = %q, %v; want %q", tc.cidr, tc.except, rangesString(rs), err, tc.want)
		}
	}
}

func TestMergeRanges(t *testing.T) {
	a := netip.MustParseAddr
	got := mergeRanges([]addrRange{
		{a("10.0.0.10"), a("10.0.0.20")},
		{a("10.0.0.0"), a("10.0.0.5")},
		{a("10.0.0.6"), a("10.0.0.9")},   // adjacent: joined
		{a("10.0.0.15"), a("10.0.0.30")}, // overlapping: joined
		{a("10.0.1.0"), a("10.0.1.0")},
		{a("255.255.255.0"), a("255.255.255.255")},
		{a("255.255.255.255"), a("255.255.255.255")},
	})
	if s := rangesString(got); s != "10.0.0.0-10.0.0.30 10.0.1.0 255.255.255.0-255.255.255.255" {
		t.Errorf("merge = %s", s)
	}
}

func TestIntervalElements(t *testing.T) {
	a := netip.MustParseAddr
	// As nft(8) encodes them: leading end marker, start keys, end keys one
	// past, none past the top.
	got := intervalElements([]addrRange{{a("10.0.0.0"), a("10.255.255.255")}, {a("192.168.1.0"), a("255.255.255.255")}})
	var s []string
	for _, e := range got {
		s = append(s, fmt.Sprintf("%v/%v", netip.AddrFrom4([4]byte(e.key)), e.end))
	}
	if j := strings.Join(s, " "); j != "0.0.0.0/true 10.0.0.0/false 11.0.0.0/true 192.168.1.0/false" {
		t.Errorf("elements = %s", j)
	}
	got = intervalElements([]addrRange{{a("0.0.0.0"), a("255.255.255.255")}})
	if len(got) != 1 || got[0].end {
		t.Errorf("0.0.0.0/0 elements = %v", got)
	}
}

func TestCompileErrorsNameTheField(t *testing.T) {
	base := func() *spec.AgentPolicy {
		return &spec.AgentPolicy{Network: &spec.Network{Egress: &spec.Egress{Default: spec.Deny, Allow: []spec.Rule{
			{To: []spec.Peer{{Host: "a.example.com"}}, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: 443}}},
			{To: []spec.Peer{{CIDR: "192.0.2.0/24"}}},
		}}}}
	}
	for _, tc := range []struct {
		mut  func(p *spec.AgentPolicy)
		want string
	}{
		{func(p *spec.AgentPolicy) { p.Network.Egress.Allow[0].To[0].Host = "*.com" }, "network.egress.allow[0].to[0].host"},
		{func(p *spec.AgentPolicy) { p.Network.Egress.Allow[1].To[0].Except = []string{"10.0.0.0/8"} }, "network.egress.allow[1].to[0]: except"},
		{func(p *spec.AgentPolicy) { p.Network.Egress.Allow[0].To[0].Except = []string{"10.0.0.0/8"} }, "network.egress.allow[0].to[0].except"},
		{func(p *spec.AgentPolicy) { p.Network.Egress.Allow[0].To[0].CIDR = "10.0.0.0/8" }, "host and cidr are exclusive"},
		{func(p *spec.AgentPolicy) { p.Network.Egress.Allow[0].To[0] = spec.Peer{} }, "needs a host or a cidr"},
		{func(p *spec.AgentPolicy) { p.Network.Egress.Allow[0].Ports[0].Protocol = "gre" }, "network.egress.allow[0].ports[0].protocol"},
		{func(p *spec.AgentPolicy) { p.Network.Egress.Allow[0].Ports[0].EndPort = 80 }, "network.egress.allow[0].ports[0].endPort"},
		{func(p *spec.AgentPolicy) { p.Network.Egress.Allow[0].Ports[0].Port = 70000 }, "network.egress.allow[0].ports[0].port"},
		{func(p *spec.AgentPolicy) {
			p.Network.Egress.Allow[0].Ports[0] = spec.Port{Protocol: spec.ProtoICMP, Port: 8}
		}, "icmp has no ports"},
		{func(p *spec.AgentPolicy) { p.Network.Egress.Default = "block" }, "network.egress.default"},
		{func(p *spec.AgentPolicy) { p.Mode = "warn" }, "mode"},
		{func(p *spec.AgentPolicy) {
			p.Network.Egress.Deny = []spec.Rule{{To: []spec.Peer{{Host: "x..y"}}}}
		}, "network.egress.deny[0].to[0].host"},
	} {
		p := base()
		tc.mut(p)
		_, err := compile(p, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want error containing %q, got %v", tc.want, err)
		}
	}
	if _, err := compile(base(), nil); err != nil {
		t.Fatalf("base policy: %v", err)
	}
}

func TestPorts(t *testing.T) {
	ps, err := compilePorts("r", []spec.Port{
		{Protocol: spec.ProtoTCP, Port: 443},
		{Protocol: spec.ProtoUDP, Port: 5000, EndPort: 5010},
		{Protocol: spec.ProtoAny, Port: 53},
		{Protocol: spec.ProtoICMP},
		{Protocol: spec.ProtoTCP}, // every TCP port
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []portSel{
		{proto: unix.IPPROTO_TCP, lo: 443, hi: 443},
		{proto: unix.IPPROTO_UDP, lo: 5000, hi: 5010},
		{proto: unix.IPPROTO_TCP, lo: 53, hi: 53}, {proto: unix.IPPROTO_UDP, lo: 53, hi: 53}, {proto: unix.IPPROTO_SCTP, lo: 53, hi: 53},
		{icmp: true},
		{proto: unix.IPPROTO_TCP},
	}
	if fmt.Sprint(ps) != fmt.Sprint(want) {
		t.Errorf("ports = %v, want %v", ps, want)
	}
	// "any" without a port: no port match at all.
	if ps, err := compilePorts("r", []spec.Port{{Protocol: spec.ProtoTCP, Port: 1}, {Protocol: spec.ProtoAny}}); err != nil || ps != nil {
		t.Errorf("any = %v, %v", ps, err)
	}
}

func testPlan(t *testing.T, mode spec.Mode) *plan {
	t.Helper()
	pl, err := compile(&spec.AgentPolicy{Mode: mode, Network: &spec.Network{
		Egress: &spec.Egress{Default: spec.Deny,
			Allow: []spec.Rule{
				{To: []spec.Peer{{Host: "api.example.com"}, {Host: "*.cdn.example.com"}, {Host: "both.example.com"}}},
				{To: []spec.Peer{{Host: "db.example.com"}}, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: 5432}}},
			},
			Deny: []spec.Rule{
				{To: []spec.Peer{{Host: "both.example.com"}}},
				{To: []spec.Peer{{Host: "*.example.com"}}, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: 25}}},
			}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func TestDecide(t *testing.T) {
	pl := testPlan(t, spec.ModeEnforce)
	for _, tc := range []struct {
		name         string
		answer       bool
		allow, deny  []string
		reasonSubstr string
	}{
		{name: "api.example.com", answer: true, allow: []string{"a0"}, deny: []string{"d1"}},
		{name: "x.cdn.example.com", answer: true, allow: []string{"a0"}, deny: []string{"d1"}},
		{name: "db.example.com", answer: true, allow: []string{"a1"}, deny: []string{"d1"}},
		{name: "cdn.example.com", answer: false, deny: []string{"d1"}, reasonSubstr: "not allowed"},
		{name: "both.example.com", answer: false, allow: []string{"a0"}, deny: []string{"d0", "d1"}, reasonSubstr: "deny rule network.egress.deny[0]"},
		{name: "other.test", answer: false, reasonSubstr: "not allowed"},
	} {
		v := pl.decide(tc.name)
		names := func(rs []*ruleSet) []string {
			var out []string
			for _, r := range rs {
				out = append(out, fmt.Sprintf("%c%d", r.kind, r.index))
			}
			return out
		}
		if v.answer != tc.answer || fmt.Sprint(names(v.allow)) != fmt.Sprint(tc.allow) || fmt.Sprint(names(v.deny)) != fmt.Sprint(tc.deny) ||
			!strings.Contains(v.reason, tc.reasonSubstr) || v.denied == tc.answer {
			t.Errorf("decide(%s) = %+v (allow %v deny %v)", tc.name, v, names(v.allow), names(v.deny))
		}
	}
	// Audit mode answers denied names but still reports them.
	v := testPlan(t, spec.ModeAudit).decide("other.test")
	if !v.answer || !v.denied {
		t.Errorf("audit decide = %+v", v)
	}
	// Default allow answers any name the deny rules leave alone.
	pl.egressDefault = spec.Allow
	if v := pl.decide("other.test"); !v.answer || v.denied {
		t.Errorf("default allow: %+v", v)
	}
	if v := pl.decide("both.example.com"); v.answer {
		t.Errorf("default allow, denied name: %+v", v)
	}
}

// TestResolves: resolves (does the gate need an upstream?) must be true
// whenever decide answers some name, so a policy that can answer a name
// never runs without a resolver.
func TestResolves(t *testing.T) {
	deny := &spec.Egress{Default: spec.Deny}
	for _, tc := range []struct {
		name   string
		egress *spec.Egress
		mode   spec.Mode
		want   bool
		probe  string // a name decide must answer when want is true
	}{
		{"offline: deny, no rules", deny, spec.ModeEnforce, false, ""},
		{"deny with CIDR allow only", &spec.Egress{Default: spec.Deny, Allow: []spec.Rule{{To: []spec.Peer{{CIDR: "192.0.2.0/24"}}}}}, spec.ModeEnforce, false, ""},
		{"deny with a named allow", &spec.Egress{Default: spec.Deny, Allow: []spec.Rule{{To: []spec.Peer{{Host: "api.example.com"}}}}}, spec.ModeEnforce, true, "api.example.com"},
		{"deny with an any-address allow", &spec.Egress{Default: spec.Deny, Allow: []spec.Rule{{Ports: []spec.Port{{Protocol: "tcp", Port: 443}}}}}, spec.ModeEnforce, true, "anything.test"},
		{"default allow", &spec.Egress{Default: spec.Allow}, spec.ModeEnforce, true, "anything.test"},
		{"offline in audit mode", deny, spec.ModeAudit, true, "anything.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := &spec.AgentPolicy{Mode: tc.mode, Network: &spec.Network{Egress: tc.egress}}
			pl, err := compile(pol, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := pl.resolves(); got != tc.want {
				t.Fatalf("resolves = %v, want %v", got, tc.want)
			}
			if tc.want && !pl.decide(tc.probe).answer {
				t.Errorf("decide(%s) does not answer", tc.probe)
			}
			for _, n := range []string{"api.example.com", "anything.test", "x.y.z"} {
				if !tc.want && pl.decide(n).answer {
					t.Errorf("resolves is false but decide(%s) answers", n)
				}
			}
		})
	}
}

func TestEnforces(t *testing.T) {
	open := &spec.AgentPolicy{Network: &spec.Network{Egress: &spec.Egress{Default: spec.Allow}, Ingress: &spec.Ingress{Default: spec.Allow, HostLoopback: spec.Allow}}}
	pl, _ := compile(open, nil)
	if pl.enforces() {
		t.Error("an all-allow policy enforces")
	}
	closed, _ := compile(&spec.AgentPolicy{}, nil)
	if !closed.enforces() || closed.egressDefault != spec.Deny {
		t.Error("an undefaulted policy must fail closed")
	}
}

// chainRules returns the rules of a chain in a built table.
func chainRules(ts *tableSpec, chain string) [][]expr.Any {
	var out [][]expr.Any
	for _, r := range ts.rules {
		if r.Chain.Name == chain {
			out = append(out, r.Exprs)
		}
	}
	return out
}

func hasExpr(rules [][]expr.Any, pred func(expr.Any) bool) bool {
	for _, r := range rules {
		for _, e := range r {
			if pred(e) {
				return true
			}
		}
	}
	return false
}

func TestBuildTableModes(t *testing.T) {
	isReject := func(e expr.Any) bool { _, ok := e.(*expr.Reject); return ok }
	isLog := func(e expr.Any) bool { l, ok := e.(*expr.Log); return ok && l.Group == NFLogGroup }
	for _, mode := range []spec.Mode{spec.ModeEnforce, spec.ModeAudit} {
		ts := buildTable(testPlan(t, mode))
		for _, ch := range []string{chainDenyRule, chainDenyDefault, chainDenyIn} {
			rules := chainRules(ts, ch)
			if !hasExpr(rules, isLog) {
				t.Errorf("%s: %s does not log", mode, ch)
			}
			if hasExpr(rules, isReject) != (mode == spec.ModeEnforce) {
				t.Errorf("%s: %s rejects = %v", mode, ch, !(mode == spec.ModeEnforce))
			}
		}
		// Deny rules come before allow rules in the egress chain.
		egress := chainRules(ts, chainEgress)
		firstAccept, lastDeny := -1, -1
		for i, r := range egress {
			v, ok := r[len(r)-1].(*expr.Verdict)
			if !ok {
				t.Fatalf("egress rule %d has no verdict", i)
			}
			if v.Kind == expr.VerdictJump && v.Chain == chainDenyRule {
				lastDeny = i
			}
			if v.Kind == expr.VerdictAccept && firstAccept < 0 && i > 1 { // 0,1: neighbour discovery
				firstAccept = i
			}
		}
		if lastDeny < 0 || firstAccept < 0 || lastDeny > firstAccept {
			t.Errorf("%s: deny rules (last %d) must precede allow rules (first %d)", mode, lastDeny, firstAccept)
		}
		if v := egress[len(egress)-1][0].(*expr.Verdict); v.Chain != chainDenyDefault {
			t.Errorf("%s: egress does not end in the default deny", mode)
		}
	}
	// Sets: a name set pair per rule with hosts, timeouts on.
	ts := buildTable(testPlan(t, spec.ModeEnforce))
	names := map[string]bool{}
	for _, s := range ts.sets {
		names[s.set.Name] = s.set.HasTimeout
	}
	for _, n := range []string{"a0_n4", "a0_n6", "a1_n4", "a1_n6", "d0_n4", "d1_n6"} {
		if !names[n] {
			t.Errorf("set %s missing or without timeout (%v)", n, names)
		}
	}
}

func TestAnswerAddrs(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ans := []dns.RR{
		rr("api.example.com. 300 IN CNAME edge.cdn.net."),
		rr("edge.cdn.net. 60 IN CNAME EDGE2.cdn.net."),
		rr("edge2.cdn.net. 30 IN A 192.0.2.1"),
		rr("edge2.cdn.net. 40 IN AAAA 2001:db8::1"),
		rr("unrelated.example. 30 IN A 192.0.2.99"), // not on the chain: ignored
		rr("loop.example. 30 IN CNAME api.example.com."),
	}
	got := answerAddrs(ans, "api.example.com")
	if len(got) != 2 || got[netip.MustParseAddr("192.0.2.1")] != 30 || got[netip.MustParseAddr("2001:db8::1")] != 40 {
		t.Errorf("answerAddrs = %v", got)
	}
	if c := cnameChain(ans, "api.example.com"); strings.Join(c, ",") != "api.example.com,edge.cdn.net,edge2.cdn.net" {
		t.Errorf("chain = %v", c)
	}
	// A CNAME loop ends.
	loop := []dns.RR{rr("a.example. 1 IN CNAME b.example."), rr("b.example. 1 IN CNAME a.example.")}
	if c := cnameChain(loop, "a.example"); len(c) != 2 {
		t.Errorf("loop chain = %v", c)
	}
}

func TestParseIPHeaders(t *testing.T) {
	v4 := []byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 192, 0, 2, 5, 203, 0, 113, 20, 0x9c, 0x40, 0, 80}
	var p loggedPacket
	if !parseIPHeaders(v4, &p) || p.dst.String() != "203.0.113.20" || p.dport != 80 || p.proto != 6 || p.sport != 40000 {
		t.Errorf("v4 = %+v", p)
	}
	v6 := make([]byte, 44)
	v6[0] = 0x60
	v6[6] = 17
	copy(v6[24:40], netip.MustParseAddr("2001:db8::20").AsSlice())
	v6[42], v6[43] = 0x1b, 0x58
	p = loggedPacket{}
	if !parseIPHeaders(v6, &p) || p.dst.String() != "2001:db8::20" || p.dport != 7000 || protoName(p.proto) != "udp" {
		t.Errorf("v6 = %+v", p)
	}
	for _, bad := range [][]byte{nil, {0x45}, {0x4f, 0, 0}, v4[:10], {0x70}} {
		if parseIPHeaders(bad, &loggedPacket{}) {
			t.Errorf("accepted %v", bad)
		}
	}
}
