package cgwarm

import "golang.org/x/sys/unix"

// IsCgroup2 reports whether dir is a cgroup2 mount. On /sys/fs/cgroup it
// is opencontainers/cgroups' IsCgroup2UnifiedMode, for callers (the
// policy monitor) that do not link that package.
func IsCgroup2(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}
