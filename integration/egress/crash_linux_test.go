package egress_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/integration/egress/lab"
	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/linux/enforce"
	"mxc.dev/mxc/spec"
)

// TestKillDuringPolicyCreateThenDeleteForce is the runtime's kill -9 test
// (integration/runtime) with everything a policy adds to `create`: the
// session tier's id range and id-mapped rootfs, the policy monitor (the
// timeout), the egress gate and its table. mxc-runtime is killed at
// spread-out points of `create`; `delete --force` must then leave none of
// it behind.
func TestKillDuringPolicyCreateThenDeleteForce(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, crashPolicy(), "sleep", "1000")

	// How long does one create take on this machine right now?
	id := e.newID()
	t0 := time.Now()
	e.rt.MustRun("create", "--bundle", b.Dir, id)
	span := time.Since(t0) * 6 / 5
	e.rt.MustRun("delete", "--force", id)
	e.assertGone(t, "first create", id, b)

	const iterations = 30
	outcomes := map[string]int{}
	create := func(int) []string {
		id = e.newID()
		return []string{"create", "--bundle", b.Dir, id}
	}
	e.rt.KillDuring(span, iterations, create, func(i int) {
		outcomes[e.rt.Status(id)]++
		if res := e.rt.Run("delete", "--force", id); res.Err != nil {
			t.Fatalf("iteration %d: delete --force: %v %s", i, res.Err, res.Stderr)
		}
		e.assertGone(t, "iteration "+strconv.Itoa(i), id, b)
	})
	t.Logf("create takes ~%s; status seen after the kill, over %d iterations: %v", span*5/6, iterations, outcomes)
}

// TestKillDuringPolicyDeleteThenDeleteForce: a `delete --force` of a
// policy container killed at any point is finished by the next one.
func TestKillDuringPolicyDeleteThenDeleteForce(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, crashPolicy(), "sleep", "1000")

	id := e.newID()
	e.rt.MustRun("create", "--bundle", b.Dir, id)
	e.rt.MustRun("start", id)
	t0 := time.Now()
	e.rt.MustRun("delete", "--force", id)
	span := time.Since(t0) * 6 / 5
	e.assertGone(t, "first delete", id, b)

	const iterations = 20
	deleteOne := func(i int) []string {
		id = e.newID()
		e.rt.MustRun("create", "--bundle", b.Dir, id)
		if i%2 == 0 {
			e.rt.MustRun("start", id)
		}
		return []string{"delete", "--force", id}
	}
	e.rt.KillDuring(span, iterations, deleteOne, func(i int) {
		if res := e.rt.Run("delete", "--force", id); res.Err != nil {
			t.Fatalf("iteration %d: second delete --force: %v %s", i, res.Err, res.Stderr)
		}
		e.assertGone(t, "iteration "+strconv.Itoa(i), id, b)
	})
}

// crashPolicy is the lab policy with everything a policy can add to a
// container's host state: the session tier (id range, id-mapped rootfs),
// file rules, a timeout (the monitor) and egress (the gate, the table).
func crashPolicy() *spec.AgentPolicy {
	pol := agentPolicy(spec.ModeEnforce)
	pol.Isolation = spec.TierSession
	pol.Filesystem = &spec.Filesystem{ReadonlyPaths: []string{"/bin", "/etc"}, ReadwritePaths: []string{"/tmp"}}
	pol.Process = &spec.Process{Timeout: 600_000}
	return pol
}

// assertGone fails the test if anything of container id is left: its
// state dir, a mount (the id-mapped rootfs), a session slot, a gate ref, a
// cgroup, or a process (helper, gate, monitor, or an init still in the
// rootfs).
func (e *rtEnv) assertGone(t *testing.T, when, id string, b *harness.Bundle) {
	t.Helper()
	stateDir := filepath.Join(e.rt.Root, id)
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Fatalf("%s: state dir %s left (%v)", when, stateDir, err)
	}
	if m := mountsMentioning(id); len(m) > 0 {
		t.Fatalf("%s: mounts left: %v", when, m)
	}
	slots, _ := filepath.Glob(filepath.Join(enforce.DefaultSlotDir, "*"))
	for _, s := range slots {
		data, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		var o struct{ StateDir string }
		if json.Unmarshal(data, &o) == nil && o.StateDir == stateDir {
			t.Fatalf("%s: session slot %s still held: %s", when, s, data)
		}
	}
	if refs, _ := filepath.Glob(filepath.Join(egress.DefaultRunDir, "ns-*", "refs", id)); len(refs) > 0 {
		t.Fatalf("%s: gate refs left: %v", when, refs)
	}
	for _, ctrl := range []string{"memory", "pids", "cpu", "freezer", "devices", "blkio", "cpuset", "systemd"} {
		if p := filepath.Join("/sys/fs/cgroup", ctrl, b.Spec.Linux.CgroupsPath); exists(p) {
			t.Fatalf("%s: cgroup left: %s", when, p)
		}
	}
	// Helpers may take a moment to notice their runtime is gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs := append(processesMentioning(stateDir), processesRootedIn(filepath.Join(b.Dir, "rootfs"), filepath.Join(e.rt.Root, ".mxc-idmap"))...)
		if len(procs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes left: %v", when, procs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// mountsMentioning lists mount points of this mount namespace whose path
// contains s.
func mountsMentioning(s string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.Contains(fields[4], s) {
			out = append(out, fields[4])
		}
	}
	return out
}

// processesRootedIn lists pids whose cwd or root is under one of dirs (a
// container's init runs with its cwd in the rootfs until it pivots).
func processesRootedIn(dirs ...string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		if ent.Name()[0] < '0' || ent.Name()[0] > '9' {
			continue
		}
		for _, l := range []string{"cwd", "root"} {
			p, err := os.Readlink(filepath.Join("/proc", ent.Name(), l))
			if err != nil {
				continue
			}
			for _, d := range dirs {
				if strings.HasPrefix(p, d) {
					out = append(out, ent.Name()+": "+l+" "+p)
				}
			}
		}
	}
	return out
}

// TestPolicyEnsureRestartsMonitor: a container's policy monitor killed
// mid-run leaves DNS failing closed and the timeout unwatched until
// `policy-ensure` (what the mxc shim calls when it sees the monitor die)
// restarts it: DNS answers again and the timeout still fires at its
// original deadline. A second policy-ensure changes nothing.
func TestPolicyEnsureRestartsMonitor(t *testing.T) {
	e := newRuntime(t)
	pol := agentPolicy(spec.ModeEnforce)
	const timeout = 6 * time.Second
	pol.Process = &spec.Process{Timeout: uint64(timeout / time.Millisecond)}
	b := e.bundle(t, pol, "sleep", "3600")
	c := e.createPlugged(t, b)
	started := time.Now()
	if r := c.outside(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK {
		t.Fatalf("resolve before: %+v", r)
	}
	old := c.monitorPid(t)
	if old <= 0 || !strings.Contains(cmdline(old), "policy-monitor") {
		t.Fatalf("monitor pid %d: %q", old, cmdline(old))
	}
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Contains(cmdline(old), "policy-monitor"); {
		if time.Now().After(deadline) {
			t.Fatal("monitor still there after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := c.outside(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); r.OK {
		t.Fatalf("DNS answered with the gate dead: %+v", r)
	}
	monitorState := func() any {
		st, err := e.rt.State(c.id)
		if err != nil {
			t.Fatal(err)
		}
		return st["mxcMonitor"]
	}
	if m := monitorState(); m != "gone" {
		t.Errorf("state's mxcMonitor with the monitor dead: %v, want gone", m)
	}

	e.rt.MustRun("policy-ensure", c.id)
	if m := monitorState(); m != "running" {
		t.Errorf("state's mxcMonitor after policy-ensure: %v, want running", m)
	}
	np := c.monitorPid(t)
	if np == old || !strings.Contains(cmdline(np), "policy-monitor") {
		t.Fatalf("after policy-ensure: monitor pid %d (was %d): %q", np, old, cmdline(np))
	}
	if r := c.outside(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK {
		t.Fatalf("resolve after policy-ensure: %+v", r)
	}
	e.rt.MustRun("policy-ensure", c.id)
	if again := c.monitorPid(t); again != np {
		t.Fatalf("a second policy-ensure replaced a running monitor: %d -> %d", np, again)
	}

	if err := e.rt.WaitStatus(c.id, "stopped", timeout+10*time.Second); err != nil {
		t.Fatalf("the timeout did not stop the container: %v", err)
	}
	if took := time.Since(started); took > timeout+3*time.Second {
		t.Errorf("stopped %s after start, the timeout is %s: the restarted monitor did not keep the deadline", took, timeout)
	}
	c.waitEvent(t, audit.KindTimeout, func(audit.Event) bool { return true })
	if res := e.rt.Run("policy-ensure", "no-such-container"); res.Code == 0 || !strings.Contains(res.Stderr, "does not exist") {
		t.Errorf("policy-ensure of an unknown id: exit %d %q", res.Code, res.Stderr)
	}
}

// TestForegroundRunRestartsMonitor: a foreground `run` lives as long as its
// container and restarts its policy monitor when it dies first, as the
// shim does for containerd's containers.
func TestForegroundRunRestartsMonitor(t *testing.T) {
	e := newRuntime(t)
	pol := agentPolicy(spec.ModeEnforce)
	pol.Process = &spec.Process{Timeout: 600_000}
	b := e.bundle(t, pol, "sleep", "3600")
	id := e.newID()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := e.rt.Command(ctx, "run", "--bundle", b.Dir, id)
	var stderr strings.Builder
	run.Stderr = &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	c := &runningCtr{e: e, id: id}
	var old int
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if e.rt.Status(id) == "running" {
			if old = c.monitorPid(t); old > 0 && strings.Contains(cmdline(old), "policy-monitor") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running container with a monitor: %s", stderr.String())
		}
	}
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var np int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if np = c.monitorPid(t); np != old && strings.Contains(cmdline(np), "policy-monitor") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor not restarted (pid %d): %s", np, stderr.String())
		}
	}
	e.rt.MustRun("kill", id, "KILL")
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("run did not end after its container was killed")
	}
	if strings.Contains(cmdline(np), "policy-monitor") {
		t.Errorf("restarted monitor %d still running after the run ended", np)
	}
}

// TestPolicyCreateFailsAfterInitHello: the monitor's configuration and the
// egress filter start as soon as the init says hello (linux/inithello),
// while libcontainer still sets the init up. An init that then fails (here
// on a bind mount whose source does not exist) must fail the create with
// an error that names the mount, and leave nothing of either behind: the
// early work is cancelled and waited for before the clean-up runs.
func TestPolicyCreateFailsAfterInitHello(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, crashPolicy(), "sleep", "1000")
	missing := filepath.Join(t.TempDir(), "no-such-source")
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: missing, Options: []string{"rbind", "ro"}})
	b.Save(t)
	for i := 0; i < 5; i++ {
		id := e.newID()
		res := e.rt.Run("--debug", "create", "--bundle", b.Dir, id)
		if res.Err == nil {
			e.rt.Run("delete", "--force", id)
			t.Fatal("create with a bind mount of a missing source succeeded")
		}
		if !strings.Contains(res.Stderr, "said hello") {
			t.Fatalf("the init did not say hello before failing (the early path was not taken): %s", res.Stderr)
		}
		if !strings.Contains(res.Stderr, "no-such-source") {
			t.Errorf("the error does not name the mount's source: %s", res.Stderr)
		}
		e.assertGone(t, "failed create "+strconv.Itoa(i), id, b)
	}
}

// TestAgentGetsNoHelloSocket: the init's hello socket (linux/inithello)
// sits among the fds libcontainer passes through to the agent's process;
// the init marks it close-on-exec, so the agent must see exactly its
// stdio, with and without the hello.
func TestAgentGetsNoHelloSocket(t *testing.T) {
	e := newRuntime(t)
	b := e.bundle(t, crashPolicy(), "sh", "-c", `ls /proc/$$/fd | tr '\n' ' '`)
	for _, early := range []string{"1", "0"} {
		id := e.newID()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := e.rt.Command(ctx, "--debug", "run", "--bundle", b.Dir, id)
		cmd.Env = append(cmd.Env, "MXC_EARLY_START="+early)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("MXC_EARLY_START=%s: run: %v: %s", early, err, errb.String())
		}
		if said := strings.Contains(errb.String(), "said hello"); said != (early == "1") {
			t.Errorf("MXC_EARLY_START=%s: hello said: %v", early, said)
		}
		if got := strings.TrimSpace(out.String()); got != "0 1 2" {
			t.Errorf("MXC_EARLY_START=%s: the agent's fds are %q, want \"0 1 2\"", early, got)
		}
		e.assertGone(t, "run "+id, id, b)
	}
}

// TestMonitorRunsFromHelperBinary: the policy monitor, and the DNS gate
// it hosts, run from mxc-monitor next to mxc-runtime (cmd/mxc-monitor,
// built by `make build`), and from mxc-runtime itself when told to
// (MXC_HELPER_EXE=runtime, as when mxc-monitor is not installed). Both
// serve the container's DNS.
func TestMonitorRunsFromHelperBinary(t *testing.T) {
	bin, err := filepath.EvalSymlinks(harness.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(filepath.Dir(bin), enforce.HelperName)
	if _, err := os.Stat(helper); err != nil {
		t.Fatalf("%v: `make build` builds mxc-monitor next to mxc-runtime", err)
	}
	for _, tc := range []struct {
		env, want string
	}{{"", helper}, {"runtime", bin}} {
		t.Run("helper="+tc.env, func(t *testing.T) {
			t.Setenv("MXC_HELPER_EXE", tc.env)
			e := newRuntime(t)
			b := e.bundle(t, agentPolicy(spec.ModeEnforce), "sleep", "3600")
			c := e.createPlugged(t, b)
			if r := c.outside(t, "dns", lab.UpstreamDNS+":53", "allowed.test", "A"); !r.OK {
				t.Fatalf("resolve through the gate: %+v", r)
			}
			mp := c.monitorPid(t)
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", mp))
			if err != nil || exe != tc.want {
				t.Errorf("the monitor (pid %d) runs %q (%v), want %s", mp, exe, err, tc.want)
			}
		})
	}
}
