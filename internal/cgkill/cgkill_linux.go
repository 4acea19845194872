// Package cgkill ends every process of a container through its cgroups,
// which also reaches a container that shares the host's pid namespace.
// The policy monitor uses it at a timeout and `delete` on a container
// whose create was cut short.
package cgkill

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// All SIGKILLs every process listed in the cgroup.procs of each path, and
// thaws the cgroup (v1 freezer.state, v2 cgroup.freeze: a frozen process
// does not act on SIGKILL). It repeats every 10 ms, for at most attempts
// rounds, until a round finds no process left.
func All(paths map[string]string, attempts int) {
	for i := 0; i < attempts; i++ {
		found := false
		for _, p := range paths {
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
