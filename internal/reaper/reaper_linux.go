//go:build linux

// Package reaper collects the exit statuses of detached processes that are
// re-parented to a test or benchmark process: container inits, policy
// monitors, egress gates, exec servers. Those outlive the mxc-runtime
// command that started them, and on the machines mxc is tested on PID 1 does
// not reap orphans, so the process that started the runtime makes itself a
// child subreaper and reaps them.
//
// Only children that lead their own session are reaped: the detached
// helpers call setsid, the commands a test starts through os/exec never do,
// so os/exec still collects the status of its own commands.
package reaper

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Subreaper makes the calling process the reaper of orphans below it.
func Subreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// children calls fn for every child of this process with the fields of its
// /proc/PID/stat that follow the command name (state, ppid, pgrp, session,
// ...).
func children(fn func(pid int, f []string)) {
	self := strconv.Itoa(os.Getpid())
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: the fields
		// that follow it start after the last ')'.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(data[i+1:])); len(f) >= 4 && f[1] == self {
			fn(pid, f)
		}
	}
}

// SessionLeaders reaps every exited child of this process that leads its
// own session.
func SessionLeaders() {
	children(func(pid int, f []string) {
		if f[0] == "Z" && f[3] == strconv.Itoa(pid) {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	})
}

// All reaps every exited child, session leader or not. Only for callers
// that run no os/exec command meanwhile (it would take that command's
// status).
func All() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// KillAdopted SIGKILLs every child of this process (orphans re-parented to
// it: container inits and helpers a failed run left) and reaps them. Like
// All, only between os/exec commands.
func KillAdopted() {
	killed := false
	children(func(pid int, _ []string) {
		_ = unix.Kill(pid, unix.SIGKILL)
		killed = true
	})
	if killed {
		time.Sleep(50 * time.Millisecond)
	}
	All()
}

// Background reaps session leaders every interval until stop is called;
// stop reaps once more before it returns. A zombie in a container's pid
// namespace must be reaped before the namespace's init can finish exiting,
// so whoever waits for an init must keep reaping meanwhile.
func Background(interval time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			SessionLeaders()
			select {
			case <-quit:
				SessionLeaders()
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
