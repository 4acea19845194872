//go:build linux

package enforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/monitorwatch"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/linux/monitor"
)

const monitorFile = monitor.ConfigFile

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
	cmd := exec.Command(exe, monitor.Verb, filepath.Join(stateDir, monitorFile))
	cmd.ExtraFiles = []*os.File{readyW, gateCmdR, gateReadyW, cfgR}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// One P and, once started, a small heap (see helperheap): the monitor
	// sleeps almost all the time.
	cmd.Env = []string{"GOMAXPROCS=1", helperheap.Env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", monitor.ConfigFDEnv + "=6"}
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
func (mp *monitorProc) start(m monitor.Config) error {
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
