//go:build linux

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

// Effective returns the ABI this package enforces on the running kernel:
// the kernel's, capped at MaxKnownABI.
func Effective() int { return min(ABI(), MaxKnownABI) }
