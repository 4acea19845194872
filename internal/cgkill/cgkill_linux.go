// Package cgkill ends every process of a container through its cgroups,
// which also reaches a container that shares the host's pid namespace.
// The policy monitor uses it at a timeout and `delete` on a container
// whose create was cut short.
package cgkill

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// All SIGKILLs every process listed in the cgroup.procs of each path and
// of every sub-cgroup below it (a container may make its own: systemd in
// it, or a writable cgroup fs), and thaws each of those cgroups (v1
// freezer.state, v2 cgroup.freeze: a frozen process does not act on
// SIGKILL, and a sub-cgroup frozen by itself stays frozen when its parent
// is thawed). It repeats every 10 ms, for at most attempts rounds, until a
// round finds no process left.
func All(paths map[string]string, attempts int) {
	for i := 0; i < attempts; i++ {
		found := false
		for _, p := range paths {
			if killTree(p) {
				found = true
			}
		}
		if !found {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killTree does one round of All for the cgroup at dir and its
// sub-cgroups, parents first; it reports whether it found a process.
func killTree(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			// Gone meanwhile (the cgroup emptied and was removed), or a
			// control file: nothing to do here.
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				found = true
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		_ = os.WriteFile(filepath.Join(p, "freezer.state"), []byte("THAWED"), 0o644)
		_ = os.WriteFile(filepath.Join(p, "cgroup.freeze"), []byte("0"), 0o644)
		return nil
	})
	return found
}
