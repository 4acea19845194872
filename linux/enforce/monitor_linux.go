//go:build linux

package enforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
)

// MonitorVerb is the hidden CLI verb of the per-container monitor.
const MonitorVerb = "policy-monitor"

const monitorFile = "monitor.json"

// defaultRoot is mxc-runtime's --root default (cmd/mxc-runtime).
const defaultRoot = "/run/mxc"

// monitorConfig is what the monitor watches.
type monitorConfig struct {
	ID          string            `json:"id"`
	Root        string            `json:"root"`
	StateDir    string            `json:"stateDir"`
	Agent       string            `json:"agent,omitempty"`
	InitPid     int               `json:"initPid"`
	InitStart   uint64            `json:"initStart"`
	TimeoutMs   uint64            `json:"timeoutMs,omitempty"`
	OOM         bool              `json:"oom,omitempty"`
	KernelAudit bool              `json:"kernelAudit,omitempty"`
	HostPID     bool              `json:"hostPID,omitempty"`
	Cgroups     map[string]string `json:"cgroups,omitempty"`
}

// needed reports whether there is anything to watch: a monitor costs a
// process per container, so none is started for nothing.
func (m *monitorConfig) needed() bool { return m.TimeoutMs > 0 || m.OOM || m.KernelAudit }

// startMonitor starts the monitor detached (own session, stdio on
// /dev/null, errors to monitor.log in the state dir) and returns its pid.
// It is not a child anyone waits for: the caller's process usually exits
// first, and the monitor is reaped by the nearest subreaper (the shim).
func startMonitor(exe string, m monitorConfig) (int, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	cfgPath := filepath.Join(m.StateDir, monitorFile)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return 0, fmt.Errorf("monitor config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(m.StateDir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("monitor log: %w", err)
	}
	defer logf.Close()
	// The monitor reports ready on fd 3 once it listens, so that no
	// kernel audit record of the agent's first moments is missed (create
	// waits for it only when it reads kernel audit records).
	rd, wr, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	cmd := exec.Command(exe, MonitorVerb, cfgPath)
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// A small heap: the monitor sleeps almost all the time.
	cmd.Env = []string{"GOMAXPROCS=1", "GOGC=25", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		wr.Close()
		return 0, fmt.Errorf("start monitor: %w", err)
	}
	wr.Close()
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	if !m.KernelAudit {
		// Timeout and oom watching lose nothing by starting a few
		// milliseconds late (the timer runs from `start`, and an OOM needs
		// the agent to have run first): do not make create wait.
		return pid, nil
	}
	_ = rd.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	if n, _ := rd.Read(buf); n != 1 {
		_ = unix.Kill(pid, unix.SIGKILL)
		b, _ := os.ReadFile(filepath.Join(m.StateDir, "monitor.log"))
		return 0, fmt.Errorf("the policy monitor did not start: %s", strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// isMonitor reports whether pid is the monitor of stateDir (and not a
// process that reused the pid).
func isMonitor(pid int, stateDir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return len(args) == 3 && args[1] == MonitorVerb && args[2] == filepath.Join(stateDir, monitorFile)
}

// stopMonitor ends the monitor of stateDir, if pid still is it. The
// monitor has nothing to flush (each audit event is one write), so it is
// killed outright; when it is our child (a foreground `run`), it is reaped.
func stopMonitor(pid int, stateDir string) error {
	if !isMonitor(pid, stateDir) {
		return nil
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop policy monitor %d: %w", pid, err)
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, unix.EINTR) {
			return nil // reaped, or not our child (ECHILD): its parent reaps it
		}
	}
}

// MonitorMain is `mxc-runtime policy-monitor CONFIG`: it watches one
// container until its init exits, killing it when process.timeout runs out
// and writing timeout, oom and fs.deny audit events. It returns the exit
// status.
func MonitorMain(args []string) int {
	debug.SetGCPercent(25)
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: policy-monitor CONFIG")
		return 2
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var m monitorConfig
	if err := json.Unmarshal(b, &m); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := monitor(m); err != nil {
		fmt.Fprintf(os.Stderr, "monitor %s: %v\n", m.ID, err)
		return 1
	}
	return 0
}

func monitor(m monitorConfig) error {
	logrus.SetOutput(os.Stderr)
	readyFile := os.NewFile(3, "ready")
	var readyOnce sync.Once
	ready := func() {
		readyOnce.Do(func() {
			_, _ = readyFile.Write([]byte{1})
			readyFile.Close()
		})
	}
	defer ready()
	pidfd, err := unix.PidfdOpen(m.InitPid, 0)
	if err != nil {
		return nil // the container is already gone
	}
	defer unix.Close(pidfd)
	if procStartTime(m.InitPid) != m.InitStart {
		return nil
	}
	w, err := audit.Open(filepath.Join(m.StateDir, audit.FileName), m.ID, m.Agent)
	if err != nil {
		return err
	}
	defer w.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)

	if !m.KernelAudit {
		// Nothing the agent does first can be missed: let create go on.
		ready()
	}
	exited := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err == nil || !errors.Is(err, unix.EINTR) {
				close(exited)
				return
			}
		}
	}()

	var oom <-chan struct{}
	if m.OOM {
		if c, err := libcontainer.Load(m.Root, m.ID); err == nil {
			if ch, err := c.NotifyOOM(); err == nil {
				oom = ch
			} else {
				fmt.Fprintf(os.Stderr, "oom notifications: %v\n", err)
			}
		}
	}

	if m.KernelAudit {
		mntNS := nsInode(m.InitPid, "mnt")
		domains := map[string]bool{}
		belongs := func(d fsDenial) bool {
			if v, ok := domains[d.Domain]; ok && d.Domain != "" {
				return v
			}
			v, known := attribute(d, mntNS, m)
			if known && d.Domain != "" {
				domains[d.Domain] = v
			}
			return v
		}
		go func() {
			err := readDenials(ctx, ready, func(d fsDenial) {
				if mntNS == 0 || !belongs(d) {
					return
				}
				_ = w.Emit(audit.KindFSDeny, map[string]string{
					"path": d.Path, "access": d.Blockers, "pid": strconv.Itoa(d.Pid),
					"comm": d.Comm, "exe": d.Exe, "syscall": d.Syscall, "source": "landlock",
				})
			})
			if err != nil {
				fmt.Fprintf(os.Stderr, "fs.deny events: %v\n", err)
				ready()
			}
		}()
	}

	var timer <-chan time.Time
	started := make(chan struct{})
	if m.TimeoutMs > 0 {
		// The timeout runs from `start` (the exec fifo is gone), not from
		// `create`: a created container may wait for its start a long time.
		go func() {
			fifo := filepath.Join(m.StateDir, "exec.fifo")
			for {
				if _, err := os.Lstat(fifo); errors.Is(err, os.ErrNotExist) {
					close(started)
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}
	timeout := time.Duration(m.TimeoutMs) * time.Millisecond
	for {
		select {
		case <-started:
			started = nil
			timer = time.After(timeout)
		case <-timer:
			timer = nil
			_ = w.Emit(audit.KindTimeout, map[string]string{"timeout": timeout.String(), "action": "killed"})
			killContainer(m)
		case _, ok := <-oom:
			if !ok {
				oom = nil
				continue
			}
			_ = w.Emit(audit.KindOOM, map[string]string{"cgroup": m.Cgroups["memory"]})
		case <-exited:
			// An OOM kill of the init is reported just after its exit.
			if oom != nil {
				select {
				case _, ok := <-oom:
					if ok {
						_ = w.Emit(audit.KindOOM, map[string]string{"cgroup": m.Cgroups["memory"]})
					}
				case <-time.After(200 * time.Millisecond):
				case <-sigs: // the runtime is deleting the container
				}
			}
			return nil
		case <-sigs:
			return nil
		}
	}
}

// attribute tells whether a denial comes from the container: by the mount
// namespace of the process, else (it already exited) of its parent; an
// exec'd process's parent is the `mxc-runtime exec` that started it, on
// the host, recognised by its command line. known is false when nothing
// can tell (the record is dropped, the domain not remembered).
func attribute(d fsDenial, mntNS uint64, m monitorConfig) (ours, known bool) {
	if ino := nsInode(d.Pid, "mnt"); ino != 0 {
		return ino == mntNS, true
	}
	if d.PPid <= 0 {
		return false, false
	}
	if ino := nsInode(d.PPid, "mnt"); ino == mntNS && ino != 0 {
		return true, true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.PPid))
	if err != nil {
		return false, false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	exec, id, root := false, false, ""
	for i, a := range args {
		switch {
		case a == "exec":
			exec = true
		case a == m.ID && exec:
			id = true
		case a == "--root" && i+1 < len(args):
			root = args[i+1]
		case strings.HasPrefix(a, "--root="):
			root = strings.TrimPrefix(a, "--root=")
		}
	}
	if root == "" {
		root = defaultRoot
	}
	if exec && id && filepath.Clean(root) == filepath.Clean(m.Root) {
		return true, true
	}
	return false, false
}

// killContainer SIGKILLs every process of the container: through its
// cgroups (which also covers a container sharing the host's pid
// namespace), thawing a frozen cgroup so the signal can act.
func killContainer(m monitorConfig) {
	_ = unix.Kill(m.InitPid, unix.SIGKILL)
	for i := 0; i < 200; i++ {
		found := false
		for _, p := range m.Cgroups {
			b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					found = true
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			_ = os.WriteFile(filepath.Join(p, "freezer.state"), []byte("THAWED"), 0o644)
			_ = os.WriteFile(filepath.Join(p, "cgroup.freeze"), []byte("0"), 0o644)
		}
		if !found {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
