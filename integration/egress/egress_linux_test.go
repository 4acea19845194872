package egress_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/integration/egress/lab"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/spec"
)

func TestAllowedNameReachableTCPAndUDP(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	addrs := c.mustResolve(t, "allowed.test", "A")
	if addrs[0] != "203.0.113.10" {
		t.Fatalf("allowed.test = %v", addrs)
	}
	c.mustReach(t, "tcp", tcpAddr(addrs[0], lab.TCPPort))
	c.mustReach(t, "udp", tcpAddr(addrs[0], lab.UDPPort))
	// The same address on a port the rule does not name is refused.
	c.mustBeRefused(t, "tcp", tcpAddr(addrs[0], lab.TCPPort2))
	// Clients are told at most MaxTTL (5s), whatever the zone says (60s).
	r := c.resolve(t, "allowed.test", "A")
	for _, ttl := range r.TTLs {
		if ttl > 5 {
			t.Errorf("client TTL %d exceeds dns.maxTTL 5", ttl)
		}
	}
}

// An answer too big for UDP: the upstream cuts it and sets TC, the gate
// asks again over TCP and allows every address of the whole answer, then
// cuts its own UDP answer to the client's size. A client that asks over
// TCP gets it whole.
func TestLargeAnswerRetriedOverTCP(t *testing.T) {
	p := policy(spec.ModeEnforce)
	p.Network.Egress.Allow[0].To = append(p.Network.Egress.Allow[0].To, spec.Peer{Host: "many.test"})
	c := newCtr(t, p)
	r := c.resolve(t, "many.test", "A")
	if !r.OK || !r.Truncated || len(r.Addrs) == 0 || len(r.Addrs) >= 40 || slices.Contains(r.Addrs, lab.ManyLast) {
		t.Fatalf("many.test over UDP: want a truncated answer without %s, got %+v", lab.ManyLast, r)
	}
	// Allowed although the client never saw it: the gate learnt the whole
	// answer over TCP.
	c.mustReach(t, "tcp", tcpAddr(lab.ManyLast, lab.TCPPort))
	r = c.client(t, "dns", lab.UpstreamDNS+":53", "many.test", "A", "tcp")
	if !r.OK || r.Truncated || len(r.Addrs) != 40 || !slices.Contains(r.Addrs, lab.ManyLast) {
		t.Fatalf("many.test over TCP: want all 40 addresses, got %+v", r)
	}
}

func TestOtherNameRefusedAndNeverForwarded(t *testing.T) {
	// Only this test's queries: audit-mode tests forward denied.test (and
	// with -count=2 they ran before this one).
	before := len(theLab.Upstream.Queries())
	c := newCtr(t, policy(spec.ModeEnforce))
	for _, name := range []string{"denied.test", "c2VjcmV0LWRhdGE.exfil.test", "wild.test", "edge.outside.test"} {
		r := c.resolve(t, name, "A")
		if r.OK || r.Rcode != "REFUSED" {
			t.Errorf("%s: want REFUSED, got %+v", name, r)
		}
		r = c.client(t, "dns", lab.UpstreamDNS+":53", name, "TXT", "tcp")
		if r.Rcode != "REFUSED" {
			t.Errorf("%s TXT over TCP: want REFUSED, got %+v", name, r)
		}
	}
	// The exfiltration test: the upstream never saw a denied label.
	for _, q := range theLab.Upstream.Queries()[before:] {
		if strings.Contains(q, "exfil") || q == "denied.test" || q == "wild.test" {
			t.Errorf("upstream saw denied query %q", q)
		}
	}
	e := c.waitEvent(t, audit.KindDNSDeny, func(e audit.Event) bool { return e.Detail["name"] == "c2vjcmv0lwrhdge.exfil.test" })
	if e.Container != c.cfg.ContainerID || e.Agent != "lab-agent" || e.Mode != "" {
		t.Errorf("dns.deny event: %+v", e)
	}
}

func TestDirectAddressRefusedAtOnce(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	c.mustBeRefused(t, "tcp", tcpAddr("203.0.113.20", lab.TCPPort))
	c.mustBeRefused(t, "udp", tcpAddr("203.0.113.20", lab.UDPPort))
	c.mustBeRefused(t, "tcp", tcpAddr("2001:db8:10::20", lab.TCPPort))
	e := c.waitEvent(t, audit.KindNetDeny, func(e audit.Event) bool {
		return e.Detail["dst"] == "203.0.113.20" && e.Detail["port"] == "80" && e.Detail["proto"] == "tcp"
	})
	if e.Detail["direction"] != "egress" || e.Detail["reason"] != "not allowed" || e.Agent != "lab-agent" {
		t.Errorf("net.deny event: %+v", e)
	}
	// Docker's embedded resolver address is only reachable through the gate.
	c.mustBeRefused(t, "tcp", "127.0.0.11:5353")
}

func TestForeignResolverRedirected(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	before := len(theLab.Rogue.Queries())
	for _, server := range []string{lab.RogueDNS + ":53", "203.0.113.99:53", "[2001:db8:ff:1::2]:53"} {
		for _, proto := range []string{"udp", "tcp"} {
			r := c.client(t, "dns", server, "allowed.test", "A", proto)
			if !r.OK || len(r.Addrs) != 1 || r.Addrs[0] != "203.0.113.10" {
				t.Errorf("query to %s/%s: want the gate's answer 203.0.113.10, got %+v", server, proto, r)
			}
			r = c.client(t, "dns", server, "denied.test", "A", proto)
			if r.Rcode != "REFUSED" {
				t.Errorf("denied query to %s/%s: want REFUSED, got %+v", server, proto, r)
			}
		}
	}
	if got := theLab.Rogue.Queries(); len(got) != before {
		t.Errorf("rogue resolver was reached: %v", got[before:])
	}
}

func TestWildcard(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	for name, want := range map[string]string{"x.wild.test": "203.0.113.30", "a.b.wild.test": "203.0.113.31", "X.WILD.test": "203.0.113.30"} {
		addrs := c.mustResolve(t, name, "A")
		if addrs[0] != want {
			t.Errorf("%s = %v, want %s", name, addrs, want)
		}
		c.mustReach(t, "tcp", tcpAddr(want, lab.TCPPort))
	}
	for _, name := range []string{"wild.test", "xwild.test", "wild.test.evil"} {
		if r := c.resolve(t, name, "A"); r.Rcode != "REFUSED" {
			t.Errorf("%s: want REFUSED, got %+v", name, r)
		}
	}
	// wild.test (the apex) resolves to .32 elsewhere; it stays unreachable.
	c.mustBeRefused(t, "tcp", tcpAddr("203.0.113.32", lab.TCPPort))
}

func TestCNAMEToOutsideName(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	// alias.test is allowed and points outside the policy: the answer is
	// given and its address opened, but the target name itself is not.
	r := c.resolve(t, "alias.test", "A")
	if !r.OK || len(r.Addrs) != 1 || r.Addrs[0] != "203.0.113.40" || !strings.Contains(r.Data, "edge.outside.test") {
		t.Fatalf("alias.test: %+v", r)
	}
	c.mustReach(t, "tcp", tcpAddr("203.0.113.40", lab.TCPPort))
	if r := c.resolve(t, "edge.outside.test", "A"); r.Rcode != "REFUSED" {
		t.Errorf("edge.outside.test asked directly: want REFUSED, got %+v", r)
	}
	// An upstream answer that stops at the CNAME is completed by the gate.
	r = c.resolve(t, "partial.test", "A")
	if !r.OK || len(r.Addrs) != 1 || r.Addrs[0] != "203.0.113.41" {
		t.Fatalf("partial.test: %+v", r)
	}
	c.mustReach(t, "tcp", tcpAddr("203.0.113.41", lab.TCPPort))
}

func TestTTLExpiryRemovesAccess(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	addr := c.mustResolve(t, "short.test", "A")[0]
	c.mustReach(t, "tcp", tcpAddr(addr, lab.TCPPort))
	out, _ := nftList(t, c.ns)
	if !strings.Contains(out, "203.0.113.50 timeout 3s") { // TTL 1 clamped to minTTL 1, plus 2s grace
		t.Errorf("element timeout not TTL-derived:\n%s", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.client(t, "tcp", tcpAddr(addr, lab.TCPPort))
		if !r.OK {
			if !r.Refused() {
				t.Fatalf("after expiry: want refused, got %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("address still reachable long after its TTL")
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Resolving again opens it again.
	c.mustResolve(t, "short.test", "A")
	c.mustReach(t, "tcp", tcpAddr(addr, lab.TCPPort))
}

func TestIPv6(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	addrs := c.mustResolve(t, "allowed.test", "AAAA")
	if addrs[0] != "2001:db8:10::10" {
		t.Fatalf("AAAA allowed.test = %v", addrs)
	}
	c.mustReach(t, "tcp", tcpAddr(addrs[0], lab.TCPPort))
	c.mustReach(t, "udp", tcpAddr(addrs[0], lab.UDPPort))
	// v6only.test's address is denied.test's too; before resolving it is
	// closed, after resolving the allowed name it opens.
	c.mustBeRefused(t, "tcp", tcpAddr("2001:db8:10::20", lab.TCPPort))
	c.mustResolve(t, "v6only.test", "AAAA")
	c.mustReach(t, "tcp", tcpAddr("2001:db8:10::20", lab.TCPPort))
	// DNS sent over IPv6 is redirected to the gate's ::1 listener.
	r := c.client(t, "dns", "[2001:db8:10::10]:53", "allowed.test", "A")
	if !r.OK || r.Addrs[0] != "203.0.113.10" {
		t.Errorf("IPv6 DNS: %+v", r)
	}
}

func TestCIDRWithExcept(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	c.mustReach(t, "tcp", tcpAddr("198.51.100.10", lab.TCPPort))
	c.mustBeRefused(t, "tcp", tcpAddr("198.51.100.7", lab.TCPPort))   // except
	c.mustBeRefused(t, "tcp", tcpAddr("198.51.100.10", lab.TCPPort2)) // port not in the rule
	c.mustBeRefused(t, "udp", tcpAddr("198.51.100.10", lab.UDPPort))  // protocol not in the rule
}

func TestDenyBeatsAllow(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	// both.test is named by an allow and a deny rule: refused.
	if r := c.resolve(t, "both.test", "A"); r.Rcode != "REFUSED" {
		t.Errorf("both.test: want REFUSED, got %+v", r)
	}
	// 203.0.113.60/32 is in an allow and a deny CIDR: refused.
	c.mustBeRefused(t, "tcp", tcpAddr("203.0.113.60", lab.TCPPort))
	c.waitEvent(t, audit.KindNetDeny, func(e audit.Event) bool {
		return e.Detail["dst"] == "203.0.113.60" && e.Detail["reason"] == "deny rule"
	})
}

func TestAuditMode(t *testing.T) {
	c := newCtr(t, policy(spec.ModeAudit))
	// Denied name: answered (logged, mode audit).
	r := c.resolve(t, "denied.test", "A")
	if !r.OK || r.Addrs[0] != "203.0.113.20" {
		t.Fatalf("audit mode: denied.test should resolve, got %+v", r)
	}
	c.waitEvent(t, audit.KindDNSDeny, func(e audit.Event) bool {
		return e.Detail["name"] == "denied.test" && e.Mode == "audit"
	})
	// Denied address: reachable, logged.
	c.mustReach(t, "tcp", tcpAddr("203.0.113.20", lab.TCPPort))
	c.waitEvent(t, audit.KindNetDeny, func(e audit.Event) bool {
		return e.Detail["dst"] == "203.0.113.20" && e.Mode == "audit" && e.Detail["name"] == "denied.test"
	})
	// Allowed traffic logs nothing.
	c.mustResolve(t, "allowed.test", "A")
	c.mustReach(t, "tcp", tcpAddr("203.0.113.10", lab.TCPPort))
	time.Sleep(300 * time.Millisecond)
	for _, e := range c.events(t, audit.KindNetDeny) {
		if e.Detail["dst"] == "203.0.113.10" {
			t.Errorf("allowed connection logged: %+v", e)
		}
	}
}

func TestNoNetCapsGainNothing(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	// nft flush ruleset without CAP_NET_ADMIN, as root and as nobody.
	for _, wrap := range [][]string{lab.NoNetCaps, lab.Nobody} {
		r := c.clientAs(t, wrap, "exec", "nft", "flush", "ruleset")
		if r.OK {
			t.Fatalf("nft flush ruleset succeeded with %v: %s", wrap, r.Data)
		}
	}
	// A new user namespace owns no capability over this network namespace.
	r := c.clientAs(t, lab.Nobody, "exec", "unshare", "--user", "--map-root-user", "nft", "flush", "ruleset")
	if r.OK {
		t.Fatalf("nft flush from a new user namespace succeeded: %s", r.Data)
	}
	if _, err := nftList(t, c.ns); err != nil {
		t.Fatalf("table gone: %v", err)
	}
	// Raw and packet sockets (which would skip the output hook).
	for _, wrap := range [][]string{lab.NoNetCaps, lab.Nobody} {
		if r := c.clientAs(t, wrap, "raw"); r.OK || r.Errno != "EPERM" {
			t.Errorf("raw sockets with %v: want EPERM, got %+v", wrap, r)
		}
	}
	// A new network namespace (possible through a user namespace) has
	// nothing but a down loopback: nothing reachable from there.
	r = c.clientAs(t, lab.Nobody, "exec", "unshare", "--user", "--map-root-user", "--net", theLab.Bin, lab.ClientVerb, "tcp", tcpAddr("203.0.113.20", lab.TCPPort))
	if !strings.Contains(r.Data, `"ok":false`) || !strings.Contains(r.Data, "ENETUNREACH") {
		t.Errorf("from a new netns: want ENETUNREACH, got %+v", r)
	}
	// And the policy still holds.
	c.mustBeRefused(t, "tcp", tcpAddr("203.0.113.20", lab.TCPPort))
	c.mustResolve(t, "allowed.test", "A")
	c.mustReach(t, "tcp", tcpAddr("203.0.113.10", lab.TCPPort))
}

func TestGateKilledFailsClosed(t *testing.T) {
	c := newCtr(t, policy(spec.ModeEnforce))
	c.mustResolve(t, "allowed.test", "A")
	c.mustReach(t, "tcp", tcpAddr("203.0.113.10", lab.TCPPort))
	pid := egress.GatePID(runDir, c.cfg.NetNSPath)
	if pid == 0 {
		t.Fatal("no gate running")
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for egress.GatePID(runDir, c.cfg.NetNSPath) != 0 {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		time.Sleep(20 * time.Millisecond)
	}
	// No DNS at all (nothing listens behind the redirect): an immediate
	// error, no answer, and the upstream is not reached.
	n := len(theLab.Upstream.Queries())
	for _, proto := range []string{"udp", "tcp"} {
		r := c.client(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A", proto)
		if r.OK || r.Rcode != "" {
			t.Errorf("DNS over %s with the gate dead: want no answer, got %+v", proto, r)
		}
	}
	if len(theLab.Upstream.Queries()) != n {
		t.Error("a query reached the upstream with the gate dead")
	}
	// The table stays: denied stays denied; learnt addresses expire.
	c.mustBeRefused(t, "tcp", tcpAddr("203.0.113.20", lab.TCPPort))
	deadline := time.Now().Add(30 * time.Second)
	for c.client(t, "tcp", tcpAddr("203.0.113.10", lab.TCPPort)).OK {
		if time.Now().After(deadline) {
			t.Fatal("learnt address never expired with the gate dead")
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Ensure restarts it.
	restarted, err := egress.Ensure(context.Background(), c.cfg)
	if err != nil || !restarted {
		t.Fatalf("Ensure = %v, %v", restarted, err)
	}
	c.mustResolve(t, "allowed.test", "A")
	c.mustReach(t, "tcp", tcpAddr("203.0.113.10", lab.TCPPort))
	if restarted, err := egress.Ensure(context.Background(), c.cfg); err != nil || restarted {
		t.Fatalf("second Ensure = %v, %v", restarted, err)
	}
}

func TestIngress(t *testing.T) {
	deny := newCtr(t, policy(spec.ModeEnforce))
	// A server inside the container namespace, reached from the internet.
	listenHello(t, deny.ns)
	ip := containerIP(t, deny.ns)
	r, err := theLab.Client(context.Background(), theLab.Inet, nil, "tcp", tcpAddr(ip, 8080))
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || !r.Refused() {
		t.Errorf("ingress default deny: want refused, got %+v", r)
	}
	p := policy(spec.ModeEnforce)
	p.Network.Ingress.Default = spec.Allow
	allow := newCtr(t, p)
	listenHello(t, allow.ns)
	r, err = theLab.Client(context.Background(), theLab.Inet, nil, "tcp", tcpAddr(containerIP(t, allow.ns), 8080))
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK {
		t.Errorf("ingress default allow: want reachable, got %+v", r)
	}
}

// listenHello serves "hello" on port 8080 inside namespace ns.
func listenHello(t *testing.T, ns string) {
	t.Helper()
	var ln net.Listener
	err := lab.InNetNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", ":8080")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "hello")
			c.Close()
		}
	}()
}

func containerIP(t *testing.T, ns string) string {
	out, err := exec.Command("ip", "-n", ns, "-4", "-o", "addr", "show", "scope", "global").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			return strings.Split(f[i+1], "/")[0]
		}
	}
	t.Fatalf("no address in %s: %s", ns, out)
	return ""
}

func TestSharedNamespaceRefcount(t *testing.T) {
	needLab(t)
	ns, err := theLab.NewContainer()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := configFor(t, ns, policy(spec.ModeEnforce))
	b := configFor(t, ns, policy(spec.ModeEnforce))
	if err := egress.Setup(ctx, a); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = egress.Teardown(a) })
	pid := egress.GatePID(runDir, a.NetNSPath)
	if err := egress.Setup(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = egress.Teardown(b) })
	if egress.GatePID(runDir, b.NetNSPath) != pid {
		t.Fatal("second container of the namespace started another gate")
	}
	// A third with a different network policy is refused.
	other := policy(spec.ModeAudit)
	cfg := configFor(t, ns, other)
	if err := egress.Setup(ctx, cfg); err == nil || !strings.Contains(err.Error(), "network policy differs") {
		t.Fatalf("differing policy: want refusal, got %v", err)
	}
	// Both containers see the namespace's denials.
	r, _ := theLab.Client(ctx, ns, lab.NoNetCaps, "tcp", tcpAddr("203.0.113.20", lab.TCPPort))
	if !r.Refused() {
		t.Fatalf("want refused, got %+v", r)
	}
	for _, cf := range []egress.Config{a, b} {
		c := &ctr{ns: ns, cfg: cf}
		c.waitEvent(t, audit.KindNetDeny, func(e audit.Event) bool {
			return e.Detail["dst"] == "203.0.113.20" && e.Container == cf.ContainerID
		})
	}
	if err := egress.Teardown(a); err != nil {
		t.Fatal(err)
	}
	if egress.GatePID(runDir, b.NetNSPath) != pid {
		t.Fatal("gate stopped while a container still uses the namespace")
	}
	if _, err := nftList(t, ns); err != nil {
		t.Fatal("table removed while a container still uses the namespace")
	}
	if err := egress.Teardown(b); err != nil {
		t.Fatal(err)
	}
	if egress.GatePID(runDir, b.NetNSPath) != 0 {
		t.Fatal("gate still running after the last Teardown")
	}
	if out, err := nftList(t, ns); err == nil {
		t.Fatalf("table left in a persisting namespace:\n%s", out)
	}
}

func TestSetupFailureLeavesNothing(t *testing.T) {
	needLab(t)
	ns, err := theLab.NewContainer()
	if err != nil {
		t.Fatal(err)
	}
	cfg := configFor(t, ns, policy(spec.ModeEnforce))
	cfg.Exe = "/bin/false" // the gate dies at once
	err = egress.Setup(context.Background(), cfg)
	if err == nil {
		t.Fatal("Setup with a gate that cannot start succeeded")
	}
	t.Log(err)
	if out, err := nftList(t, ns); err == nil {
		t.Errorf("table left after failed Setup:\n%s", out)
	}
	if d := gateDirs(); len(d) > 0 {
		// other tests' gates may run in parallel; ours must not be there
		gd, _ := egress.GateDir(runDir, cfg.NetNSPath)
		for _, x := range d {
			if x == gd {
				t.Errorf("gate dir left after failed Setup: %s", x)
			}
		}
	}
	if err := egress.Teardown(cfg); err != nil {
		t.Errorf("Teardown after failed Setup: %v", err)
	}
	// Bad policy: refused before anything is touched.
	bad := policy(spec.ModeEnforce)
	bad.Network.Egress.Allow[0].To[0].Host = "*.com"
	cfg = configFor(t, ns, bad)
	if err := egress.Setup(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "network.egress.allow[0].to[0].host") {
		t.Errorf("bad host: want an error naming the field, got %v", err)
	}
}

func TestHundredSetupsLeaveNothing(t *testing.T) {
	needLab(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("%s-lc", theLab.Prefix)
	for i := 0; i < 100; i++ {
		ns := fmt.Sprintf("%s%d", prefix, i)
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		cfg := configFor(t, ns, policy(spec.ModeEnforce))
		err := egress.Setup(ctx, cfg)
		if err == nil && i%25 == 0 {
			// Sanity: the gate answers in this bare namespace.
			r, cerr := theLab.Client(ctx, ns, lab.NoNetCaps, "dns", "127.0.0.53:53", "denied.test", "A")
			if cerr != nil || r.Rcode != "REFUSED" {
				t.Errorf("iteration %d: gate: %+v %v", i, r, cerr)
			}
		}
		terr := egress.Teardown(cfg)
		terr2 := egress.Teardown(cfg) // idempotent
		_ = exec.Command("ip", "netns", "del", ns).Run()
		if err != nil || terr != nil || terr2 != nil {
			t.Fatalf("iteration %d: setup %v, teardown %v, %v", i, err, terr, terr2)
		}
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), prefix) {
		t.Errorf("namespaces left: %s", out)
	}
	if p := gateProcesses(); len(p) > 0 {
		// Only this test's gates are gone; parallel tests may hold theirs.
		t.Logf("gate processes still running (other tests): %v", p)
	}
}

// TestOfflinePolicyNeedsNoResolver: a policy that allows no name (an
// offline agent's) still gets its table and its gate, which refuses every
// query itself, on a host whose resolv.conf names no nameserver (an
// air-gapped runner). A policy that allows a name is refused there, with
// the fix in the message.
func TestOfflinePolicyNeedsNoResolver(t *testing.T) {
	needLab(t)
	empty := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(empty, []byte("# no nameserver\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ns, err := theLab.NewContainer()
	if err != nil {
		t.Fatal(err)
	}
	offline := &spec.AgentPolicy{Identity: &spec.Identity{Agent: "offline"},
		Network: &spec.Network{Egress: &spec.Egress{Default: spec.Deny}, Ingress: &spec.Ingress{Default: spec.Deny, HostLoopback: spec.Deny}}}
	cfg := configFor(t, ns, offline)
	cfg.DNS, cfg.ResolvConf = nil, empty
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := egress.Setup(ctx, cfg); err != nil {
		t.Fatalf("offline policy without a resolver: %v", err)
	}
	t.Cleanup(func() {
		if err := egress.Teardown(cfg); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	if _, err := nftList(t, ns); err != nil {
		t.Errorf("no table for the offline policy: %v", err)
	}
	r, err := theLab.Client(ctx, ns, lab.NoNetCaps, "dns", "127.0.0.53:53", "allowed.test", "A")
	if err != nil || r.Rcode != "REFUSED" {
		t.Errorf("offline gate: %+v %v, want REFUSED", r, err)
	}

	ns2, err := theLab.NewContainer()
	if err != nil {
		t.Fatal(err)
	}
	named := configFor(t, ns2, policy(spec.ModeEnforce))
	named.DNS, named.ResolvConf = nil, empty
	err = egress.Setup(ctx, named)
	if err == nil {
		_ = egress.Teardown(named)
		t.Fatal("a policy allowing names started without any resolver")
	}
	if !strings.Contains(err.Error(), "no nameserver in "+empty) || !strings.Contains(err.Error(), "dns.upstreams") {
		t.Errorf("error = %v, want one naming the resolv.conf and dns.upstreams", err)
	}
	if out, err := nftList(t, ns2); err == nil {
		t.Errorf("table left after the refused Setup:\n%s", out)
	}
}
