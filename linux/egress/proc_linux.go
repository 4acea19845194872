package egress

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/procstat"
)

// kill signals one process. It refuses anything but a single real pid:
// kill(2) with 0 or -1 would signal a whole process group, or every process.
func kill(pid int, sig unix.Signal) error {
	if pid <= 1 {
		return fmt.Errorf("refusing to signal pid %d", pid)
	}
	if pid == os.Getpid() {
		// This process serves the gate itself (a keeper); whoever hosts
		// it stops it by ending the keeper, not by a signal.
		return fmt.Errorf("refusing to signal this process (%d)", pid)
	}
	return unix.Kill(pid, sig)
}

type pidFile struct {
	Pid   int
	Start uint64
}

func writePidFile(path string, p pidFile) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", p.Pid, p.Start)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readPidFile(path string) (pidFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidFile{}, err
	}
	var p pidFile
	if _, err := fmt.Sscanf(string(b), "%d %d", &p.Pid, &p.Start); err != nil {
		return pidFile{}, fmt.Errorf("pid file %s: %w", path, err)
	}
	return p, nil
}

// reap collects pid if it is our child and has exited; a process started
// by another (exited) runtime is reaped by its new parent.
func reap(pid int) {
	if pid <= 0 {
		return // wait4 with 0 or -1 would take any child's status
	}
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
}

// stopProcess ends the process p: SIGTERM, then SIGKILL after grace.
func stopProcess(p pidFile, grace time.Duration) error {
	if p.Pid == os.Getpid() {
		return nil // see kill
	}
	if !procstat.Alive(p.Pid, p.Start) {
		reap(p.Pid)
		return nil
	}
	_ = kill(p.Pid, unix.SIGTERM)
	if waitGone(p, grace) {
		return nil
	}
	_ = kill(p.Pid, unix.SIGKILL)
	if waitGone(p, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("process %d did not exit after SIGKILL", p.Pid)
}

func waitGone(p pidFile, d time.Duration) bool {
	// A pidfd turns readable the moment the process exits: no polling
	// interval added to every Teardown.
	if fd, err := unix.PidfdOpen(p.Pid, 0); err == nil {
		defer unix.Close(fd)
		// Checked after the open: the fd is then known to name p.
		if procstat.Alive(p.Pid, p.Start) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			deadline := time.Now().Add(d)
			for {
				left := time.Until(deadline)
				if left <= 0 {
					break
				}
				n, err := unix.Poll(fds, int(left.Milliseconds())+1)
				if err == unix.EINTR {
					continue
				}
				if err != nil || n > 0 {
					break
				}
			}
		}
		reap(p.Pid)
		return !procstat.Alive(p.Pid, p.Start)
	}
	deadline := time.Now().Add(d)
	for {
		reap(p.Pid)
		if !procstat.Alive(p.Pid, p.Start) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gateStartTimeout bounds how long Setup waits for the gate to bind.
const gateStartTimeout = 15 * time.Second

// spawnHost starts `exe egress-gate --cmd-fd 3 --ready-fd 4` detached: its
// own session, stdio to the gate's log file, not waited for, so that it
// outlives the runtime process that started it. When hostNetNS is set, it
// starts in that namespace instead of the caller's. It returns at once:
// the process starts up while the caller programs the table, and serves
// once told to (GateHost.serve).
func spawnHost(exe, gateDir, hostNetNS string, lifeline *os.File) (*GateHost, error) {
	logf, err := os.OpenFile(filepath.Join(gateDir, "gate.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gate log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer cmdR.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		cmdW.Close()
		return nil, err
	}
	defer readyW.Close()
	cmd := exec.Command(exe, GateVerb, "--cmd-fd", "3", "--ready-fd", "4")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.ExtraFiles = []*os.File{cmdR, readyW}
	if lifeline != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, lifeline)
		cmd.Args = append(cmd.Args, "--lifeline-fd", "5")
	}
	cmd.Dir = "/"
	// One P and, once started, a small heap (see helperheap), as the
	// policy monitor that hosts a container's gate: the gate sleeps almost
	// all the time, and its blocking upstream reads do not hold the P
	// (bench/egress measured no difference in DNS latency).
	cmd.Env = []string{"GOMAXPROCS=1", helperheap.Env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	start := cmd.Start
	if hostNetNS != "" {
		fd, _, err := openNetNS(hostNetNS)
		if err != nil {
			cmdW.Close()
			readyR.Close()
			return nil, err
		}
		defer unix.Close(fd)
		start = func() error { return inNetNS(fd, cmd.Start) }
	}
	if err := start(); err != nil {
		cmdW.Close()
		readyR.Close()
		return nil, fmt.Errorf("start gate %s: %w", exe, err)
	}
	pid := cmd.Process.Pid    // before Release, which forgets it
	_ = cmd.Process.Release() // never Wait: the gate outlives us; reap() collects it if we are still its parent
	return &GateHost{Pid: pid, Cmd: cmdW, Ready: readyR}, nil
}

// serveOwn has a host spawnHost started serve the gate of gd; on failure
// the process is killed and the error says why it failed.
func serveOwn(ctx context.Context, h *GateHost, gd string) (pidFile, error) {
	p, err := h.serve(ctx)
	if err == nil {
		return p, nil
	}
	h.close()
	_ = kill(h.Pid, unix.SIGKILL)
	var ws unix.WaitStatus
	if wp, werr := unix.Wait4(h.Pid, &ws, 0, nil); werr == nil && wp == h.Pid && !ws.Signaled() {
		err = fmt.Errorf("%w (gate %s)", err, exitText(ws))
	}
	if tail := logTail(filepath.Join(gd, "gate.log")); tail != "" && !strings.Contains(err.Error(), tail) {
		err = fmt.Errorf("%w: %s", err, tail)
	}
	return pidFile{}, err
}

// killHost ends a host spawnHost started that never served.
func killHost(h *GateHost) {
	h.close()
	st, err := procstat.Read(h.Pid)
	if err != nil {
		return
	}
	_ = kill(h.Pid, unix.SIGKILL)
	waitGone(pidFile{Pid: h.Pid, Start: st.Start}, 5*time.Second)
}

// logTail returns the last line of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func exitText(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("status %d", ws.ExitStatus())
}
