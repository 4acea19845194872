package egress

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/spec"
)

// newTestNetNS creates a named network namespace for the test and removes
// it at cleanup.
func newTestNetNS(t *testing.T) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	name := fmt.Sprintf("mxc-ut-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	path := "/run/netns/" + name
	fd, _, err := openNetNS(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return name, fd
}

func nftList(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", TableName).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	return string(out)
}

// TestTableInKernel programs a table through netlink and checks what
// nft(8) reads back: the expressions mean what the builder intends.
func TestTableInKernel(t *testing.T) {
	ns, fd := newTestNetNS(t)
	p := &spec.AgentPolicy{
		Mode: spec.ModeEnforce,
		Network: &spec.Network{
			Egress: &spec.Egress{
				Default: spec.Deny,
				Allow: []spec.Rule{
					{To: []spec.Peer{{Host: "api.example.com"}, {Host: "*.cdn.example.com"}}, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: 443}}},
					{To: []spec.Peer{{CIDR: "192.0.2.0/24", Except: []string{"192.0.2.7/32"}}}, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: 5432, EndPort: 5433}}},
					{To: []spec.Peer{{CIDR: "2001:db8::/32"}}, Ports: []spec.Port{{Protocol: spec.ProtoICMP}}},
				},
				Deny: []spec.Rule{{To: []spec.Peer{{CIDR: "192.0.2.128/25"}}}},
			},
			Ingress: &spec.Ingress{Default: spec.Deny, HostLoopback: spec.Deny},
		},
	}
	pl, err := compile(p, []netip.Addr{netip.MustParseAddr("10.0.2.2")})
	if err != nil {
		t.Fatal(err)
	}
	if err := applyTable(fd, buildTable(pl)); err != nil {
		t.Fatal(err)
	}
	got := nftList(t, ns)
	t.Log(got)
	for _, want := range []string{
		`udp dport 53 redirect to :10053`,
		`tcp dport 53 redirect to :10053`,
		`oifname "lo" accept`,
		`ct state established,related accept`,
		`ip daddr @a0_n4 tcp dport 443 accept`,
		`ip6 daddr @a0_n6 tcp dport 443 accept`,
		`ip daddr @a1_c4 tcp dport 5432-5433 accept`,
		`ip6 daddr @a2_c6 meta l4proto ipv6-icmp accept`,
		`ip daddr @d0_c4 jump deny_rule`,
		`ip daddr @host4 jump deny_rule`,
		`ip saddr @host4 jump deny_in`,
		`192.0.2.0-192.0.2.6, 192.0.2.8-192.0.2.255`,
		`reject with tcp reset`,
		`reject with icmpx admin-prohibited`,
		`log prefix "mxc not-allowed" group 28024`,
		`jump deny_default`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	// Replacing is atomic and idempotent.
	if err := applyTable(fd, buildTable(pl)); err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	// Learnt elements land in the name sets with their timeout.
	w, err := newSetWriter(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.add([]learnt{
		{set: "a0_n4", addr: netip.MustParseAddr("198.51.100.1"), timeout: 30 * time.Second},
		{set: "a0_n6", addr: netip.MustParseAddr("2001:db8::1"), timeout: 30 * time.Second},
	}); err != nil {
		t.Fatal(err)
	}
	// A longer lifetime renews; a shorter one does not shorten.
	if err := w.add([]learnt{{set: "a0_n4", addr: netip.MustParseAddr("198.51.100.1"), timeout: 90 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if err := w.add([]learnt{{set: "a0_n4", addr: netip.MustParseAddr("198.51.100.1"), timeout: 10 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	got = nftList(t, ns)
	if !strings.Contains(got, "198.51.100.1 timeout 1m30s") || !strings.Contains(got, "2001:db8::1 timeout 30s") {
		t.Errorf("elements not as expected:\n%s", got)
	}
	if ok, err := tableExists(fd); err != nil || !ok {
		t.Fatalf("tableExists = %v, %v", ok, err)
	}
	if err := deleteTable(fd); err != nil {
		t.Fatal(err)
	}
	if err := deleteTable(fd); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if ok, _ := tableExists(fd); ok {
		t.Fatal("table still there")
	}
}
