package egress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procStat returns the state letter and start time (clock ticks since
// boot) of pid: together with the pid, the start time names one process and
// guards against a recycled pid.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// comm may contain spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, errors.New("malformed stat")
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22 overall
	if err != nil {
		return 0, 0, err
	}
	return f[0][0], start, nil
}

// procAlive reports whether the process pid that started at start still
// runs (a zombie does not count).
func procAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, s, err := procStat(pid)
	return err == nil && s == start && st != 'Z' && st != 'X'
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
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
}

// stopProcess ends the process p: SIGTERM, then SIGKILL after grace.
func stopProcess(p pidFile, grace time.Duration) error {
	if !procAlive(p.Pid, p.Start) {
		reap(p.Pid)
		return nil
	}
	_ = unix.Kill(p.Pid, unix.SIGTERM)
	if waitGone(p, grace) {
		return nil
	}
	_ = unix.Kill(p.Pid, unix.SIGKILL)
	if waitGone(p, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("process %d did not exit after SIGKILL", p.Pid)
}

func waitGone(p pidFile, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		reap(p.Pid)
		if !procAlive(p.Pid, p.Start) {
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

// spawnGate starts `exe egress-gate --config ... --ready-fd 3` detached: its
// own session, stdio to the gate's log file, not waited for, so that it
// outlives the runtime process that started it. When hostNetNS is set, the
// gate starts in that namespace instead of the caller's. It returns once
// the gate reported its listeners bound.
func spawnGate(ctx context.Context, exe, gateDir, hostNetNS string, lifeline *os.File) (pidFile, error) {
	logf, err := os.OpenFile(filepath.Join(gateDir, "gate.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return pidFile{}, fmt.Errorf("gate log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return pidFile{}, err
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return pidFile{}, err
	}
	defer r.Close()
	cmd := exec.Command(exe, GateVerb, "--config", filepath.Join(gateDir, "gate.json"), "--ready-fd", "3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.ExtraFiles = []*os.File{w}
	if lifeline != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, lifeline)
		cmd.Args = append(cmd.Args, "--lifeline-fd", "4")
	}
	cmd.Dir = "/"
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	start := cmd.Start
	if hostNetNS != "" {
		fd, _, err := openNetNS(hostNetNS)
		if err != nil {
			w.Close()
			return pidFile{}, err
		}
		defer unix.Close(fd)
		start = func() error { return inNetNS(fd, cmd.Start) }
	}
	err = start()
	w.Close()
	if err != nil {
		return pidFile{}, fmt.Errorf("start gate %s: %w", exe, err)
	}
	pid := cmd.Process.Pid
	_, st, serr := procStat(pid)
	p := pidFile{Pid: pid, Start: st}
	_ = cmd.Process.Release() // never Wait: the gate outlives us; reap() collects it if we are still its parent
	fail := func(err error) (pidFile, error) {
		_ = unix.Kill(pid, unix.SIGKILL)
		waitGone(p, 5*time.Second)
		return pidFile{}, err
	}
	if serr != nil {
		return fail(fmt.Errorf("gate %d: %w", pid, serr))
	}

	type result struct {
		msg string
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, 4096))
		done <- result{string(b), err}
	}()
	timer := time.NewTimer(gateStartTimeout)
	defer timer.Stop()
	select {
	case res := <-done:
		msg := strings.TrimSpace(res.msg)
		if msg == "ok" {
			return p, nil
		}
		if msg == "" {
			msg = "exited before it was ready"
			var ws unix.WaitStatus
			if wp, err := unix.Wait4(pid, &ws, 0, nil); err == nil && wp == pid {
				msg = fmt.Sprintf("exited (%s) before it was ready", exitText(ws))
			}
			if tail := logTail(filepath.Join(gateDir, "gate.log")); tail != "" {
				msg += ": " + tail
			}
		}
		return fail(fmt.Errorf("egress gate: %s", strings.TrimPrefix(msg, "error: ")))
	case <-timer.C:
		return fail(fmt.Errorf("egress gate did not get ready within %s", gateStartTimeout))
	case <-ctx.Done():
		return fail(fmt.Errorf("egress gate start: %w", ctx.Err()))
	}
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
