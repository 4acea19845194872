package egress

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mxc.dev/mxc/spec"
)

// queryIn asks the gate of namespace fd for name, from inside it; the
// answer's rcode, or an error when nothing answers.
func queryIn(t *testing.T, fd int, name string) (int, error) {
	t.Helper()
	var rcode int
	err := inNetNS(fd, func() error {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		// Port 53 of any address (a bare namespace has loopback only): the
		// table's redirect leads to the gate.
		r, _, err := c.Exchange(m, "127.0.0.53:53")
		if err == nil {
			rcode = r.Rcode
		}
		return err
	})
	return rcode, err
}

// TestKeeperServesAndRestarts: a gate host (here an in-process Keeper, as
// in a policy monitor) serves the gate Setup hands it while Setup
// programs the table; when the gate fails, the keeper restarts it
// in-process and re-installs a table that vanished meanwhile. No query
// leaves the namespace: every name asked is refused by the gate.
func TestKeeperServesAndRestarts(t *testing.T) {
	ns, fd := newTestNetNS(t)
	dir := t.TempDir()
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeeper(KeepOptions{Cmd: cmdR, Ready: readyW})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	stopKeeper := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("keeper: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("keeper did not stop")
		}
	}
	cfg := Config{
		ContainerID: "keeper-test",
		StateDir:    filepath.Join(dir, "state"),
		NetNSPath:   "/run/netns/" + ns,
		Policy: &spec.Effective{Policy: spec.AgentPolicy{Mode: spec.ModeEnforce, Network: &spec.Network{
			Egress: &spec.Egress{Default: spec.Deny, Allow: []spec.Rule{{To: []spec.Peer{{Host: "allowed.example"}}}}},
		}}},
		// Never reached: only refused names are asked.
		DNS:       &spec.DNSConfig{Upstreams: []string{"192.0.2.53:53"}},
		AuditPath: filepath.Join(dir, "state", "audit.jsonl"),
		Exe:       "/nonexistent",
		RunDir:    filepath.Join(dir, "run"),
		Host:      &GateHost{Pid: os.Getpid(), Cmd: cmdW, Ready: readyR},
	}
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := Setup(sctx, cfg); err != nil {
		stopKeeper()
		t.Fatalf("Setup: %v", err)
	}
	defer func() {
		stopKeeper()
		if err := Teardown(cfg); err != nil {
			t.Errorf("Teardown: %v", err)
		}
		if exists, _ := tableExists(fd); exists {
			t.Error("table left after Teardown")
		}
		if _, err := os.Stat(filepath.Join(cfg.RunDir)); err == nil {
			if m, _ := filepath.Glob(filepath.Join(cfg.RunDir, "ns-*")); len(m) > 0 {
				t.Errorf("gate dir left: %v", m)
			}
		}
	}()
	if !k.Serving() || GatePID(cfg.RunDir, cfg.NetNSPath) != os.Getpid() {
		t.Fatalf("serving %v, gate pid %d", k.Serving(), GatePID(cfg.RunDir, cfg.NetNSPath))
	}
	if rc, err := queryIn(t, fd, "denied.example"); err != nil || rc != dns.RcodeRefused {
		t.Fatalf("query: rcode %d, %v", rc, err)
	}

	// The table vanishes and the gate fails: closed until the restart,
	// which brings both back.
	if err := deleteTable(fd); err != nil {
		t.Fatal(err)
	}
	g := k.cur.Load()
	if g == nil {
		t.Fatal("no current gate")
	}
	g.fatal <- errors.New("injected failure")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ng := k.cur.Load(); ng != nil && ng != g {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the keeper did not restart the gate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if exists, err := tableExists(fd); err != nil || !exists {
		t.Fatalf("table after the restart: %v, %v", exists, err)
	}
	if rc, err := queryIn(t, fd, "denied.example"); err != nil || rc != dns.RcodeRefused {
		t.Fatalf("query after the restart: rcode %d, %v", rc, err)
	}
}

// TestPruneStaleRefs: refs whose namespace is gone (their container's
// runtime was killed before Teardown) or names another namespace now are
// dropped, so a later namespace that reuses the inode number is not taken
// for a shared one; the ref of a live user stays.
func TestPruneStaleRefs(t *testing.T) {
	ns, fd := newTestNetNS(t)
	kfd, key, err := openNetNS("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	os.NewFile(uintptr(kfd), "netns").Close()
	gd := filepath.Join(t.TempDir(), "ns-"+key.String())
	if err := os.MkdirAll(filepath.Join(gd, "refs"), 0o700); err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{
		"live":        "/run/netns/" + ns,
		"gone":        "/proc/2147483647/ns/net",
		"other-netns": "/proc/self/ns/net",
	}
	for id, p := range refs {
		if err := writeJSON(filepath.Join(gd, "refs", id), ref{Container: id, NetNSPath: p}); err != nil {
			t.Fatal(err)
		}
	}
	pruneStaleRefs(gd, key.String())
	left := readRefs(gd)
	if len(left) != 1 || left[0].Container != "live" {
		t.Fatalf("refs after pruning: %+v, want only the live one", left)
	}
}
