// Package egress_test runs the egress engine (mxc.dev/mxc/linux/egress)
// against a little internet of network namespaces (package lab): real
// nftables, a real DNS gate process, real clients with dropped privileges.
// It needs root; without it every test skips.
package egress_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/integration/egress/lab"
	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/internal/reaper"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/spec"
)

var (
	theLab *lab.Lab
	runDir string
	ctrSeq atomic.Int32
)

func TestMain(m *testing.M) {
	// The test binary is also the gate and the agent's client.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case egress.GateVerb:
			os.Exit(egress.GateMain(os.Args[2:]))
		case lab.ClientVerb:
			os.Exit(lab.ClientMain(os.Args[2:]))
		case hookVerb:
			os.Exit(hookMain(os.Args[2:]))
		}
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() == 0 {
		// Gates are started detached; if one outlives its Teardown it is
		// reparented to us, not to an init that never reaps.
		_ = reaper.Subreaper()
		var err error
		theLab, err = lab.New()
		if err != nil {
			fmt.Fprintln(os.Stderr, "lab:", err)
			return 1
		}
		runDir, err = os.MkdirTemp("", "mxc-egress-run-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	stop := reaper.Background(100 * time.Millisecond)
	code := m.Run()
	stop()
	if probeDir != "" {
		_ = os.RemoveAll(probeDir)
	}
	if theLab != nil {
		leftovers := gateDirs()
		if len(leftovers) > 0 {
			fmt.Fprintln(os.Stderr, "gate state left behind:", leftovers)
			code = 1
		}
		if p := gateProcesses(); len(p) > 0 {
			fmt.Fprintln(os.Stderr, "gate processes left behind:", p)
			for _, pid := range p {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
			code = 1
		}
		if err := theLab.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "lab close:", err)
			code = 1
		}
		_ = os.RemoveAll(runDir)
	}
	return code
}

// gateDirs lists the per-namespace gate directories under runDir.
func gateDirs() []string {
	m, _ := filepath.Glob(filepath.Join(runDir, "ns-*"))
	return m
}

// gateProcesses lists processes running a gate of this test binary's run dir.
func gateProcesses() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), egress.GateVerb) || !strings.Contains(string(b), runDir) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

func needLab(t *testing.T) {
	t.Helper()
	if theLab == nil {
		t.Skip("needs root (network namespaces, nftables)")
	}
}

// policy is the lab's standard policy.
func policy(mode spec.Mode) *spec.AgentPolicy {
	web := []spec.Port{{Protocol: spec.ProtoTCP, Port: lab.TCPPort}, {Protocol: spec.ProtoUDP, Port: lab.UDPPort}}
	return &spec.AgentPolicy{
		Identity: &spec.Identity{Agent: "lab-agent"},
		Mode:     mode,
		Network: &spec.Network{
			Egress: &spec.Egress{
				Default: spec.Deny,
				Allow: []spec.Rule{
					{To: []spec.Peer{
						{Host: "allowed.test"}, {Host: "*.wild.test"}, {Host: "alias.test"}, {Host: "partial.test"},
						{Host: "short.test"}, {Host: "v6only.test"}, {Host: "both.test"},
					}, Ports: web},
					{To: []spec.Peer{{CIDR: "198.51.100.0/24", Except: []string{"198.51.100.7/32"}}}, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: lab.TCPPort}}},
					{To: []spec.Peer{{CIDR: "203.0.113.60/32"}}, Ports: []spec.Port{{Protocol: spec.ProtoTCP, Port: lab.TCPPort}}},
				},
				Deny: []spec.Rule{
					{To: []spec.Peer{{Host: "both.test"}}},
					{To: []spec.Peer{{CIDR: "203.0.113.60/32"}}},
				},
			},
			Ingress: &spec.Ingress{Default: spec.Deny, HostLoopback: spec.Deny},
		},
	}
}

// ctr is a container namespace under a policy.
type ctr struct {
	ns  string
	cfg egress.Config
}

func newCtr(t *testing.T, p *spec.AgentPolicy) *ctr {
	t.Helper()
	needLab(t)
	ns, err := theLab.NewContainer()
	if err != nil {
		t.Fatal(err)
	}
	return setupIn(t, ns, p)
}

func configFor(t *testing.T, ns string, p *spec.AgentPolicy) egress.Config {
	dir := t.TempDir()
	id := fmt.Sprintf("ctr%d", ctrSeq.Add(1))
	agent := ""
	if p.Identity != nil {
		agent = p.Identity.Agent
	}
	return egress.Config{
		ContainerID:   id,
		Agent:         agent,
		StateDir:      filepath.Join(dir, "state"),
		NetNSPath:     lab.NetNSPath(ns),
		Policy:        &spec.Effective{Policy: *p},
		DNS:           &spec.DNSConfig{Upstreams: []string{lab.UpstreamDNS + ":53"}, MinTTL: 1, MaxTTL: 5},
		AuditPath:     filepath.Join(dir, "state", audit.FileName),
		Exe:           theLab.Bin,
		RunDir:        runDir,
		HostNetNSPath: lab.NetNSPath(theLab.Host),
	}
}

func setupIn(t *testing.T, ns string, p *spec.AgentPolicy) *ctr {
	t.Helper()
	c := &ctr{ns: ns, cfg: configFor(t, ns, p)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := egress.Setup(ctx, c.cfg); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		if err := egress.Teardown(c.cfg); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	return c
}

// client runs an operation as root without CAP_NET_ADMIN/CAP_NET_RAW.
func (c *ctr) client(t *testing.T, op ...string) lab.Result {
	t.Helper()
	return c.clientAs(t, lab.NoNetCaps, op...)
}

func (c *ctr) clientAs(t *testing.T, wrap []string, op ...string) lab.Result {
	t.Helper()
	r, err := theLab.Client(context.Background(), c.ns, wrap, op...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (c *ctr) resolve(t *testing.T, name, qtype string) lab.Result {
	t.Helper()
	return c.client(t, "dns", lab.UpstreamDNS+":53", name, qtype)
}

func (c *ctr) mustResolve(t *testing.T, name, qtype string) []string {
	t.Helper()
	r := c.resolve(t, name, qtype)
	if !r.OK || len(r.Addrs) == 0 {
		t.Fatalf("resolve %s %s: %+v", name, qtype, r)
	}
	return r.Addrs
}

func (c *ctr) mustReach(t *testing.T, proto, addr string) {
	t.Helper()
	r := c.client(t, proto, addr)
	if !r.OK {
		t.Fatalf("%s %s: want reachable, got %+v", proto, addr, r)
	}
}

// mustBeRefused asserts an immediate denial (reset or ICMP), not a timeout.
func (c *ctr) mustBeRefused(t *testing.T, proto, addr string) {
	t.Helper()
	r := c.client(t, proto, addr)
	if r.OK || !r.Refused() {
		t.Fatalf("%s %s: want refused at once, got %+v", proto, addr, r)
	}
}

func (c *ctr) events(t *testing.T, kind string) []audit.Event {
	return harness.AuditEvents(t, c.cfg.AuditPath, kind)
}

// waitEvent polls the audit log for an event of kind matching match.
func (c *ctr) waitEvent(t *testing.T, kind string, match func(audit.Event) bool) audit.Event {
	return harness.WaitAuditEvent(t, c.cfg.AuditPath, kind, match)
}

func nftList(t *testing.T, ns string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", egress.TableName).CombinedOutput()
	return string(out), err
}

func tcpAddr(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}
