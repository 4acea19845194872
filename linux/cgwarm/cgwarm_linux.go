package cgwarm

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Start starts the warm-up in the background when verb (the runtime's, as
// argv.Verb reads it) moves a process into cgroups: create and run. exec is left out: it usually goes through the container's exec
// server, which attaches nothing, and a warm-up there would only hold
// cgroup_mutex for a grace period on every command. Nothing else runs on
// the caller's path.
func Start(verb string) {
	if os.Getenv("MXC_CGROUP_PREWARM") == "0" || !attaches(verb) {
		return
	}
	go func() {
		if p := ProcsFile(); p != "" {
			Warm(p)
		}
	}()
}

// Warm is the no-op attach: this process's pid written to procs, the
// cgroup.procs of the cgroup it is in (ProcsFile). It returns once the
// kernel has taken it (after the grace period, on a cold host).
func Warm(procs string) {
	f, err := os.OpenFile(procs, os.O_WRONLY, 0)
	if err != nil {
		return // no access (rootless, read-only cgroupfs): nothing to warm
	}
	_, _ = f.WriteString(strconv.Itoa(os.Getpid()))
	_ = f.Close()
}

// attaches reports whether verb is create or run.
func attaches(verb string) bool { return verb == "create" || verb == "run" }

// ProcsFile returns the cgroup.procs file of the cgroup this process is
// in, in a hierarchy without controllers where there is one (cgroup2 on a
// hybrid host: the lock is global, so any hierarchy warms it), else in the
// first v1 hierarchy mounted at /sys/fs/cgroup/<name>. "" if none is found.
func ProcsFile() string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	defer f.Close()
	var v1 []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			for _, mnt := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
				p := filepath.Join(mnt, parts[2], "cgroup.procs")
				if IsCgroup2(mnt) && exists(p) {
					return p
				}
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "" && !strings.HasPrefix(c, "name=") {
				v1 = append(v1, filepath.Join("/sys/fs/cgroup", c, parts[2], "cgroup.procs"))
			}
		}
	}
	for _, p := range v1 {
		if exists(p) {
			return p
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
