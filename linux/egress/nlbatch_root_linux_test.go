package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/spec"
)

// TestBatchErrors: mxc's delivery of a batch (only the last message asks
// for an acknowledgement) still reports the error of any message, the
// kernel applies nothing of a failed batch, and the look-up tells a
// missing table from a present one.
func TestBatchErrors(t *testing.T) {
	_, fd := newTestNetNS(t)
	nc, err := dialNF(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.close()
	if ok, err := nc.tableExists(); err != nil || ok {
		t.Fatalf("fresh namespace: tableExists = %v, %v", ok, err)
	}
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	missing := &nftables.Chain{Name: "missing", Table: table}
	for _, c := range []struct {
		name  string
		build func(c *nftables.Conn)
	}{
		{"the last message fails", func(c *nftables.Conn) {
			c.AddTable(table)
			c.AddRule(&nftables.Rule{Table: table, Chain: missing, Exprs: []expr.Any{&expr.Counter{}}})
		}},
		{"a middle message fails, the last succeeds", func(c *nftables.Conn) {
			c.AddTable(table)
			c.AddRule(&nftables.Rule{Table: table, Chain: missing, Exprs: []expr.Any{&expr.Counter{}}})
			c.AddChain(&nftables.Chain{Name: "fine", Table: table})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			msgs, err := captureBatch(func(conn *nftables.Conn) error { c.build(conn); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.sendBatch(msgs); !errors.Is(err, unix.ENOENT) {
				t.Fatalf("sendBatch = %v, want ENOENT", err)
			}
			if ok, err := nc.tableExists(); err != nil || ok {
				t.Fatalf("after a failed batch: tableExists = %v, %v", ok, err)
			}
		})
	}
	msgs, err := captureBatch(func(c *nftables.Conn) error { c.AddTable(table); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.sendBatch(msgs); err != nil {
		t.Fatal(err)
	}
	if ok, err := nc.tableExists(); err != nil || !ok {
		t.Fatalf("after adding it: tableExists = %v, %v", ok, err)
	}
}

// TestHookHolder: the holder is a network namespace pinned at its path
// with a container's table in it, made once however many creates race to
// make it.
func TestHookHolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	path := filepath.Join(t.TempDir(), "nfhooks.netns")
	t.Cleanup(func() {
		for isNSFS(path) {
			if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", path, err)
				return
			}
		}
	})
	pl, err := compile(&spec.AgentPolicy{Mode: spec.ModeEnforce, Network: &spec.Network{Egress: &spec.Egress{Default: spec.Deny}}}, []netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = makeHookHolder(path, pl)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !isNSFS(path) {
		t.Fatalf("%s is not a namespace", path)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(mi), " "+path+" "); n != 1 {
		t.Fatalf("%s mounted %d times", path, n)
	}
	out, err := exec.Command("nsenter", "--net="+path, "nft", "list", "table", "inet", TableName).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	for _, want := range []string{"hook output priority filter", "hook forward priority filter", "hook input priority filter", "type nat hook output"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("holder's table lacks %q:\n%s", want, out)
		}
	}
	// Every thread of this process is back in its namespace.
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, task := range tasks {
		if ns, err := os.Readlink(task); err == nil && ns != before {
			t.Errorf("%s: %s, the process was in %s", task, ns, before)
		}
	}
}

// TestLargeTable: a table whose batch is larger than a socket's default
// send buffer (a long CIDR allow list) still goes in, in one batch.
func TestLargeTable(t *testing.T) {
	ns, fd := newTestNetNS(t)
	var peers []spec.Peer
	for i := 0; i < 8000; i++ {
		// Not adjacent, so that no two merge into one interval.
		peers = append(peers, spec.Peer{CIDR: fmt.Sprintf("10.%d.%d.1/32", i/200, i%200)})
	}
	p := &spec.AgentPolicy{Mode: spec.ModeEnforce, Network: &spec.Network{Egress: &spec.Egress{
		Default: spec.Deny,
		Allow:   []spec.Rule{{To: peers, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: 443}}}},
	}}}
	pl, err := compile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := buildTable(pl)
	msgs, err := tableBatch(ts, false)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, m := range msgs {
		size += int(m.Header.Length)
	}
	if size <= batchSndBuf {
		t.Fatalf("batch of %d bytes: not larger than the default send buffer, the test proves nothing", size)
	}
	if err := applyTable(fd, ts); err != nil {
		t.Fatalf("batch of %d bytes: %v", size, err)
	}
	// nft(8) lists only part of a set this large; ask for the element.
	for _, addr := range []string{"10.0.0.1", "10.39.199.1"} {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "get", "element", "inet", TableName, "a0_c4", "{ "+addr+" }").CombinedOutput()
		if err != nil {
			t.Fatalf("batch of %d bytes: %s not in the set: %v: %s", size, addr, err, out)
		}
	}
}
