//go:build linux

// Package monitorwatch lets a long-lived supervisor (the mxc shim) notice
// that a container's policy monitor died while the container runs, and
// have it restarted.
//
// The monitor (linux/enforce) watches the timeout, reports oom and
// fs.deny, and hosts the egress gate. When it is killed (the OOM killer,
// an administrator; the agent cannot reach it), the network fails closed
// but the timeout goes unwatched until something restarts it. An `exec`
// on the normal path does (the engine's PrepareProcess), but an agent may
// run no exec at all. The shim lives as long as its containers, so it
// waits on each monitor's pidfd and, when one exits before its container,
// runs `mxc-runtime policy-ensure ID`.
//
// The package reads the runtime's state files by name and imports none of
// the runtime's packages: the shim binary stays small.
package monitorwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/procstat"
)

const (
	// Verb is the monitor's subcommand of mxc-runtime.
	Verb = "policy-monitor"
	// ConfigFile is the monitor's configuration in the state dir: its
	// argument, and where the container's init is named.
	ConfigFile = "monitor.json"
	// RecordFile is mxc's record of the container, which names the
	// monitor's pid.
	RecordFile = "mxc.json"
)

// IsMonitor reports whether pid is the policy monitor of stateDir: its
// command line is exactly `<exe> policy-monitor <stateDir>/monitor.json`.
//
// The monitor execs (its C stage becomes the Go monitor, same pid), and
// while the kernel sets the new program up the command line reads empty:
// an empty one of a live process that is not a zombie is looked at again
// for a moment (a kernel thread, the only other process without one, is
// never a recorded monitor for longer than that).
func IsMonitor(pid int, stateDir string) bool {
	path := fmt.Sprintf("/proc/%d/cmdline", pid)
	for deadline := time.Now().Add(execWindow); ; {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		if len(b) > 0 {
			args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			return len(args) == 3 && args[1] == Verb && args[2] == filepath.Join(stateDir, ConfigFile)
		}
		if st, err := procstat.Read(pid); err != nil || st.Gone() || time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// execWindow bounds IsMonitor's wait for an exec in progress.
const execWindow = 200 * time.Millisecond

// MonitorPid is the monitor's pid recorded in stateDir's mxc.json (0: no
// monitor, or no record).
func MonitorPid(stateDir string) int {
	b, err := os.ReadFile(filepath.Join(stateDir, RecordFile))
	if err != nil {
		return 0
	}
	var rec struct {
		MonitorPid int `json:"monitorPid"`
	}
	if json.Unmarshal(b, &rec) != nil {
		return 0
	}
	return rec.MonitorPid
}

// InitRunning reports whether the init the monitor of stateDir watches
// still runs: same pid and start time, and not a zombie (the shim reaps
// the init of a container it supervises a moment after its exit).
func InitRunning(stateDir string) bool {
	b, err := os.ReadFile(filepath.Join(stateDir, ConfigFile))
	if err != nil {
		return false
	}
	var m struct {
		InitPid   int    `json:"initPid"`
		InitStart uint64 `json:"initStart"`
	}
	if json.Unmarshal(b, &m) != nil || m.InitStart == 0 {
		return false
	}
	return procstat.Alive(m.InitPid, m.InitStart)
}

// Options tune Watch; the zero value is what the shim uses.
type Options struct {
	// Backoff is the first wait after a failed restart, doubling up to
	// MaxBackoff (defaults 1 s and 30 s).
	Backoff, MaxBackoff time.Duration
	// Logf reports restarts and failures (default: nothing).
	Logf func(format string, args ...any)
}

// Watch follows the monitor of the container whose state dir is stateDir
// until stop closes, the container's init is gone, or the container has
// no monitor. Each time the monitor exits while the init runs, it calls
// ensure (which restarts it, e.g. by running `mxc-runtime policy-ensure`),
// then follows the new one; a failed ensure is retried with a backoff.
func Watch(stop <-chan struct{}, stateDir string, ensure func() error, o Options) {
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	backoff := o.Backoff
	for {
		pid := MonitorPid(stateDir)
		if pid <= 0 {
			return // no monitor was needed, or the container is gone
		}
		if stopped := waitGone(stop, pid, stateDir); stopped {
			return
		}
		if !InitRunning(stateDir) {
			return // the monitor ended with its container
		}
		o.Logf("policy monitor %d of %s is gone while the container runs: restarting it", pid, stateDir)
		if err := ensure(); err != nil {
			o.Logf("restart the policy monitor of %s: %v (next try in %s)", stateDir, err, backoff)
			select {
			case <-stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, o.MaxBackoff)
			continue
		}
		backoff = o.Backoff
		if MonitorPid(stateDir) == pid {
			// Nothing was restarted (the runtime found no init to watch, or
			// another restart raced us): do not spin on the dead pid.
			if !InitRunning(stateDir) {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(backoff):
			}
		}
	}
}

// waitGone blocks until the monitor pid of stateDir has exited (or is not
// that monitor any more) or stop closes; it reports whether stop did.
func waitGone(stop <-chan struct{}, pid int, stateDir string) (stopped bool) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	nonblock := err == nil
	if errors.Is(err, unix.EINVAL) { // PIDFD_NONBLOCK is Linux 5.10
		fd, err = unix.PidfdOpen(pid, 0)
	}
	if err != nil {
		return isClosed(stop) // ESRCH: already gone
	}
	// Checked after the pidfd is open, so the fd is known to be the
	// monitor's and not a later process's with a recycled pid.
	if !IsMonitor(pid, stateDir) {
		unix.Close(fd)
		return isClosed(stop)
	}
	if nonblock {
		return waitPollable(stop, fd)
	}
	defer unix.Close(fd)
	return pollLoop(stop, fd)
}

// pollLoop waits for a pidfd to poll readable (its process exited), in
// slices so that stop is seen; it holds a thread while it waits.
func pollLoop(stop <-chan struct{}, fd int) bool {
	for !isClosed(stop) {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 200)
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			break
		}
	}
	return isClosed(stop)
}

// waitPollable waits on a non-blocking pidfd through Go's poller (no
// thread held per watched monitor); stop interrupts the wait by closing
// the file.
func waitPollable(stop <-chan struct{}, fd int) bool {
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return isClosed(stop)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-stop:
			f.Close() // wakes the Read below
		case <-done:
			f.Close()
		}
	}()
	// The callback's first call asks to wait for readability (the exit);
	// the second, after the poller saw it, ends the wait.
	waited := false
	err = rc.Read(func(uintptr) bool {
		if waited {
			return true
		}
		waited = true
		return false
	})
	if err != nil && !isClosed(stop) {
		// The poller would not take the fd: the slow way (f is still
		// open, done is closed on return).
		return pollLoop(stop, fd)
	}
	return isClosed(stop)
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
