package cgwarm

import "golang.org/x/sys/unix"

// isCgroup2 reports whether dir is a cgroup2 mount.
func isCgroup2(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}
