//go:build linux

package monitorwatch

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"mxc.dev/mxc/internal/procstat"
)

// The test binary stands in for the monitor (argv = exe policy-monitor
// CONFIG, as IsMonitor wants) and for the container's init.
func TestMain(m *testing.M) {
	if os.Getenv("MONITORWATCH_IDLE") == "1" {
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type fixture struct {
	t        *testing.T
	stateDir string
	init     *exec.Cmd
}

// idle starts the test binary idling with the given argv[1:]; safe from
// any goroutine (Watch calls ensure on its own).
func idle(t *testing.T, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Args = append([]string{os.Args[0]}, args...)
	cmd.Env = append(os.Environ(), "MONITORWATCH_IDLE=1")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, nil
}

func mustIdle(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd, err := idle(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// newFixture writes a state dir whose monitor.json names a running init.
func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, stateDir: t.TempDir()}
	f.init = mustIdle(t, "init")
	start := procstat.StartTime(f.init.Process.Pid)
	if start == 0 {
		t.Fatal("no stat of the init")
	}
	f.mustWrite(ConfigFile, map[string]any{"initPid": f.init.Process.Pid, "initStart": start})
	return f
}

func (f *fixture) write(name string, v any) error {
	b, _ := json.Marshal(v)
	return os.WriteFile(filepath.Join(f.stateDir, name), b, 0o600)
}

func (f *fixture) mustWrite(name string, v any) {
	if err := f.write(name, v); err != nil {
		f.t.Fatal(err)
	}
}

// startMonitor starts a stand-in monitor and records it in mxc.json, as
// policy-ensure would; it is called from Watch's goroutine too.
func (f *fixture) startMonitor() (*exec.Cmd, error) {
	m, err := idle(f.t, Verb, filepath.Join(f.stateDir, ConfigFile))
	if err != nil {
		return nil, err
	}
	if err := f.write(RecordFile, map[string]any{"monitorPid": m.Process.Pid}); err != nil {
		return nil, err
	}
	// Start returns once the child's close-on-exec fds are closed, which
	// the kernel does before it sets up the new program's arguments: for
	// a moment /proc/<pid>/cmdline is empty (a slow VM widens it).
	for deadline := time.Now().Add(5 * time.Second); !IsMonitor(m.Process.Pid, f.stateDir); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, errors.New("the stand-in is not taken for the monitor")
		}
	}
	return m, nil
}

func (f *fixture) mustStartMonitor() *exec.Cmd {
	f.t.Helper()
	m, err := f.startMonitor()
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func kill(t *testing.T, c *exec.Cmd) {
	t.Helper()
	_ = c.Process.Kill()
	_ = c.Wait()
}

func watch(f *fixture, stop chan struct{}, ensure func() error) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(stop, f.stateDir, ensure, Options{Backoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Logf: f.t.Logf})
	}()
	return done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A monitor killed while the init runs is restarted, and the new one is
// followed; a monitor that ends with its init is not.
func TestWatchRestartsDeadMonitor(t *testing.T) {
	f := newFixture(t)
	mon := f.mustStartMonitor()
	var ensures atomic.Int32
	var current atomic.Pointer[exec.Cmd]
	ensure := func() error {
		m, err := f.startMonitor()
		if err != nil {
			return err
		}
		current.Store(m) // before the count the test waits for
		ensures.Add(1)
		return nil
	}
	stop := make(chan struct{})
	defer close(stop)
	done := watch(f, stop, ensure)

	time.Sleep(50 * time.Millisecond)
	if ensures.Load() != 0 {
		t.Fatal("ensure called while the monitor runs")
	}
	kill(t, mon)
	waitFor(t, "the restart", func() bool { return ensures.Load() == 1 })
	kill(t, current.Load()) // the second monitor dies too
	waitFor(t, "the second restart", func() bool { return ensures.Load() == 2 })

	// The container ends, then its monitor: no restart, the watch ends.
	kill(t, f.init)
	kill(t, current.Load())
	waitFor(t, "the watch to end", func() bool { return closed(done) })
	if n := ensures.Load(); n != 2 {
		t.Fatalf("%d restarts, want 2", n)
	}
}

// A failing restart is retried, with the backoff, until one works.
func TestWatchRetriesFailedRestart(t *testing.T) {
	f := newFixture(t)
	mon := f.mustStartMonitor()
	var ensures atomic.Int32
	ensure := func() error {
		if ensures.Add(1) < 3 {
			return errors.New("runtime busy")
		}
		_, err := f.startMonitor()
		return err
	}
	stop := make(chan struct{})
	done := watch(f, stop, ensure)
	kill(t, mon)
	waitFor(t, "three tries", func() bool { return ensures.Load() == 3 })
	time.Sleep(100 * time.Millisecond)
	if n := ensures.Load(); n != 3 {
		t.Fatalf("%d tries after a successful restart, want 3", n)
	}
	close(stop)
	waitFor(t, "the watch to stop", func() bool { return closed(done) })
}

// stop ends a watch that is waiting on a live monitor at once.
func TestWatchStops(t *testing.T) {
	f := newFixture(t)
	f.mustStartMonitor()
	stop := make(chan struct{})
	done := watch(f, stop, func() error { t.Error("ensure called"); return nil })
	time.Sleep(30 * time.Millisecond)
	t0 := time.Now()
	close(stop)
	waitFor(t, "the watch to stop", func() bool { return closed(done) })
	if d := time.Since(t0); d > time.Second {
		t.Errorf("stop took %s", d)
	}
}

// No monitor recorded (none was needed) or a recycled pid: nothing to do.
func TestWatchWithoutMonitor(t *testing.T) {
	f := newFixture(t)
	f.mustWrite(RecordFile, map[string]any{})
	done := watch(f, make(chan struct{}), func() error { t.Error("ensure called"); return nil })
	waitFor(t, "the watch to end", func() bool { return closed(done) })

	// The recorded pid runs something else: the monitor is gone, and the
	// init runs, so it is restarted.
	other := mustIdle(t, "not-the-monitor")
	f.mustWrite(RecordFile, map[string]any{"monitorPid": other.Process.Pid})
	if IsMonitor(other.Process.Pid, f.stateDir) {
		t.Fatal("a process with another command line taken for the monitor")
	}
	var ensures atomic.Int32
	stop := make(chan struct{})
	defer close(stop)
	watch(f, stop, func() error {
		_, err := f.startMonitor()
		ensures.Add(1)
		return err
	})
	waitFor(t, "the restart", func() bool { return ensures.Load() == 1 })
}

func TestInitRunningZombie(t *testing.T) {
	f := newFixture(t)
	if !InitRunning(f.stateDir) {
		t.Fatal("a running init is not running")
	}
	_ = f.init.Process.Kill()
	// Not reaped yet: a zombie, which is not running.
	waitFor(t, "the zombie", func() bool { return !InitRunning(f.stateDir) })
	_ = f.init.Wait()
	if InitRunning(f.stateDir) {
		t.Fatal("a reaped init is running")
	}
}
