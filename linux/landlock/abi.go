//go:build linux

// Package landlock applies Landlock rulesets (filesystem access, and scoping
// of abstract unix sockets and signals) to the calling thread, best effort
// across ABI versions.
package landlock

import (
	"golang.org/x/sys/unix"
)

// ABI returns the Landlock ABI version the running kernel offers, 0 when
// Landlock is unavailable (not built in, or disabled at boot).
func ABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}
