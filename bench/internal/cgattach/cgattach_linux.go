// Package cgattach times the kernel's cgroup attach: the write that moves
// a process into a cgroup, which on hosts without favordynmods first waits
// for an RCU grace period when no other attach came shortly before. Used by
// mxc-bench (a probe recorded with every run) and bench/coldattach.
package cgattach

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Time starts a sleeping child, times the write of its pid to dir's
// cgroup.procs and ends it (it leaves the cgroup with its exit, so dir can
// be removed).
func Time(dir string) (time.Duration, error) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("attach probe: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("attach probe: %w", err)
	}
	defer f.Close()
	pid := []byte(strconv.Itoa(cmd.Process.Pid))
	start := time.Now()
	_, err = f.Write(pid)
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("attach probe: %w", err)
	}
	return d, nil
}
