package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/internal/cgkill"
	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/oomguard"
	"mxc.dev/mxc/internal/procstat"
	"mxc.dev/mxc/linux/egress"
)

// Main is `mxc-monitor policy-monitor CONFIG` (or mxc-runtime's verb): it watches one
// container until its init exits, killing it when process.timeout runs out
// and writing timeout, oom and fs.deny audit events. It returns the exit
// status.
func Main(args []string) int {
	helperheap.Start()
	oomguard.Protect()
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: policy-monitor CONFIG")
		return 2
	}
	var b []byte
	var err error
	spawned := os.Getenv(ConfigFDEnv) != ""
	if fd := os.Getenv(ConfigFDEnv); fd != "" {
		// Started before the container's init: the configuration comes
		// once it exists; EOF without one means the create failed.
		n, _ := strconv.Atoi(fd)
		f := os.NewFile(uintptr(n), "config")
		b, err = io.ReadAll(f)
		f.Close()
		os.Unsetenv(ConfigFDEnv)
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
	var m Config
	if err := json.Unmarshal(b, &m); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if spawned && !m.Gate {
		// spawnMonitor's placeholders for the gate's pipes.
		unix.Close(4)
		unix.Close(5)
	}
	st, err := stageFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "monitor %s: %v\n", m.ID, err)
		return 1
	}
	if m.Gate && st.pre && st.adopt == nil {
		fmt.Fprintf(os.Stderr, "monitor %s: a gate to host, but no %s\n", m.ID, egress.AdoptEnv)
		return 1
	}
	if err := run(m, st); err != nil {
		fmt.Fprintf(os.Stderr, "monitor %s: %v\n", m.ID, err)
		return 1
	}
	return 0
}

func run(m Config, st stage) error {
	var readyOnce sync.Once
	ready := func() {
		readyOnce.Do(func() {
			if st.pre {
				return // no readiness pipe: the C stage was started late
			}
			readyFile := os.NewFile(3, "ready")
			_, _ = readyFile.Write([]byte{1})
			readyFile.Close()
		})
	}
	defer ready()
	pidfd, err := unix.PidfdOpen(m.InitPid, 0)
	if err == nil && procstat.StartTime(m.InitPid) != m.InitStart {
		unix.Close(pidfd)
		err = unix.ESRCH
	}
	initGone := err != nil
	if initGone {
		// The container is already gone. The C stage may have woken this
		// stage for OOM kills that ended it: report them.
		if st.oomBase != nil && m.OOM {
			if w, err := audit.Append(filepath.Join(m.StateDir, audit.FileName), m.ID, m.Agent); err == nil {
				for range oomKillsSince(m.Cgroups, *st.oomBase) {
					_ = w.Emit(audit.KindOOM, map[string]string{"cgroup": m.Cgroups["memory"]})
				}
				w.Close()
			}
		}
		// A gate handed over by the C stage (a query from another
		// container of the namespace woke it) is served until delete, as
		// it is when the init exits under a running monitor; there is
		// nothing else left to watch.
		if st.adopt == nil || !st.adopt.Serves() {
			return nil
		}
		m.OOM, m.KernelAudit, m.TimeoutMs = false, false, 0
	} else {
		defer unix.Close(pidfd)
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
		opt := egress.KeepOptions{Adopt: st.adopt}
		if st.adopt == nil {
			opt.Cmd, opt.Ready = os.NewFile(4, "gate-cmd"), os.NewFile(5, "gate-ready")
		}
		keeper = egress.NewKeeper(opt)
		go func() {
			defer close(keeperDone)
			if err := keeper.Run(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "egress gate: %v\n", err)
			}
		}()
		runtime.Gosched() // to its first blocking read
	}

	w, err := audit.Append(filepath.Join(m.StateDir, audit.FileName), m.ID, m.Agent)
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
		if initGone {
			close(exited)
			return
		}
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
			if ch, err := notifyOOM(m.Cgroups, st.oomBase); err == nil {
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
			sf := filepath.Join(m.StateDir, StartedFile)
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
			if initGone && keeper != nil {
				// Whether the keeper serves is known once it settled.
				select {
				case <-keeper.Settled():
				case <-sigs:
					return nil
				}
			}
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
func attribute(d fsDenial, mntNS uint64, m Config) (ours, known bool) {
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

// killContainer SIGKILLs every process of the container: its init, then
// everything in its cgroups (which also covers a container sharing the
// host's pid namespace).
func killContainer(m Config) {
	_ = unix.Kill(m.InitPid, unix.SIGKILL)
	cgkill.All(m.Cgroups, 200)
}
