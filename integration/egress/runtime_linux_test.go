package egress_test

// Runtime-level egress tests: real containers started by mxc-runtime
// (create/start, run, exec) under a policy carried in the bundle's
// io.mxc.policy annotation, whose network namespace is plugged into the
// lab's little internet. mxc-runtime runs inside the lab's "host"
// namespace (nsenter --net), so that the DNS gate, which lives in the
// runtime's namespace, reaches the lab's upstream and nothing else; the
// node config names that upstream.
//
// The binary under test is $MXC_RUNTIME (else `make build`'s bin/).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/integration/egress/lab"
	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/spec"
)

// hookVerb makes the test binary a createRuntime hook that plugs a lab
// link into the new container's namespace, as docker's libnetwork hook
// configures the network of a container mxc created.
const hookVerb = "lab-hook"

// hookMain is `lab-hook INET N INSIDE OUTSIDE` with the OCI state on stdin.
func hookMain(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: lab-hook INET N INSIDE OUTSIDE")
		return 2
	}
	var st specs.State
	if err := json.NewDecoder(os.Stdin).Decode(&st); err != nil || st.Pid <= 0 {
		fmt.Fprintln(os.Stderr, "lab-hook: no state on stdin:", err)
		return 1
	}
	n, _ := strconv.Atoi(args[1])
	if err := lab.Attach(args[0], st.Pid, lab.Link{N: n, Inside: args[2], Outside: args[3]}); err != nil {
		fmt.Fprintln(os.Stderr, "lab-hook:", err)
		return 1
	}
	return 0
}

var (
	probeOnce sync.Once
	probeBin  string
	probeDir  string
	probeErr  error
	rtSeq     atomic.Int32
)

// probe builds the static lab client that goes into container rootfs.
func probe(t *testing.T) string {
	t.Helper()
	probeOnce.Do(func() {
		if probeDir, probeErr = os.MkdirTemp("", "mxc-egress-probe-"); probeErr != nil {
			return
		}
		probeBin = filepath.Join(probeDir, "probe")
		cmd := exec.Command("go", "build", "-trimpath", "-o", probeBin, "./testdata/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("build probe: %v\n%s", err, out)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probeBin
}

// rtEnv is one mxc-runtime state root, run in the lab's host namespace.
type rtEnv struct {
	rt  *harness.Runtime
	ids []string
}

func newRuntime(t *testing.T) *rtEnv {
	t.Helper()
	needLab(t)
	harness.RequireRoot(t)
	bin := harness.Binary(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "mxc-runtime")
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter --net=%s %s \"$@\"\n", lab.NetNSPath(theLab.Host), bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(dir, "node.yaml")
	cfg := fmt.Sprintf("dns:\n  upstreams: [\"%s:53\"]\n  minTTL: 1\n  maxTTL: 5\n", lab.UpstreamDNS)
	if err := os.WriteFile(node, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &rtEnv{}
	// Registered before the runtime's teardown, so it runs after it.
	t.Cleanup(func() { e.checkNothingLeft(t) })
	e.rt = harness.NewRuntime(t)
	e.rt.Bin = wrapper
	e.rt.Config = node
	return e
}

// newID names a container; the ids let the leftover checks tell this
// test's state from other tests' (the egress run dir is shared).
func (e *rtEnv) newID() string {
	id := fmt.Sprintf("egr%d-%d", os.Getpid()%100000, rtSeq.Add(1))
	e.ids = append(e.ids, id)
	return id
}

// checkNothingLeft: after the runtime's teardown, none of this test's
// containers left a helper process, a gate, state, or a table in the
// runtime's (lab host) namespace.
func (e *rtEnv) checkNothingLeft(t *testing.T) {
	if e.rt == nil {
		return
	}
	if _, err := os.Stat(e.rt.Root); err == nil {
		t.Errorf("state root %s left", e.rt.Root)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs := processesMentioning(e.rt.Root)
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("helper processes left: %v", procs)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mine := map[string]bool{}
	for _, id := range e.ids {
		mine[id] = true
	}
	refs, _ := filepath.Glob(filepath.Join(egress.DefaultRunDir, "ns-*", "refs", "*"))
	for _, r := range refs {
		if mine[filepath.Base(r)] {
			t.Errorf("gate state left: %s", r)
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", theLab.Host, "nft", "list", "table", "inet", egress.TableName).CombinedOutput(); err == nil {
		t.Errorf("table in the runtime's namespace:\n%s", out)
	}
}

// processesMentioning lists live processes whose command line contains s.
func processesMentioning(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 || !strings.Contains(string(b), s) {
			continue
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
	}
	return out
}

// agentPolicy is the lab policy as a container's: allowed.test and the
// wildcard on the web ports, everything else denied.
func agentPolicy(mode spec.Mode) *spec.AgentPolicy {
	p := policy(mode)
	p.APIVersion, p.Kind = spec.APIVersion, spec.Kind
	return p
}

// bundle is a busybox bundle with the probe at /bin/probe, a resolv.conf
// naming the lab's upstream (any address would do: the redirect catches
// every DNS packet) and pol in io.mxc.policy.
func (e *rtEnv) bundle(t *testing.T, pol *spec.AgentPolicy, args ...string) *harness.Bundle {
	t.Helper()
	b := harness.NewBundle(t, args...)
	rootfs := filepath.Join(b.Dir, "rootfs")
	data, err := os.ReadFile(probe(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "probe"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "resolv.conf"), []byte("nameserver "+lab.UpstreamDNS+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(pol)
	if err != nil {
		t.Fatal(err)
	}
	if b.Spec.Annotations == nil {
		b.Spec.Annotations = map[string]string{}
	}
	b.Spec.Annotations[spec.AnnotationPolicy] = string(raw)
	b.Save(t)
	return b
}

// runningCtr is a container of the test, plugged into the lab.
type runningCtr struct {
	e     *rtEnv
	id    string
	pid   int
	netns string // the container's namespace, as a path
}

func (e *rtEnv) initPid(t *testing.T, id string) int {
	t.Helper()
	st, err := e.rt.State(id)
	if err != nil {
		t.Fatalf("state %s: %v", id, err)
	}
	pid, _ := st["pid"].(float64)
	if pid <= 0 {
		t.Fatalf("state %s: no pid: %v", id, st)
	}
	return int(pid)
}

// createPlugged creates the container, plugs a lab link into the network
// namespace mxc made for it (between create and start, once the egress
// filter is already in place) and starts it.
func (e *rtEnv) createPlugged(t *testing.T, b *harness.Bundle) *runningCtr {
	t.Helper()
	id := e.newID()
	e.rt.MustRun("create", "--bundle", b.Dir, id)
	c := &runningCtr{e: e, id: id, pid: e.initPid(t, id)}
	c.netns = fmt.Sprintf("/proc/%d/ns/net", c.pid)
	lk, err := theLab.ReserveLink()
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Attach(theLab.Inet, c.pid, lk); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Detach(theLab.Inet, lk) })
	e.rt.MustRun("start", id)
	return c
}

// exec runs the probe in the container through `mxc-runtime exec`.
func (c *runningCtr) exec(t *testing.T, op ...string) lab.Result {
	t.Helper()
	res := c.e.rt.Run(append([]string{"exec", c.id, "/bin/probe"}, op...)...)
	r, err := lab.ParseResult([]byte(res.Stdout), res.Err, op)
	if err != nil {
		t.Fatalf("exec probe %v: %v (stderr %s)", op, err, res.Stderr)
	}
	if s := strings.TrimSpace(res.Stderr); s != "" {
		t.Logf("exec probe %v: stderr: %s", op, s)
	}
	return r
}

// sh runs a shell command in the container (exec) and returns its output.
func (c *runningCtr) sh(t *testing.T, script string) (string, error) {
	t.Helper()
	res := c.e.rt.Run("exec", c.id, "sh", "-c", script)
	return res.Stdout + res.Stderr, res.Err
}

// outside runs the lab client in the container's network namespace
// without going through mxc (root without the network capabilities):
// the namespace's state, whatever the runtime does.
func (c *runningCtr) outside(t *testing.T, op ...string) lab.Result {
	t.Helper()
	r, err := theLab.ClientIn(context.Background(), c.netns, lab.NoNetCaps, op...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (c *runningCtr) events(t *testing.T, kind string) []audit.Event {
	return harness.AuditEvents(t, c.auditPath(), kind)
}

func (c *runningCtr) auditPath() string { return filepath.Join(c.e.rt.Root, c.id, audit.FileName) }

func (c *runningCtr) waitEvent(t *testing.T, kind string, match func(audit.Event) bool) audit.Event {
	return harness.WaitAuditEvent(t, c.auditPath(), kind, match)
}

func (c *runningCtr) monitorPid(t *testing.T) int {
	t.Helper()
	var rec struct {
		MonitorPid int `json:"monitorPid"`
	}
	b, err := os.ReadFile(filepath.Join(c.e.rt.Root, c.id, "mxc.json"))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &rec)
	return rec.MonitorPid
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

// results reads the JSON lines a container's init wrote to a file.
func waitResults(t *testing.T, path string, n int) []lab.Result {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= n {
			var out []lab.Result
			for _, l := range lines {
				var r lab.Result
				if err := json.Unmarshal([]byte(l), &r); err != nil {
					t.Fatalf("%s: %q: %v", path, l, err)
				}
				out = append(out, r)
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d results: %s", path, len(lines), n, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// initScript runs probe operations as the container's first process,
// writing one result a line to /tmp/init.json, then sleeps.
func initScript(ops ...string) []string {
	var sb strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&sb, "/bin/probe %s >> /tmp/init.json; ", op)
	}
	sb.WriteString("exec sleep 3600")
	return []string{"sh", "-c", sb.String()}
}

// TestRuntimeContainerEgress: a container mxc made the network namespace
// for, plugged into the lab after create: the first process and exec'd
// ones reach the allowed name over TCP and UDP, are refused other names
// (never forwarded), the direct address of a denied host (at once), and a
// foreign resolver answers with the gate's voice.
func TestRuntimeContainerEgress(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, agentPolicy(spec.ModeEnforce), initScript(
		"dns "+lab.UpstreamDNS+":53 allowed.test A",
		"tcp 203.0.113.10:80",
		"udp 203.0.113.10:7000",
		"dns "+lab.UpstreamDNS+":53 init-leak.exfil.test A",
		"tcp 203.0.113.20:80",
	)...)
	c := e.createPlugged(t, b)

	// The helper that serves the gate is the container's policy monitor.
	if gp := egress.GatePID("", c.netns); gp == 0 || gp != c.monitorPid(t) || !strings.Contains(cmdline(gp), "policy-monitor") {
		t.Errorf("gate pid %d (%s), monitor pid %d: want the monitor to serve the gate", gp, cmdline(gp), c.monitorPid(t))
	}

	init := waitResults(t, filepath.Join(b.Dir, "rootfs", "tmp", "init.json"), 5)
	if !init[0].OK || len(init[0].Addrs) == 0 || init[0].Addrs[0] != "203.0.113.10" {
		t.Errorf("init: resolve allowed.test: %+v", init[0])
	}
	if !init[1].OK || !init[2].OK {
		t.Errorf("init: allowed host over TCP %+v, UDP %+v", init[1], init[2])
	}
	if init[3].Rcode != "REFUSED" {
		t.Errorf("init: denied name: %+v", init[3])
	}
	if init[4].OK || !init[4].Refused() {
		t.Errorf("init: denied address: want refused at once, got %+v", init[4])
	}

	// exec'd processes are held by the same rules.
	if r := c.exec(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK || r.Addrs[0] != "203.0.113.10" {
		t.Fatalf("exec: resolve allowed.test: %+v", r)
	}
	if r := c.exec(t, "tcp", "203.0.113.10:80"); !r.OK || r.Data != "hello 203.0.113.10" {
		t.Errorf("exec: TCP to the allowed host: %+v", r)
	}
	if r := c.exec(t, "udp", "203.0.113.10:7000"); !r.OK {
		t.Errorf("exec: UDP to the allowed host: %+v", r)
	}
	if r := c.exec(t, "tcp", "203.0.113.10:443"); r.OK || !r.Refused() {
		t.Errorf("exec: allowed host on a port the rule does not name: %+v", r)
	}
	for _, name := range []string{"denied.test", "exec-leak.exfil.test"} {
		if r := c.exec(t, "dns", lab.UpstreamDNS+":53", name, "A"); r.Rcode != "REFUSED" {
			t.Errorf("exec: %s: want REFUSED, got %+v", name, r)
		}
		if r := c.exec(t, "dns", lab.UpstreamDNS+":53", name, "TXT", "tcp"); r.Rcode != "REFUSED" {
			t.Errorf("exec: %s over TCP: want REFUSED, got %+v", name, r)
		}
	}
	for _, a := range []string{"203.0.113.20:80", "[2001:db8:10::20]:80"} {
		if r := c.exec(t, "tcp", a); r.OK || !r.Refused() {
			t.Errorf("exec: direct address %s: want refused at once, got %+v", a, r)
		}
	}
	if r := c.exec(t, "udp", "203.0.113.20:7000"); r.OK || !r.Refused() {
		t.Errorf("exec: UDP to a denied address: %+v", r)
	}
	// A foreign resolver, over UDP and TCP: the gate answers.
	rogue := len(theLab.Rogue.Queries())
	for _, proto := range []string{"udp", "tcp"} {
		if r := c.exec(t, "dns", lab.RogueDNS+":53", "allowed.test", "A", proto); !r.OK || len(r.Addrs) != 1 || r.Addrs[0] != "203.0.113.10" {
			t.Errorf("exec: foreign resolver over %s: want the gate's answer, got %+v", proto, r)
		}
	}
	if got := theLab.Rogue.Queries(); len(got) != rogue {
		t.Errorf("the foreign resolver was reached: %v", got[rogue:])
	}
	// busybox's own resolver, through the rootfs's resolv.conf.
	if out, err := c.sh(t, "nslookup allowed.test"); err != nil || !strings.Contains(out, "203.0.113.10") {
		t.Errorf("busybox nslookup allowed.test: %v: %s", err, out)
	}
	if out, _ := c.sh(t, "nslookup denied.test"); !strings.Contains(out, "REFUSED") {
		t.Errorf("busybox nslookup denied.test: want REFUSED: %s", out)
	}
	// The exfiltration test: the upstream never saw a denied label (the
	// labels are this test's own; audit-mode tests forward denied.test).
	for _, q := range theLab.Upstream.Queries() {
		if strings.Contains(q, "-leak.") {
			t.Errorf("upstream saw denied query %q", q)
		}
	}
	// Audit events, in the container's log, as `events --audit` shows.
	c.waitEvent(t, audit.KindDNSDeny, func(ev audit.Event) bool { return ev.Detail["name"] == "exec-leak.exfil.test" })
	ev := c.waitEvent(t, audit.KindNetDeny, func(ev audit.Event) bool { return ev.Detail["dst"] == "203.0.113.20" && ev.Detail["port"] == "80" })
	if ev.Container != c.id || ev.Agent != "lab-agent" {
		t.Errorf("net.deny event: %+v", ev)
	}
	out := e.rt.MustRun("events", "--audit", "--no-follow", c.id).Stdout
	if !strings.Contains(out, "dns.deny") || !strings.Contains(out, "net.deny") {
		t.Errorf("events --audit: %s", out)
	}
}

// TestRuntimeAgentCannotEscape: the agent (root in the container, without
// CAP_NET_ADMIN and CAP_NET_RAW) cannot flush the ruleset, open raw or
// packet sockets, or leave through a new network namespace; the policy
// holds afterwards.
func TestRuntimeAgentCannotEscape(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, agentPolicy(spec.ModeEnforce), "sleep", "3600")
	c := e.createPlugged(t, b)
	if r := c.exec(t, "nft-flush"); r.OK || r.Errno != "EPERM" {
		t.Errorf("nft flush ruleset from the agent: want EPERM, got %+v", r)
	}
	if r := c.exec(t, "raw"); r.OK || r.Errno != "EPERM" {
		t.Errorf("raw/packet sockets from the agent: want EPERM, got %+v", r)
	}
	// A new network namespace: no CAP_SYS_ADMIN, and a new user namespace
	// (which would grant one) is refused by the agent's seccomp profile.
	for _, cmd := range []string{"unshare -n true", "unshare -U -r -n true", "unshare -U -r true"} {
		if out, err := c.sh(t, cmd); err == nil {
			t.Errorf("%s from the agent succeeded: %s", cmd, out)
		} else {
			t.Logf("%s: refused: %s", cmd, strings.TrimSpace(out))
		}
	}
	if out, err := exec.Command("nsenter", "--net="+c.netns, "nft", "list", "table", "inet", egress.TableName).CombinedOutput(); err != nil {
		t.Fatalf("table gone: %v: %s", err, out)
	}
	if r := c.exec(t, "tcp", "203.0.113.20:80"); r.OK || !r.Refused() {
		t.Errorf("denied address after the attempts: %+v", r)
	}
	if r := c.exec(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK {
		t.Fatalf("resolve after the attempts: %+v", r)
	}
	if r := c.exec(t, "tcp", "203.0.113.10:80"); !r.OK {
		t.Errorf("allowed host after the attempts: %+v", r)
	}
}

// TestRuntimeGateKilled: the helper serving the gate (the container's
// monitor) killed mid-run fails closed (no DNS, upstream unreached, denied
// addresses refused) until the next `exec` (normal path) restarts it.
func TestRuntimeGateKilled(t *testing.T) {
	// The normal exec path: it is the one that restarts a dead monitor (a
	// fast-path exec, served by the container's exec server, runs no Go on
	// the host), and no exec server started in the background races the
	// kill below.
	t.Setenv("MXC_EXEC_FAST", "0")
	e := newRuntime(t)
	b := e.bundle(t, agentPolicy(spec.ModeEnforce), "sleep", "3600")
	c := e.createPlugged(t, b)
	if r := c.exec(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK {
		t.Fatalf("resolve: %+v", r)
	}
	old := egress.GatePID("", c.netns)
	if old == 0 || old != c.monitorPid(t) {
		t.Fatalf("gate pid %d, monitor %d", old, c.monitorPid(t))
	}
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); egress.GatePID("", c.netns) != 0; {
		if time.Now().After(deadline) {
			t.Fatal("gate still alive after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Fail closed: nothing answers behind the redirect.
	n := len(theLab.Upstream.Queries())
	for _, proto := range []string{"udp", "tcp"} {
		if r := c.outside(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A", proto); r.OK || r.Rcode != "" {
			t.Errorf("DNS over %s with the gate dead: want no answer, got %+v", proto, r)
		}
	}
	if len(theLab.Upstream.Queries()) != n {
		t.Error("a query reached the upstream with the gate dead")
	}
	if r := c.outside(t, "tcp", "203.0.113.20:80"); r.OK || !r.Refused() {
		t.Errorf("denied address with the gate dead: %+v", r)
	}
	// The next exec restarts the monitor, which serves the gate again
	// before the exec'd process runs.
	if r := c.exec(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK || r.Addrs[0] != "203.0.113.10" {
		log, _ := os.ReadFile(filepath.Join(e.rt.Root, c.id, "monitor.log"))
		t.Fatalf("resolve after the restart: %+v\nmonitor.log:\n%s", r, log)
	}
	gp := egress.GatePID("", c.netns)
	if gp == 0 || gp == old || gp != c.monitorPid(t) {
		t.Errorf("after restart: gate %d, monitor %d, old %d", gp, c.monitorPid(t), old)
	}
	if r := c.exec(t, "tcp", "203.0.113.10:80"); !r.OK {
		t.Errorf("allowed host after the restart: %+v", r)
	}
	if r := c.outside(t, "tcp", "203.0.113.20:80"); r.OK || !r.Refused() {
		t.Errorf("denied address after the restart: %+v", r)
	}
}

// pod runs n sleeping containers under the lab policy, detached, all in
// one network namespace of the lab given by path (a pod's); it returns
// the namespace and the containers in the order they started.
func (e *rtEnv) pod(t *testing.T, n int) (string, []*runningCtr) {
	t.Helper()
	ns, err := theLab.NewContainer()
	if err != nil {
		t.Fatal(err)
	}
	path := lab.NetNSPath(ns)
	var ctrs []*runningCtr
	for i := 0; i < n; i++ {
		b := e.bundle(t, agentPolicy(spec.ModeEnforce), "sleep", "3600")
		for j, ln := range b.Spec.Linux.Namespaces {
			if ln.Type == specs.NetworkNamespace {
				b.Spec.Linux.Namespaces[j].Path = path
			}
		}
		b.Save(t)
		id := e.newID()
		e.rt.MustRun("run", "--detach", "--bundle", b.Dir, id)
		ctrs = append(ctrs, &runningCtr{e: e, id: id, pid: e.initPid(t, id), netns: path})
	}
	return ns, ctrs
}

// TestRuntimeNetNSByPathPod: containers joining a network namespace given
// by path (CRI's pod sandbox, podman's pods): the first one's monitor
// serves the gate, the second's stands by; killing the first's takes the
// gate over to the second without any runtime call; deleting them in turn
// leaves the persistent namespace without table or gate.
func TestRuntimeNetNSByPathPod(t *testing.T) {
	e := newRuntime(t)
	ns, ctrs := e.pod(t, 2)
	path := lab.NetNSPath(ns)
	a, bc := ctrs[0], ctrs[1]
	gp := egress.GatePID("", path)
	if gp == 0 || gp != a.monitorPid(t) {
		t.Fatalf("gate %d, first container's monitor %d", gp, a.monitorPid(t))
	}
	for _, c := range ctrs {
		if r := c.exec(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK {
			t.Fatalf("%s: resolve: %+v", c.id, r)
		}
		if r := c.exec(t, "tcp", "203.0.113.20:80"); !r.Refused() {
			t.Errorf("%s: denied address: %+v", c.id, r)
		}
	}
	// Both containers' logs get the namespace's denials.
	for _, c := range ctrs {
		c.waitEvent(t, audit.KindNetDeny, func(ev audit.Event) bool { return ev.Detail["dst"] == "203.0.113.20" && ev.Container == c.id })
	}
	if err := unix.Kill(gp, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The second container's monitor takes the gate over by itself.
	deadline := time.Now().Add(15 * time.Second)
	for {
		np := egress.GatePID("", path)
		if np != 0 && np != gp {
			if np != bc.monitorPid(t) {
				t.Errorf("gate taken over by %d (%s), want the second container's monitor %d", np, cmdline(np), bc.monitorPid(t))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody took the gate over")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := bc.outside(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK {
		t.Errorf("DNS after the takeover: %+v", r)
	}
	e.rt.MustRun("delete", "--force", a.id)
	if egress.GatePID("", path) == 0 {
		t.Error("gate gone while the second container still uses the namespace")
	}
	if r := bc.outside(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK {
		t.Errorf("DNS after the first container left: %+v", r)
	}
	e.rt.MustRun("delete", "--force", bc.id)
	if egress.GatePID("", path) != 0 {
		t.Error("gate still running after the last container left")
	}
	if out, err := nftList(t, ns); err == nil {
		t.Errorf("table left in the persistent namespace:\n%s", out)
	}
}

// TestRuntimeHookNetwork: the network appears during create, from a
// createRuntime hook (docker's libnetwork style), and the container runs
// in the foreground (`run`); its output is the probes' results.
func TestRuntimeHookNetwork(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, agentPolicy(spec.ModeEnforce), "sh", "-c",
		"/bin/probe dns "+lab.UpstreamDNS+":53 allowed.test A; /bin/probe tcp 203.0.113.10:80; /bin/probe dns "+lab.UpstreamDNS+":53 denied.test A; /bin/probe tcp 203.0.113.20:80")
	lk, err := theLab.ReserveLink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Detach(theLab.Inet, lk) })
	b.Spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{
		Path: theLab.Bin,
		Args: []string{theLab.Bin, hookVerb, theLab.Inet, strconv.Itoa(lk.N), lk.Inside, lk.Outside},
	}}}
	b.Save(t)
	res := e.rt.MustRun("run", "--bundle", b.Dir, e.newID())
	var rs []lab.Result
	for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		var r lab.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output %q: %v", res.Stdout, err)
		}
		rs = append(rs, r)
	}
	if len(rs) != 4 {
		t.Fatalf("results: %s", res.Stdout)
	}
	if !rs[0].OK || !rs[1].OK || rs[1].Data != "hello 203.0.113.10" {
		t.Errorf("allowed name and host: %+v %+v", rs[0], rs[1])
	}
	if rs[2].Rcode != "REFUSED" || rs[3].OK || !rs[3].Refused() {
		t.Errorf("denied name and address: %+v %+v", rs[2], rs[3])
	}
}

// TestRuntimeAuditMode: mode audit answers and connects what enforce
// would refuse, and logs it with mode audit.
func TestRuntimeAuditMode(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, agentPolicy(spec.ModeAudit), "sleep", "3600")
	c := e.createPlugged(t, b)
	if r := c.exec(t, "dns", lab.UpstreamDNS+":53", "denied.test", "A"); !r.OK || r.Addrs[0] != "203.0.113.20" {
		t.Fatalf("audit mode: denied.test should resolve: %+v", r)
	}
	if r := c.exec(t, "tcp", "203.0.113.20:80"); !r.OK {
		t.Errorf("audit mode: denied host should be reachable: %+v", r)
	}
	c.waitEvent(t, audit.KindDNSDeny, func(ev audit.Event) bool { return ev.Detail["name"] == "denied.test" && ev.Mode == "audit" })
	c.waitEvent(t, audit.KindNetDeny, func(ev audit.Event) bool {
		return ev.Detail["dst"] == "203.0.113.20" && ev.Mode == "audit" && ev.Detail["name"] == "denied.test"
	})
}

// TestRuntimeHundredContainers: 100 containers with network policies
// created (in parallel batches), checked, and deleted leave no helper,
// gate, table or state behind (checkNothingLeft, after the deletes).
func TestRuntimeHundredContainers(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, agentPolicy(spec.ModeEnforce), "sleep", "3600")
	const total, batch = 100, 10
	ids := make([]string, total)
	for i := range ids {
		ids[i] = e.newID()
	}
	inBatches := func(what string, f func(id string) harness.Result) {
		for lo := 0; lo < total; lo += batch {
			var wg sync.WaitGroup
			errs := make([]string, batch)
			for j := 0; j < batch; j++ {
				wg.Add(1)
				go func(j int) {
					defer wg.Done()
					if res := f(ids[lo+j]); res.Err != nil {
						errs[j] = fmt.Sprintf("%s %s: %v: %s", what, ids[lo+j], res.Err, res.Stderr)
					}
				}(j)
			}
			wg.Wait()
			for _, s := range errs {
				if s != "" {
					t.Fatal(s)
				}
			}
		}
	}
	// One rootfs; a bundle (config) per container, each with a cgroup
	// path of its own.
	bundles := map[string]string{}
	for i, id := range ids {
		dir := t.TempDir()
		sp := *b.Spec
		root := *sp.Root
		root.Path = filepath.Join(b.Dir, "rootfs")
		sp.Root = &root
		lx := *sp.Linux
		lx.CgroupsPath = fmt.Sprintf("%s-%d", b.Spec.Linux.CgroupsPath, i)
		sp.Linux = &lx
		raw, err := json.Marshal(&sp)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		bundles[id] = dir
	}
	inBatches("create", func(id string) harness.Result { return e.rt.Run("create", "--bundle", bundles[id], id) })
	for i, id := range ids {
		if i%25 != 0 {
			continue
		}
		c := &runningCtr{e: e, id: id, pid: e.initPid(t, id)}
		c.netns = fmt.Sprintf("/proc/%d/ns/net", c.pid)
		if gp := egress.GatePID("", c.netns); gp == 0 || gp != c.monitorPid(t) {
			t.Errorf("%s: gate %d, monitor %d", id, gp, c.monitorPid(t))
		}
		if r := c.outside(t, "dns", "127.0.0.53:53", "denied.test", "A"); r.Rcode != "REFUSED" {
			t.Errorf("%s: gate: %+v", id, r)
		}
	}
	inBatches("delete", func(id string) harness.Result { return e.rt.Run("delete", "--force", id) })
	ents, _ := os.ReadDir(e.rt.Root)
	for _, ent := range ents {
		if ent.Name()[0] != '.' {
			t.Errorf("state left: %s", ent.Name())
		}
	}
}

// TestRuntimeGateFailureFailsCreate: a gate that cannot start (its port
// in the namespace is taken) fails create with the reason, and leaves no
// helper, table, gate state or container behind.
func TestRuntimeGateFailureFailsCreate(t *testing.T) {
	e := newRuntime(t)
	ns, err := theLab.NewContainer()
	if err != nil {
		t.Fatal(err)
	}
	var taken net.PacketConn
	if err := lab.InNetNS(ns, func() error {
		var err error
		taken, err = net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", egress.GatePort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	b := e.bundle(t, agentPolicy(spec.ModeEnforce), "sleep", "3600")
	for j, n := range b.Spec.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			b.Spec.Linux.Namespaces[j].Path = lab.NetNSPath(ns)
		}
	}
	b.Save(t)
	id := e.newID()
	res := e.rt.Run("create", "--bundle", b.Dir, id)
	if res.Err == nil {
		t.Fatal("create succeeded with the gate's port taken")
	}
	t.Log(strings.TrimSpace(res.Stderr))
	if !strings.Contains(res.Stderr, "egress") || !strings.Contains(res.Stderr, "address already in use") {
		t.Errorf("create error: %s", res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(e.rt.Root, id)); err == nil {
		t.Errorf("state of the failed container left")
	}
	if out, err := nftList(t, ns); err == nil {
		t.Errorf("table left after the failed create:\n%s", out)
	}
	if p := processesMentioning(e.rt.Root); len(p) > 0 {
		t.Errorf("processes left: %v", p)
	}
}

// TestRuntimeGateWaitsInCStage: the monitor hosting the gate starts as
// mxc-runtime's C stage (one thread, no Go runtime, under 2 MiB), holding
// the sockets the runtime bound; the first query wakes the Go monitor in
// the same process, and that query is answered, not lost.
func TestRuntimeGateWaitsInCStage(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, agentPolicy(spec.ModeEnforce), "sleep", "3600")
	c := e.createPlugged(t, b)
	mon := c.monitorPid(t)
	if gp := egress.GatePID("", c.netns); gp != mon {
		t.Fatalf("gate pid %d, monitor %d: want the monitor to hold the gate", gp, mon)
	}
	logPath := filepath.Join(e.rt.Root, c.id, "monitor.log")
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", mon))
	threads, rss := procStatus(t, mon, "Threads"), procStatus(t, mon, "VmRSS")
	if exe != harness.Binary(t) || threads != "1" {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("monitor before any query: exe %s, %s threads: want mxc-runtime's C stage, one thread\nmonitor.log:\n%s", exe, threads, log)
	}
	t.Logf("C stage: %s resident", rss)
	if kb, _ := strconv.Atoi(strings.Fields(rss)[0]); kb > 2048 {
		t.Errorf("C stage resident %s, want under 2 MiB", rss)
	}
	if r := c.exec(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK || len(r.Addrs) == 0 || r.Addrs[0] != "203.0.113.10" {
		t.Fatalf("first query, answered by the Go monitor it woke: %+v", r)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "Go stage started (gate)") {
		t.Errorf("monitor.log does not say the gate woke the Go monitor:\n%s", log)
	}
	if now := c.monitorPid(t); now != mon || egress.GatePID("", c.netns) != mon || procStatus(t, mon, "Threads") == "1" {
		t.Errorf("after the query: monitor %d, gate %d, %s threads: want the same pid, now Go", now, egress.GatePID("", c.netns), procStatus(t, mon, "Threads"))
	}
	if r := c.exec(t, "tcp", "203.0.113.10:80"); !r.OK {
		t.Errorf("allowed host: %+v", r)
	}
	if r := c.exec(t, "tcp", "203.0.113.20:80"); r.OK || !r.Refused() {
		t.Errorf("denied address: %+v", r)
	}
}

// procStatus is one field of /proc/PID/status.
func procStatus(t *testing.T, pid int, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("monitor %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestRuntimePodGateOutlivesItsInit: the first container of a pod holds
// the namespace's gate in its monitor's C stage. Its init exits; a query
// from the second container then wakes the Go monitor, which serves the
// gate (the namespace is still in use) instead of leaving with the init.
func TestRuntimePodGateOutlivesItsInit(t *testing.T) {
	e := newRuntime(t)
	ns, ctrs := e.pod(t, 2)
	path := lab.NetNSPath(ns)
	a, bc := ctrs[0], ctrs[1]
	mon := a.monitorPid(t)
	if gp := egress.GatePID("", path); gp != mon {
		t.Fatalf("gate %d, first container's monitor %d", gp, mon)
	}
	e.rt.MustRun("kill", a.id, "KILL")
	if err := e.rt.WaitStatus(a.id, "stopped", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if gp := egress.GatePID("", path); gp != mon {
		t.Fatalf("after the first init's exit: gate %d, want its monitor %d still", gp, mon)
	}
	if r := bc.exec(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK || len(r.Addrs) == 0 || r.Addrs[0] != "203.0.113.10" {
		log, _ := os.ReadFile(filepath.Join(e.rt.Root, a.id, "monitor.log"))
		t.Fatalf("query from the second container: %+v\nfirst monitor's log:\n%s", r, log)
	}
	if gp := egress.GatePID("", path); gp != mon || procStatus(t, mon, "Threads") == "1" {
		t.Errorf("after the query: gate %d (%s threads), want the first container's Go monitor %d", gp, procStatus(t, mon, "Threads"), mon)
	}
	if r := bc.exec(t, "tcp", "203.0.113.20:80"); !r.Refused() {
		t.Errorf("denied address: %+v", r)
	}
}
