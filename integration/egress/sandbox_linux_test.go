package egress_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/integration/egress/lab"
	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/spec"
)

func newSandbox(t *testing.T, p *spec.AgentPolicy) (*egress.Sandbox, egress.Config) {
	t.Helper()
	needLab(t)
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("needs slirp4netns")
	}
	cfg := configFor(t, "", p)
	cfg.NetNSPath = ""
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sb, err := egress.NewSandbox(ctx, cfg)
	if err != nil {
		t.Fatalf("NewSandbox: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("Sandbox.Close: %v", err)
		}
	})
	return sb, cfg
}

// sbClient runs a lab client inside the sandbox without network caps.
func sbClient(t *testing.T, sb *egress.Sandbox, op ...string) lab.Result {
	t.Helper()
	args := append(append(append([]string(nil), lab.NoNetCaps[1:]...), theLab.Bin, lab.ClientVerb), op...)
	cmd := exec.Command(lab.NoNetCaps[0], args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := sb.Start(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("sandboxed client hung: %s", out.String())
	}
	var r lab.Result
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("client %v: %s", op, out.String())
	}
	return r
}

func TestSandboxNetworked(t *testing.T) {
	sb, cfg := newSandbox(t, policy(spec.ModeEnforce))
	if !sb.Networked {
		t.Fatal("a policy with allow rules got a loopback-only sandbox")
	}
	r := sbClient(t, sb, "dns", lab.UpstreamDNS+":53", "allowed.test", "A")
	if !r.OK || r.Addrs[0] != "203.0.113.10" {
		t.Fatalf("resolve in sandbox: %+v", r)
	}
	if r := sbClient(t, sb, "tcp", tcpAddr("203.0.113.10", lab.TCPPort)); !r.OK {
		t.Fatalf("allowed host from sandbox: %+v", r)
	}
	if r := sbClient(t, sb, "dns", "10.0.2.3:53", "denied.test", "A"); r.Rcode != "REFUSED" {
		t.Errorf("denied name from sandbox: %+v", r)
	}
	if r := sbClient(t, sb, "tcp", tcpAddr("203.0.113.20", lab.TCPPort)); r.OK || !r.Refused() {
		t.Errorf("denied address from sandbox: %+v", r)
	}
	// hostLoopback: deny -> the gateway (the host's loopback) is refused.
	if r := sbClient(t, sb, "tcp", "10.0.2.2:22"); r.OK || !r.Refused() {
		t.Errorf("host loopback from sandbox: %+v", r)
	}
	c := &ctr{cfg: cfg}
	c.cfg.AuditPath = cfg.AuditPath
	c.waitEvent(t, audit.KindNetDeny, func(e audit.Event) bool { return e.Detail["dst"] == "203.0.113.20" })
}

func TestSandboxLoopbackOnly(t *testing.T) {
	p := policy(spec.ModeEnforce)
	p.Network.Egress.Allow = nil
	p.Network.Egress.Deny = nil
	sb, cfg := newSandbox(t, p)
	if sb.Networked {
		t.Fatal("default deny with no allow rule must give a loopback-only namespace")
	}
	r := sbClient(t, sb, "exec", "ip", "-o", "link", "show")
	if strings.Count(strings.TrimSpace(r.Data), "\n") != 0 || !strings.Contains(r.Data, "lo:") {
		t.Errorf("interfaces in sandbox: %q", r.Data)
	}
	if r := sbClient(t, sb, "tcp", tcpAddr("203.0.113.10", lab.TCPPort)); r.OK || r.Errno != "ENETUNREACH" {
		t.Errorf("loopback-only sandbox reached out: %+v", r)
	}
	// A loopback resolver (systemd-resolved's stub) meets the gate.
	if r := sbClient(t, sb, "dns", "127.0.0.53:53", "allowed.test", "A"); r.Rcode != "REFUSED" {
		t.Errorf("DNS in loopback-only sandbox: %+v", r)
	}
	// Close removes the gate and its state.
	gd, err := egress.GateDir(runDir, sb.NetNSPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.Command("test", "-e", gd).CombinedOutput(); err == nil {
		t.Errorf("gate dir %s left after Close", gd)
	}
	if m, _ := filepath.Glob(filepath.Join(cfg.StateDir, "egress*")); len(m) > 0 {
		t.Errorf("state left after Close: %v", m)
	}
}

// TestSandboxVerbNetwork: `mxc-runtime sandbox` with egress allow rules
// (slirp4netns, the table, the gate): the command reaches its allowed lab
// host by name and is refused another name and a direct address, and the
// events land in --audit. mxc-runtime runs in the lab's host namespace, so
// slirp4netns's NAT (and the gate's upstream) lead into the lab only.
func TestSandboxVerbNetwork(t *testing.T) {
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	sandbox := sandboxVerb(t, "sandbox-agent", "--audit", auditLog)
	cl := theLab.Bin + " " + lab.ClientVerb
	script := strings.Join([]string{
		cl + " dns 10.0.2.3:53 allowed.test A",
		cl + " tcp 203.0.113.10:80",
		cl + " dns 10.0.2.3:53 sandbox-leak.exfil.test A",
		cl + " tcp 203.0.113.20:80",
		cl + " tcp 203.0.113.10:443",
	}, "; ")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sandbox(ctx, "sh", "-c", script)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sandbox: %v\n%s\n%s", err, out.String(), stderr.String())
	}
	pid := cmd.Process.Pid
	var rs []lab.Result
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r lab.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output %q: %v", out.String(), err)
		}
		rs = append(rs, r)
	}
	if len(rs) != 5 {
		t.Fatalf("results: %s", out.String())
	}
	if !rs[0].OK || rs[0].Addrs[0] != "203.0.113.10" || !rs[1].OK || rs[1].Data != "hello 203.0.113.10" {
		t.Errorf("allowed name and host from the sandbox: %+v %+v", rs[0], rs[1])
	}
	if rs[2].Rcode != "REFUSED" {
		t.Errorf("denied name from the sandbox: %+v", rs[2])
	}
	if rs[3].OK || !rs[3].Refused() || rs[4].OK || !rs[4].Refused() {
		t.Errorf("denied address, denied port from the sandbox: %+v %+v", rs[3], rs[4])
	}
	for _, q := range theLab.Upstream.Queries() {
		if strings.Contains(q, "sandbox-leak") {
			t.Errorf("upstream saw denied query %q", q)
		}
	}
	evs, err := audit.ReadAll(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	var dnsDeny, netDeny bool
	for _, e := range evs {
		dnsDeny = dnsDeny || (e.Kind == audit.KindDNSDeny && e.Detail["name"] == "sandbox-leak.exfil.test" && e.Agent == "sandbox-agent")
		netDeny = netDeny || (e.Kind == audit.KindNetDeny && e.Detail["dst"] == "203.0.113.20")
	}
	if !dnsDeny || !netDeny {
		t.Errorf("audit events (dns.deny %v, net.deny %v): %+v", dnsDeny, netDeny, evs)
	}
	// Nothing of the sandbox's network is left.
	if m, _ := filepath.Glob(filepath.Join(egress.DefaultRunDir, "ns-*", "refs", fmt.Sprintf("sandbox-%d", pid))); len(m) > 0 {
		t.Errorf("gate state left: %v", m)
	}
	if m, _ := filepath.Glob(fmt.Sprintf("/run/mxc-sandbox/%d-*", pid)); len(m) > 0 {
		t.Errorf("sandbox state left: %v", m)
	}
	for _, p := range processesMentioning(fmt.Sprintf("/proc/%d/fd/", pid)) { // slirp4netns
		t.Errorf("process left: %s", p)
	}
}

// TestSandboxVerbNetworkKilled: SIGKILL of a networked `mxc-runtime
// sandbox` (the command's supervisor) ends the command, the gate and
// slirp4netns with it; the next sandbox sweeps the state it left.
func TestSandboxVerbNetworkKilled(t *testing.T) {
	sandbox := sandboxVerb(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The marker names the command among the host's processes; the
	// command itself is the supervisor's child (no exec of sleep, so that
	// the sleep is a grandchild and the shell the child).
	marker := fmt.Sprintf("sleep %d", 100000+os.Getpid()%10000)
	cmd := sandbox(ctx, "sh", "-c", "echo ready; "+marker+"; echo unreachable")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid // nsenter execs mxc-runtime: one pid
	// The sleep, the shell's child, outlives its shell as it would
	// without a sandbox: the test removes it.
	t.Cleanup(func() {
		for _, n := range commandsRunning(marker) {
			_ = unix.Kill(n, unix.SIGKILL)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("sandbox did not start its command: %q %v", line, err)
	}
	shell := "sh -c echo ready; " + marker
	if len(commandsRunning(shell)) == 0 {
		t.Fatal("the command's process is not there to begin with")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesMentioning(fmt.Sprintf("/proc/%d/fd/", pid)) // slirp4netns, the gate
		for _, n := range commandsRunning(shell) {
			left = append(left, strconv.Itoa(n)+": "+shell)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left after SIGKILL of the sandbox: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The next networked sandbox removes the state of the killed one.
	if res, err := sandbox(ctx, "true").CombinedOutput(); err != nil {
		t.Fatalf("next sandbox: %v\n%s", err, res)
	}
	if m, _ := filepath.Glob(fmt.Sprintf("/run/mxc-sandbox/%d-*", pid)); len(m) > 0 {
		t.Errorf("sandbox state of the killed sandbox left: %v", m)
	}
}

// commandsRunning lists the pids whose command line, words joined by
// spaces, starts with cmd.
func commandsRunning(cmd string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(strings.ReplaceAll(string(b), "\x00", " "), cmd) {
			out = append(out, n)
		}
	}
	return out
}

// sandboxVerb returns `mxc-runtime sandbox` of a policy allowing
// allowed.test:80 (identity: agent, when set), run in the lab's host
// namespace with the lab's DNS as the gate's upstream; extra flags go
// before the `--`.
func sandboxVerb(t *testing.T, agent string, flags ...string) func(ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	needLab(t)
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("needs slirp4netns")
	}
	bin := harness.Binary(t)
	dir := t.TempDir()
	identity := ""
	if agent != "" {
		identity = "identity: {agent: " + agent + "}\n"
	}
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(`apiVersion: mxc.dev/v1alpha1
kind: AgentPolicy
`+identity+`network:
  egress:
    default: deny
    allow:
      - to: [{host: allowed.test}]
        ports: [{protocol: tcp, port: 80}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(node, []byte("dns:\n  upstreams: [\""+lab.UpstreamDNS+":53\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, args ...string) *exec.Cmd {
		argv := append([]string{"--net=" + lab.NetNSPath(theLab.Host), "--", bin, "--config", node, "sandbox", "--policy", pol}, flags...)
		cmd := exec.CommandContext(ctx, "nsenter", append(append(argv, "--"), args...)...)
		cmd.Env = append(os.Environ(), "MXC_CONFIG=")
		return cmd
	}
}
