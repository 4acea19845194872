//go:build linux

package landlock

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rulesetAttr is struct landlock_ruleset_attr up to ABI 7 (scoped). It is
// declared here rather than taken from x/sys because newer x/sys versions
// grow the struct with fields older kernels reject when non-zero; passing
// our own size keeps the call valid on every ABI.
type rulesetAttr struct {
	handledFS  uint64
	handledNet uint64
	scoped     uint64
}

// Result is what Apply enforced.
type Result struct {
	// ABI is the version the ruleset was built for (kernel's, capped).
	ABI int
	// Missing lists rule paths that do not exist (nothing was granted there).
	Missing []string
}

// Apply installs r on the calling thread; the caller must hold the thread
// (runtime.LockOSThread) until it execs, because a Landlock domain belongs
// to the thread that restricts itself and to what it execs. no_new_privs
// must already be set (or the thread hold CAP_SYS_ADMIN).
//
// Best effort: the ruleset handles what the running ABI knows. Whether a
// missing right is acceptable is for the caller to decide beforehand
// (see FSRights, Scopes).
func (r *Ruleset) Apply() (Result, error) {
	res := Result{ABI: Effective()}
	if r.Empty() {
		return res, nil
	}
	if res.ABI < 1 {
		return res, errors.New("landlock: not supported by this kernel")
	}
	attr := rulesetAttr{scoped: r.Scoped & Scopes(res.ABI)}
	if r.HandleFS {
		attr.handledFS = FSRights(res.ABI)
	}
	size := unsafe.Sizeof(attr)
	if res.ABI < 6 {
		size = unsafe.Offsetof(attr.scoped) // the scoped field is ABI 6
	}
	if res.ABI < 4 {
		size = unsafe.Offsetof(attr.handledNet)
	}
	if attr.handledFS == 0 && attr.scoped == 0 {
		return res, nil
	}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return res, fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	rfd := int(fd)
	defer unix.Close(rfd)
	if r.HandleFS {
		for _, pr := range r.Paths {
			ok, err := addPathRule(rfd, pr, attr.handledFS)
			if err != nil {
				return res, err
			}
			if !ok {
				res.Missing = append(res.Missing, pr.Path)
			}
		}
	}
	var flags uintptr
	if r.LogNewExec && SupportsAuditLog(res.ABI) {
		flags |= restrictSelfLogNewExecOn
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rfd), flags, 0); errno != 0 {
		return res, fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return res, nil
}

// addPathRule adds one path-beneath rule. A path that does not exist, or
// that the caller cannot reach (a directory above it is not searchable),
// is skipped (false): there is nothing it could be granted.
func addPathRule(rfd int, pr PathRule, handled uint64) (bool, error) {
	pfd, err := unix.Open(pr.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EACCES) {
			return false, nil
		}
		return false, &os.PathError{Op: "landlock: open", Path: pr.Path, Err: err}
	}
	defer unix.Close(pfd)
	access := pr.Access & handled
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return false, &os.PathError{Op: "landlock: stat", Path: pr.Path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= fileRights
	}
	if access == 0 {
		return true, nil
	}
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(pfd)}
	if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rfd), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&attr)), 0, 0, 0); errno != 0 {
		return false, &os.PathError{Op: "landlock_add_rule", Path: pr.Path, Err: errno}
	}
	return true, nil
}
