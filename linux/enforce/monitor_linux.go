//go:build linux

package enforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/monitorwatch"
	"mxc.dev/mxc/internal/oomguard"
	"mxc.dev/mxc/internal/procstat"
	"mxc.dev/mxc/linux/egress"
)

// MonitorVerb is the hidden CLI verb of the per-container monitor.
const MonitorVerb = monitorwatch.Verb

const monitorFile = monitorwatch.ConfigFile

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
	// Gate: the monitor is the egress gate's host (egress.GateHost): it
	// serves the namespace's DNS gate in-process, or stands by to take it
	// over (pods), and restarts it when it fails. Instructions come on fd
	// 4, readiness goes out on fd 5.
	Gate bool `json:"gate,omitempty"`
}

// needed reports whether there is anything to watch: a monitor costs a
// process per container, so none is started for nothing.
func (m *monitorConfig) needed() bool { return m.TimeoutMs > 0 || m.OOM || m.KernelAudit || m.Gate }

// startedFile records when the container started (the exec fifo went
// away), so that a restarted monitor keeps the original timeout.
const startedFile = "monitor.started"

// monitorProc is a monitor process: spawned early (before the
// container's init, whose start-up hides its own), configured once the
// init exists.
type monitorProc struct {
	pid      int
	stateDir string
	// config is the write end of the pipe the monitor reads its
	// configuration from.
	config *os.File
	// host is the runtime's side of the gate pipes (gate hosts only).
	host *egress.GateHost
	// ready is read until the monitor listens (kernel audit only).
	ready     *os.File
	needReady bool
}

// configFDEnv tells the monitor to read its configuration from a pipe
// (fd 6) instead of the file named on its command line: it is started
// before the configuration is complete.
const configFDEnv = "MXC_MONITOR_CONFIG_FD"

// spawnMonitor starts the monitor of stateDir detached (own session,
// stdio on /dev/null, errors to monitor.log in the state dir); it waits
// for its configuration (start). gate gives it the egress gate's pipes. It
// is not a child anyone waits for: the caller's process usually exits
// first, and the monitor is reaped by the nearest subreaper (the shim).
func spawnMonitor(exe, stateDir string, gate bool) (_ *monitorProc, err error) {
	logf, err := os.OpenFile(filepath.Join(stateDir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("monitor log: %w", err)
	}
	defer logf.Close()
	var theirs, ours []*os.File
	defer func() {
		for _, f := range theirs {
			f.Close()
		}
		if err != nil {
			for _, f := range ours {
				f.Close()
			}
		}
	}()
	// pipe returns (read, write) and remembers which end the child keeps.
	pipe := func(childReads bool) (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		if childReads {
			theirs, ours = append(theirs, r), append(ours, w)
		} else {
			theirs, ours = append(theirs, w), append(ours, r)
		}
		return r, w, nil
	}
	mp := &monitorProc{stateDir: stateDir}
	// fd 3: the monitor says when it listens to kernel audit.
	readyR, readyW, err := pipe(false)
	if err != nil {
		return nil, err
	}
	// fds 4 and 5: the gate host's instruction and readiness pipes
	// (placeholders without a gate: the numbering stays fixed).
	gateCmdR, gateCmdW, err := pipe(true)
	if err != nil {
		return nil, err
	}
	gateReadyR, gateReadyW, err := pipe(false)
	if err != nil {
		return nil, err
	}
	// fd 6: the configuration.
	cfgR, cfgW, err := pipe(true)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, MonitorVerb, filepath.Join(stateDir, monitorFile))
	cmd.ExtraFiles = []*os.File{readyW, gateCmdR, gateReadyW, cfgR}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// One P and, once started, a small heap (see helperheap): the monitor
	// sleeps almost all the time.
	cmd.Env = []string{"GOMAXPROCS=1", helperheap.Env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", configFDEnv + "=6"}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	mp.pid = cmd.Process.Pid // before Release, which forgets it
	_ = cmd.Process.Release()
	mp.config, mp.ready = cfgW, readyR
	if gate {
		mp.host = &egress.GateHost{Pid: mp.pid, Cmd: gateCmdW, Ready: gateReadyR}
	} else {
		gateCmdW.Close()
		gateReadyR.Close()
	}
	return mp, nil
}

// start hands the monitor its configuration (also written to monitor.json,
// for a restart).
func (mp *monitorProc) start(m monitorConfig) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(mp.stateDir, monitorFile), b); err != nil {
		return fmt.Errorf("monitor config: %w", err)
	}
	_, err = mp.config.Write(b)
	mp.config.Close()
	mp.config = nil
	if err != nil {
		return fmt.Errorf("policy monitor %d: %w", mp.pid, err)
	}
	mp.needReady = m.KernelAudit
	return nil
}

// close releases the runtime's ends of the pipes; a monitor that got no
// configuration exits.
func (mp *monitorProc) close() {
	for _, f := range []*os.File{mp.config, mp.ready} {
		if f != nil {
			f.Close()
		}
	}
	mp.config, mp.ready = nil, nil
	if mp.host != nil {
		if mp.host.Cmd != nil {
			mp.host.Cmd.Close()
		}
		if mp.host.Ready != nil {
			mp.host.Ready.Close()
		}
	}
}

// wait waits, for a monitor that reads kernel audit records, until it
// listens, so that no record of the agent's first moments is missed.
// Timeout and oom watching lose nothing by starting a few milliseconds
// late (the timer runs from `start`, and an OOM needs the agent to have
// run first): create does not wait for those.
func (mp *monitorProc) wait() error {
	defer mp.close()
	if !mp.needReady {
		return nil
	}
	_ = mp.ready.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	if n, _ := mp.ready.Read(buf); n != 1 {
		_ = unix.Kill(mp.pid, unix.SIGKILL)
		b, _ := os.ReadFile(filepath.Join(mp.stateDir, "monitor.log"))
		return fmt.Errorf("the policy monitor did not start: %s", strings.TrimSpace(string(b)))
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// stopMonitor ends the monitor of stateDir, if pid still is it. The
// monitor has nothing to flush (each audit event is one write), so it is
// killed outright; when it is our child (a foreground `run`), it is reaped.
func stopMonitor(pid int, stateDir string) error {
	if pid <= 1 || !monitorwatch.IsMonitor(pid, stateDir) {
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
	helperheap.Start()
	oomguard.Protect()
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: policy-monitor CONFIG")
		return 2
	}
	var b []byte
	var err error
	spawned := os.Getenv(configFDEnv) != ""
	if fd := os.Getenv(configFDEnv); fd != "" {
		// Started before the container's init: the configuration comes
		// once it exists; EOF without one means the create failed.
		n, _ := strconv.Atoi(fd)
		f := os.NewFile(uintptr(n), "config")
		b, err = io.ReadAll(f)
		f.Close()
		os.Unsetenv(configFDEnv)
		if err == nil && len(b) == 0 {
			return 0
		}
	} else {
		b, err = os.ReadFile(args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var m monitorConfig
	if err := json.Unmarshal(b, &m); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if spawned && !m.Gate {
		// spawnMonitor's placeholders for the gate's pipes.
		unix.Close(4)
		unix.Close(5)
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
	if procstat.StartTime(m.InitPid) != m.InitStart {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// SIGHUP tells a gate that the namespace's containers changed; it
	// must never end the monitor (the keeper catches it too).
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, unix.SIGHUP)

	// The egress gate: served here, or watched (see egress.Keeper). It
	// goes first: the runtime's create waits for the gate to serve, and
	// with one P (GOMAXPROCS=1) a goroutine started later would wait for
	// the rest of this set-up; the oom watch below waits for the keeper.
	var keeper *egress.Keeper
	keeperDone := make(chan struct{})
	if m.Gate {
		keeper = egress.NewKeeper(egress.KeepOptions{Cmd: os.NewFile(4, "gate-cmd"), Ready: os.NewFile(5, "gate-ready")})
		go func() {
			defer close(keeperDone)
			if err := keeper.Run(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "egress gate: %v\n", err)
			}
		}()
		runtime.Gosched() // to its first blocking read
	}

	w, err := audit.Open(filepath.Join(m.StateDir, audit.FileName), m.ID, m.Agent)
	if err != nil {
		return err
	}
	defer w.Close()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)

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

	// The oom watch is set up once the gate's set-up is done (above):
	// create waits for the gate, not for this watch.
	var oom <-chan struct{}
	var oomReady chan (<-chan struct{})
	if m.OOM {
		oomReady = make(chan (<-chan struct{}), 1)
		go func() {
			if keeper != nil {
				select {
				case <-keeper.Settled():
				case <-ctx.Done():
					return
				}
			}
			if ch, err := notifyOOM(m.Cgroups); err == nil {
				oomReady <- ch
			} else {
				fmt.Fprintf(os.Stderr, "oom notifications: %v\n", err)
			}
		}()
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
	started := make(chan time.Time, 1)
	if m.TimeoutMs > 0 {
		// The timeout runs from `start` (the exec fifo is gone), not from
		// `create`: a created container may wait for its start a long time.
		// The start time is recorded, so that a monitor restarted later
		// keeps the original deadline.
		go func() {
			fifo := filepath.Join(m.StateDir, "exec.fifo")
			sf := filepath.Join(m.StateDir, startedFile)
			for {
				if b, err := os.ReadFile(sf); err == nil {
					if ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
						started <- time.Unix(0, ns)
						return
					}
				}
				if _, err := os.Lstat(fifo); errors.Is(err, os.ErrNotExist) {
					now := time.Now()
					_ = os.WriteFile(sf, []byte(strconv.FormatInt(now.UnixNano(), 10)), 0o600)
					started <- now
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
		case <-hups:
		case <-keeperDone:
			keeperDone = nil
			if exited == nil {
				return nil // the init is gone and there is no gate to serve
			}
		case t0 := <-started:
			started = nil
			timer = time.After(time.Until(t0.Add(timeout)))
		case <-timer:
			timer = nil
			_ = w.Emit(audit.KindTimeout, map[string]string{"timeout": timeout.String(), "action": "killed"})
			killContainer(m)
		case ch := <-oomReady:
			oom, oomReady = ch, nil
		case _, ok := <-oom:
			if !ok {
				oom = nil
				continue
			}
			_ = w.Emit(audit.KindOOM, map[string]string{"cgroup": m.Cgroups["memory"]})
		case <-exited:
			exited = nil
			if oomReady != nil { // the init ended before the oom watch was set up
				select {
				case oom = <-oomReady:
				case <-time.After(200 * time.Millisecond):
				}
				oomReady = nil
			}
			// An OOM kill of the init is reported just after its exit.
			if oom != nil {
				select {
				case _, ok := <-oom:
					if ok {
						_ = w.Emit(audit.KindOOM, map[string]string{"cgroup": m.Cgroups["memory"]})
					}
				case <-time.After(200 * time.Millisecond):
				case <-sigs: // the runtime is deleting the container
					return nil
				}
			}
			if keeper == nil || !keeper.Serving() || keeperDone == nil {
				return nil
			}
			// The namespace's gate lives here: it stays until Teardown
			// (another container of a pod may still use it).
			oom, timer, started = nil, nil, nil
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
