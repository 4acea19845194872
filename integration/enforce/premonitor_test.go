//go:build linux

package enforce_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// The policy monitor starts as mxc-runtime's C stage and execs the Go
// monitor only when it has work (docs/design/enforcement.md, "The
// monitor's C stage"). These tests hold it to what the Go monitor did from
// the start: the timeout kills at its deadline, OOM kills are reported
// (also the init's own), delete stops either form, and MXC_PRE_MONITOR=0
// brings the early Go monitor back. The egress gate's part is
// TestRuntimeGateWaitsInCStage (integration/egress).

// monitorOf is the monitor pid recorded for container id.
func monitorOf(t *testing.T, r *harness.Runtime, id string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.Root, id, "mxc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		MonitorPid int `json:"monitorPid"`
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.MonitorPid <= 0 {
		t.Fatalf("mxc.json: monitor pid %d (%v)", rec.MonitorPid, err)
	}
	return rec.MonitorPid
}

// statusField is one field of /proc/PID/status ("" if the process is gone).
func statusField(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func monitorLog(r *harness.Runtime, id string) string {
	b, _ := os.ReadFile(filepath.Join(r.Root, id, "monitor.log"))
	return string(b)
}

// gone reports whether pid has exited (or is a zombie nobody reaped yet).
func gone(pid int) bool {
	s := statusField(pid, "State")
	return s == "" || strings.HasPrefix(s, "Z")
}

func timeoutPolicy(tier spec.Tier, ms uint64) *spec.AgentPolicy {
	p := basePolicy(tier)
	p.Process = &spec.Process{Timeout: ms}
	return p
}

// TestMonitorCStageIdle: a container with a timeout and a memory limit but
// nothing happening keeps the C stage (mxc-runtime, one thread, under
// 1 MiB): it recorded the start for the timeout, and delete stops it.
func TestMonitorCStageIdle(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	b := agentBundle(t, timeoutPolicy(spec.TierProcess, 600000), "sleep", "600")
	id := newID("cstage")
	startDetached(t, r, b, id)
	mon := monitorOf(t, r, id)
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", mon))
	if exe != harness.Binary(t) || statusField(mon, "Threads") != "1" {
		t.Fatalf("monitor %d: exe %s, %s threads; want mxc-runtime's C stage\nmonitor.log:\n%s", mon, exe, statusField(mon, "Threads"), monitorLog(r, id))
	}
	rss := statusField(mon, "VmRSS")
	t.Logf("C stage resident: %s", rss)
	if kb, _ := strconv.Atoi(strings.Fields(rss + " 0")[0]); kb == 0 || kb > 1024 {
		t.Errorf("C stage resident %q, want under 1 MiB", rss)
	}
	// The start is recorded, as the Go monitor records it: a restarted
	// monitor keeps the deadline.
	sb, err := os.ReadFile(filepath.Join(r.Root, id, "monitor.started"))
	ns, perr := strconv.ParseInt(strings.TrimSpace(string(sb)), 10, 64)
	if err != nil || perr != nil || time.Since(time.Unix(0, ns)).Abs() > time.Minute {
		t.Errorf("monitor.started: %q (%v %v)", sb, err, perr)
	}
	if strings.Contains(monitorLog(r, id), "Go stage") {
		t.Errorf("the Go monitor started with nothing to do:\n%s", monitorLog(r, id))
	}
	r.MustRun("delete", "--force", id)
	if !waitFor(5*time.Second, func() bool { return gone(mon) }) {
		t.Errorf("monitor %d outlived delete", mon)
	}
}

// TestMonitorCStageTimeout: the C stage wakes the Go monitor shortly
// before the deadline (MXC_PREMON_LEAD_MS), which kills the container at
// the deadline itself and reports it.
func TestMonitorCStageTimeout(t *testing.T) {
	r := harness.NewRuntime(t)
	r.Env = append(r.Env, "MXC_PREMON_LEAD_MS=500")
	escapeBinary(t)
	const timeout = 3 * time.Second
	b := agentBundle(t, timeoutPolicy(spec.TierProcess, uint64(timeout/time.Millisecond)), "sleep", "60")
	id := newID("cstimeout")
	start := time.Now()
	res := r.Run("run", "--keep", "--bundle", b.Dir, id)
	took := time.Since(start)
	t.Cleanup(func() { r.Run("delete", "--force", id) })
	if res.Code != 137 || took < timeout-100*time.Millisecond || took > timeout+5*time.Second {
		t.Fatalf("run: exit %d after %s; want 137 (SIGKILL) at the %s timeout: %s", res.Code, took, timeout, res.Stderr)
	}
	if !strings.Contains(monitorLog(r, id), "Go stage started (timeout)") {
		t.Errorf("the timeout did not wake the Go monitor:\n%s", monitorLog(r, id))
	}
	if !hasEvent(auditEvents(t, r, id), "timeout") {
		t.Error("no timeout audit event")
	}
}

// TestMonitorCStageOOM: an OOM kill wakes the Go monitor, which reports
// it: of an exec'd process in a running container, and of the init
// itself (the container ends with it; the C stage sees the kill counted
// when the init's pidfd reports its exit).
func TestMonitorCStageOOM(t *testing.T) {
	escapeBinary(t)
	t.Run("exec", func(t *testing.T) {
		r := harness.NewRuntime(t)
		b := agentBundle(t, basePolicy(spec.TierProcess), "sleep", "600")
		id := newID("csoom")
		startDetached(t, r, b, id)
		if res := r.Run("exec", id, "escape", "mem", "512"); res.Code != 137 {
			t.Fatalf("memory bomb: exit %d %s", res.Code, res.Stdout)
		}
		if !waitFor(5*time.Second, func() bool { return hasEvent(auditEvents(t, r, id), "oom") }) {
			t.Errorf("no oom audit event\nmonitor.log:\n%s", monitorLog(r, id))
		}
		if !strings.Contains(monitorLog(r, id), "Go stage started (oom)") {
			t.Errorf("the OOM kill did not wake the Go monitor:\n%s", monitorLog(r, id))
		}
	})
	t.Run("init", func(t *testing.T) {
		r := harness.NewRuntime(t)
		b := agentBundle(t, basePolicy(spec.TierProcess), "escape", "mem", "512")
		id := newID("csoominit")
		res := r.Run("run", "--keep", "--bundle", b.Dir, id)
		t.Cleanup(func() { r.Run("delete", "--force", id) })
		if res.Code != 137 {
			t.Fatalf("memory bomb as the init: exit %d %s", res.Code, res.Stderr)
		}
		if !waitFor(5*time.Second, func() bool { return hasEvent(auditEvents(t, r, id), "oom") }) {
			t.Errorf("no oom audit event for the init's kill\nmonitor.log:\n%s", monitorLog(r, id))
		}
	})
}

// TestMonitorEarlyGoPath: MXC_PRE_MONITOR=0 starts the Go monitor at
// create, as before the C stage, and it still does its work.
func TestMonitorEarlyGoPath(t *testing.T) {
	r := harness.NewRuntime(t)
	r.Env = append(r.Env, "MXC_PRE_MONITOR=0")
	escapeBinary(t)
	b := agentBundle(t, timeoutPolicy(spec.TierProcess, 1500), "sleep", "60")
	id := newID("earlymon")
	startDetached(t, r, b, id)
	mon := monitorOf(t, r, id)
	if !waitFor(5*time.Second, func() bool { n, _ := strconv.Atoi(statusField(mon, "Threads")); return n > 1 }) {
		t.Errorf("monitor %d: %s threads, want the Go monitor", mon, statusField(mon, "Threads"))
	}
	if err := r.WaitStatus(id, "stopped", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !hasEvent(auditEvents(t, r, id), "timeout") {
		t.Error("no timeout audit event")
	}
	if strings.Contains(monitorLog(r, id), "Go stage started") {
		t.Errorf("a C stage ran with MXC_PRE_MONITOR=0:\n%s", monitorLog(r, id))
	}
}
