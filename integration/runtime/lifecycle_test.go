//go:build linux

// Package runtime_test runs mxc-runtime's verbs against real containers:
// runc-compatible behaviour, exit codes, state, and clean teardown.
package runtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	h "mxc.dev/mxc/integration/harness"
)

func TestRunExitStatusAndOutput(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sh", "-c", "echo out; echo err >&2; exit 3")
	res := rt.Run("run", "--bundle", b.Dir, "exit3")
	if res.Code != 3 {
		t.Fatalf("exit code %d, want 3 (stderr %q)", res.Code, res.Stderr)
	}
	if res.Stdout != "out\n" || !strings.Contains(res.Stderr, "err") {
		t.Fatalf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(rt.Root, "exit3")); !os.IsNotExist(err) {
		t.Fatalf("run without --keep left its state dir: %v", err)
	}
}

func TestRunKilledBySignalReports128PlusSignal(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	done := make(chan h.Result, 1)
	go func() { done <- rt.Run("run", "--bundle", b.Dir, "sig") }()
	if err := rt.WaitStatus("sig", "running", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	rt.MustRun("kill", "sig", "KILL")
	select {
	case res := <-done:
		if res.Code != 137 {
			t.Fatalf("exit code %d, want 137 (128+SIGKILL): %s", res.Code, res.Stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its container was killed")
	}
}

// A foreground `run` and `exec` forward a signal sent to mxc-runtime to
// the container's process, as runc does. mxc-runtime starts catching
// signals in the background while it reads its input; that must be done
// before the process starts, or this signal would be lost.
func TestForegroundForwardsSignals(t *testing.T) {
	rt := h.NewRuntime(t)
	script := `trap 'echo got-TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`
	check := func(env []string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := rt.Command(ctx, args...)
		cmd.Env = append(cmd.Env, env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(out)
		if line, err := r.ReadString('\n'); line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("%v: first line %q (%v), stderr %q", args, line, err, stderr.String())
		}
		if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(r)
		_ = cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 7 || !strings.Contains(string(rest), "got-TERM") {
			t.Fatalf("%v: exit code %d, output %q, stderr %q; want 7 and got-TERM", args, code, rest, stderr.String())
		}
	}
	check(nil, "run", "--bundle", h.NewBundle(t, "sh", "-c", script).Dir, "fwd-run")
	rt.MustRun("run", "--detach", "--bundle", h.NewBundle(t, "sleep", "1000").Dir, "fwd-exec")
	// The normal exec path (the fast path's client is C and forwards
	// signals itself; integration/execfast covers it).
	check([]string{"MXC_EXEC_FAST=0"}, "exec", "fwd-exec", "sh", "-c", script)
	rt.MustRun("delete", "--force", "fwd-exec")
}

func TestRunStdinAndKeep(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "cat")
	res := rt.RunIn("piped-in\n", "run", "--keep", "--bundle", b.Dir, "keep")
	if res.Err != nil || res.Stdout != "piped-in\n" {
		t.Fatalf("run: %v stdout %q stderr %q", res.Err, res.Stdout, res.Stderr)
	}
	if st := rt.Status("keep"); st != "stopped" {
		t.Fatalf("kept container status %q, want stopped", st)
	}
	rt.MustRun("delete", "keep")
}

func TestCreateStartStateDelete(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	pidFile := filepath.Join(t.TempDir(), "pid")
	rt.MustRun("create", "--bundle", b.Dir, "--pid-file", pidFile, "c1")
	st, err := rt.State("c1")
	if err != nil {
		t.Fatal(err)
	}
	if st["status"] != "created" || st["id"] != "c1" || st["bundle"] != b.Dir || st["ociVersion"] == "" {
		t.Fatalf("state after create: %v", st)
	}
	pidb, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := strconv.Atoi(string(pidb)); float64(pid) != st["pid"].(float64) || pid <= 0 {
		t.Fatalf("pid file %q, state pid %v", pidb, st["pid"])
	}
	rt.MustRun("start", "c1")
	if err := rt.WaitStatus("c1", "running", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if res := rt.Run("start", "c1"); res.Code == 0 || !strings.Contains(res.Stderr, "already running") {
		t.Fatalf("second start: code %d stderr %q", res.Code, res.Stderr)
	}
	if res := rt.Run("delete", "c1"); res.Code == 0 || !strings.Contains(res.Stderr, "not stopped") {
		t.Fatalf("delete of a running container without --force: code %d stderr %q", res.Code, res.Stderr)
	}
	rt.MustRun("kill", "c1", "KILL")
	if err := rt.WaitStatus("c1", "stopped", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st, _ := rt.State("c1"); st["pid"].(float64) != 0 {
		t.Fatalf("stopped container reports pid %v, want 0", st["pid"])
	}
	if res := rt.Run("start", "c1"); res.Code == 0 || !strings.Contains(res.Stderr, "stopped") {
		t.Fatalf("start of a stopped container: code %d stderr %q", res.Code, res.Stderr)
	}
	rt.MustRun("delete", "c1")
	if res := rt.Run("state", "c1"); res.Code == 0 || !strings.Contains(res.Stderr, "does not exist") {
		t.Fatalf("state after delete: code %d stderr %q", res.Code, res.Stderr)
	}
	assertNoCgroup(t, b)
}

func TestDeleteCreatedContainerKillsIt(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	rt.MustRun("create", "--bundle", b.Dir, "c2")
	pid := int(mustState(t, rt, "c2")["pid"].(float64))
	rt.MustRun("delete", "c2")
	if processAlive(pid) {
		t.Fatalf("init %d still alive after delete of a created container", pid)
	}
}

func TestDeleteForceRunningAndPaused(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	_ = b
	for _, paused := range []bool{false, true} {
		id := fmt.Sprintf("force-%v", paused)
		b := h.NewBundle(t, "sleep", "1000")
		rt.MustRun("run", "--detach", "--bundle", b.Dir, id)
		pid := int(mustState(t, rt, id)["pid"].(float64))
		if paused {
			rt.MustRun("pause", id)
			if st := rt.Status(id); st != "paused" {
				t.Fatalf("status %q, want paused", st)
			}
		}
		rt.MustRun("delete", "--force", id)
		if processAlive(pid) {
			t.Fatalf("%s: init %d alive after delete --force", id, pid)
		}
		assertNoCgroup(t, b)
	}
}

func TestExec(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	rt.MustRun("run", "-d", "--bundle", b.Dir, "ex")

	res := rt.Run("exec", "ex", "sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g); exit 5")
	if res.Code != 5 {
		t.Fatalf("exec exit %d, want 5 (%s)", res.Code, res.Stderr)
	}
	res = rt.Run("exec", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "1000:1000", "ex", "sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g)")
	if res.Err != nil || res.Stdout != "bar /tmp 1000:1000\n" {
		t.Fatalf("exec with flags: %v %q %q", res.Err, res.Stdout, res.Stderr)
	}
	// --process, detached, with a pid file.
	p := *b.Spec.Process
	p.Args = []string{"sh", "-c", "echo from-process-json > /tmp/marker; sleep 1000"}
	pj, _ := json.Marshal(p)
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, pj, 0o644)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	rt.MustRun("exec", "--process", pf, "--detach", "--pid-file", pidFile, "ex")
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("exec --pid-file: %v", err)
	}
	if err := waitFor(5*time.Second, func() bool {
		return rt.Run("exec", "ex", "cat", "/tmp/marker").Stdout == "from-process-json\n"
	}); err != nil {
		t.Fatal("detached exec from --process did not run")
	}
	var pids []int
	if err := json.Unmarshal([]byte(rt.MustRun("ps", "--format", "json", "ex").Stdout), &pids); err != nil || len(pids) != 2 {
		t.Fatalf("ps json: %v %v", pids, err)
	}
	if out := rt.MustRun("ps", "ex").Stdout; !strings.Contains(out, "sleep 1000") || !strings.Contains(out, "PID") {
		t.Fatalf("ps table: %q", out)
	}
	// exec into a paused container needs --ignore-paused.
	rt.MustRun("pause", "ex")
	if res := rt.Run("exec", "ex", "true"); res.Code != 255 || !strings.Contains(res.Stderr, "paused") {
		t.Fatalf("exec into paused: code %d stderr %q", res.Code, res.Stderr)
	}
	rt.MustRun("resume", "ex")
	if st := rt.Status("ex"); st != "running" {
		t.Fatalf("after resume: %q", st)
	}
	// a command that does not exist is exec's failure (255), not the process's.
	if res := rt.Run("exec", "ex", "/no/such/binary"); res.Code != 255 {
		t.Fatalf("exec of a missing binary: code %d, want 255 (%s)", res.Code, res.Stderr)
	}
	rt.MustRun("kill", "ex", "9")
	if err := rt.WaitStatus("ex", "stopped", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if res := rt.Run("exec", "ex", "true"); res.Code != 255 || !strings.Contains(res.Stderr, "stopped") {
		t.Fatalf("exec into stopped container: code %d stderr %q", res.Code, res.Stderr)
	}
}

func TestKillSignalNamesNumbersAndAll(t *testing.T) {
	rt := h.NewRuntime(t)
	// The init traps TERM and USR1 and records them.
	b := h.NewBundle(t, "sh", "-c", "trap 'echo USR1 >> /tmp/sigs' USR1; trap 'echo TERM >> /tmp/sigs; exit 0' TERM; touch /tmp/ready; while true; do sleep 0.05; done")
	rt.MustRun("run", "-d", "--bundle", b.Dir, "k")
	// The init ignores signals it has no handler for (pid 1): wait for the traps.
	if err := waitFor(5*time.Second, func() bool { return rt.Run("exec", "k", "test", "-e", "/tmp/ready").Code == 0 }); err != nil {
		t.Fatal("init never got ready")
	}
	// One at a time: a standard signal pending twice is delivered once.
	for i, s := range []string{"USR1", "SIGUSR1", "10"} {
		rt.MustRun("kill", "k", s)
		if err := waitFor(5*time.Second, func() bool {
			return strings.Count(rt.Run("exec", "k", "cat", "/tmp/sigs").Stdout, "USR1") == i+1
		}); err != nil {
			t.Fatalf("kill k %s not delivered: %q", s, rt.Run("exec", "k", "cat", "/tmp/sigs").Stdout)
		}
	}
	if res := rt.Run("kill", "k", "SIGNOPE"); res.Code == 0 || !strings.Contains(res.Stderr, "unknown signal") {
		t.Fatalf("unknown signal: code %d stderr %q", res.Code, res.Stderr)
	}
	rt.MustRun("kill", "k") // default SIGTERM
	if err := rt.WaitStatus("k", "stopped", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// --all reaches every process.
	b2 := h.NewBundle(t, "sh", "-c", "sleep 1000 & sleep 1000")
	rt.MustRun("run", "-d", "--bundle", b2.Dir, "kall")
	rt.MustRun("kill", "--all", "kall", "KILL")
	if err := rt.WaitStatus("kall", "stopped", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestListFormats(t *testing.T) {
	rt := h.NewRuntime(t)
	if out := rt.MustRun("list", "-q").Stdout; out != "" {
		t.Fatalf("empty list -q: %q", out)
	}
	rt.MustRun("create", "--bundle", h.NewBundle(t, "sleep", "1000").Dir, "la")
	rt.MustRun("run", "-d", "--bundle", h.NewBundle(t, "sleep", "1000").Dir, "lb")
	if out := rt.MustRun("list", "-q").Stdout; out != "la\nlb\n" {
		t.Fatalf("list -q: %q", out)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(rt.MustRun("list", "--format", "json").Stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("list json: %v %v", list, err)
	}
	if list[0]["status"] != "created" || list[1]["status"] != "running" || list[0]["owner"] != "root" {
		t.Fatalf("list json: %v", list)
	}
	if out := rt.MustRun("list").Stdout; !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "lb ") {
		t.Fatalf("list table: %q", out)
	}
	if res := rt.Run("list", "--format", "yaml"); res.Code == 0 {
		t.Fatal("list --format yaml succeeded")
	}
}

func TestEventsStatsAndUpdate(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	rt.MustRun("run", "-d", "--bundle", b.Dir, "ev")
	type statsEvent struct {
		Type string
		ID   string
		Data struct {
			Pids struct{ Current uint64 }
		}
	}
	// pids.current drops asynchronously as the init's threads are released
	// after its execve: poll until the one process is counted.
	var ev statsEvent
	if err := waitFor(5*time.Second, func() bool {
		ev = statsEvent{}
		return json.Unmarshal([]byte(rt.MustRun("events", "--stats", "ev").Stdout), &ev) == nil && ev.Data.Pids.Current == 1
	}); err != nil || ev.Type != "stats" || ev.ID != "ev" {
		t.Fatalf("events --stats: %+v %v", ev, err)
	}
	rt.MustRun("update", "--memory", "64m", "--pids-limit", "50", "ev")
	cg := cgroupDir(t, "memory", b)
	if got := readTrim(t, filepath.Join(cg, "memory.limit_in_bytes")); got != strconv.Itoa(64<<20) {
		t.Fatalf("memory.limit_in_bytes %s", got)
	}
	if got := readTrim(t, filepath.Join(cgroupDir(t, "pids", b), "pids.max")); got != "50" {
		t.Fatalf("pids.max %s", got)
	}
	res := rt.RunIn(`{"pids":{"limit":40}}`, "update", "--resources", "-", "ev")
	if res.Err != nil {
		t.Fatalf("update --resources -: %v %s", res.Err, res.Stderr)
	}
	if got := readTrim(t, filepath.Join(cgroupDir(t, "pids", b), "pids.max")); got != "40" {
		t.Fatalf("pids.max after --resources %s", got)
	}
	if res := rt.Run("events", "--interval", "0s", "ev"); res.Code == 0 {
		t.Fatal("events --interval 0 accepted")
	}
}

func TestFeaturesSpecVersionCheckpoint(t *testing.T) {
	rt := h.NewRuntime(t)
	var f struct {
		OCIVersionMax string
		Annotations   map[string]string
		Linux         struct {
			Seccomp struct{ Enabled bool }
		}
	}
	if err := json.Unmarshal([]byte(rt.MustRun("features").Stdout), &f); err != nil {
		t.Fatal(err)
	}
	if f.OCIVersionMax != specs.Version || f.Annotations["io.mxc.landlock.abi"] == "" || !f.Linux.Seccomp.Enabled {
		t.Fatalf("features: %+v", f)
	}
	// `make build` links musl unless LIBC says glibc; another binary
	// given in MXC_RUNTIME may have been built either way.
	want := map[string]bool{"musl": true}
	switch p := os.Getenv("MXC_RUNTIME"); {
	case p != "" && filepath.Clean(p) != filepath.Join(h.RepoRoot(), "bin", "mxc-runtime"):
		want["glibc"] = true
	case os.Getenv("LIBC") == "glibc":
		want = map[string]bool{"glibc": true}
	}
	if got := f.Annotations["io.mxc.libc"]; !want[got] {
		t.Errorf("features: io.mxc.libc %q, want one of %v (make build's LIBC)", got, want)
	}
	v := rt.MustRun("--version").Stdout
	if !strings.Contains(v, "mxc-runtime version") || !strings.Contains(v, "spec: "+specs.Version) {
		t.Fatalf("--version: %q", v)
	}
	dir := t.TempDir()
	rt.MustRun("spec", "--bundle", dir)
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	if res := rt.Run("spec", "--bundle", dir); res.Code == 0 || !strings.Contains(res.Stderr, "exists") {
		t.Fatalf("spec over an existing config: %q", res.Stderr)
	}
	for _, verb := range []string{"checkpoint", "restore"} {
		if res := rt.Run(verb, "x"); res.Code == 0 || !strings.Contains(res.Stderr, "not supported") {
			t.Fatalf("%s: code %d stderr %q", verb, res.Code, res.Stderr)
		}
	}
}

func TestLogFormatJSONForClients(t *testing.T) {
	rt := h.NewRuntime(t)
	log := filepath.Join(t.TempDir(), "log.json")
	res := rt.Run("--log", log, "--log-format", "json", "state", "nope")
	if res.Code == 0 {
		t.Fatal("state of a missing container succeeded")
	}
	data, _ := os.ReadFile(log)
	var entry struct{ Level, Msg string }
	if err := json.Unmarshal([]byte(strings.Split(strings.TrimSpace(string(data)), "\n")[0]), &entry); err != nil {
		t.Fatalf("log is not JSON lines: %q", data)
	}
	if entry.Level != "error" || !strings.Contains(entry.Msg, "does not exist") {
		t.Fatalf("log entry %+v", entry)
	}
	if !strings.Contains(res.Stderr, "does not exist") {
		t.Fatalf("error not on stderr too: %q", res.Stderr)
	}
}

// helpers

func mustState(t *testing.T, rt *h.Runtime, id string) map[string]any {
	t.Helper()
	st, err := rt.State(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// a zombie is dead for our purposes
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func waitFor(d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %s", d)
}

// cgroupDir is the bundle's cgroup under one v1 hierarchy.
func cgroupDir(t *testing.T, ctrl string, b *h.Bundle) string {
	t.Helper()
	p := filepath.Join("/sys/fs/cgroup", ctrl, b.Spec.Linux.CgroupsPath)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no %s cgroup: %v", ctrl, err)
	}
	return p
}

func assertNoCgroup(t *testing.T, b *h.Bundle) {
	t.Helper()
	for _, ctrl := range []string{"memory", "pids", "cpu", "freezer", "devices", "blkio", "cpuset", "systemd"} {
		p := filepath.Join("/sys/fs/cgroup", ctrl, b.Spec.Linux.CgroupsPath)
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup left behind: %s", p)
		}
	}
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestIDsNamedLikeHelp: "help" and "h" are container ids like any other
// (urfave/cli v2 would otherwise read them as its help subcommand, print
// the help and exit 0, and a client would take the create for done).
func TestIDsNamedLikeHelp(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	for _, id := range []string{"help", "h"} {
		rt.MustRun("create", "--bundle", b.Dir, id)
		if st := rt.Status(id); st != "created" {
			t.Fatalf("%s: status %q after create, want created", id, st)
		}
		rt.MustRun("start", id)
		if res := rt.Run("exec", id, "true"); res.Code != 0 {
			t.Fatalf("exec %s true: exit %d: %s", id, res.Code, res.Stderr)
		}
		rt.MustRun("delete", "--force", id)
		if res := rt.Run("state", id); res.Code == 0 {
			t.Fatalf("state %s after delete succeeded: %s", id, res.Stdout)
		}
	}
	if res := rt.Run("delete", "--help"); res.Code != 0 || !strings.Contains(res.Stdout, "delete") {
		t.Fatalf("delete --help: exit %d, stdout %q", res.Code, res.Stdout)
	}
}
