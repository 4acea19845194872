//go:build linux

package agentexec

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FixupInitFDs replaces the "mxc-agent-exe" placeholder fd, if the process
// has one, with an O_PATH, close-on-exec fd of /proc/self/exe, and returns
// the placeholder's fd number (-1 without one). It must run
// in `mxc-runtime init` before libcontainer.Init (which closes or reuses
// nothing below PassedFilesCount+3, where the placeholder sits).
//
// It acts only when /proc/self/exe is one of libcontainer's sealed clones
// (see sealedExe); otherwise the placeholder stays and the exec fails
// closed. O_PATH is enough to exec through /proc/self/fd/N and needs no
// read permission, which matters in a user namespace where the clone's
// owner is unmapped.
func FixupInitFDs() int {
	if os.Getenv("_LIBCONTAINER_INITPIPE") == "" {
		return -1
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	want := "/memfd:" + ExeMemfdName
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(target, want) {
			continue
		}
		exe, err := unix.Open("/proc/self/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fd
		}
		if sealedExe(exe) {
			_ = unix.Dup3(exe, fd, unix.O_CLOEXEC)
		}
		unix.Close(exe)
		return fd
	}
	return -1
}

// overlayfsMagic is OVERLAYFS_SUPER_MAGIC.
const overlayfsMagic = 0x794c7630

// sealedExe reports whether fd is one of libcontainer's exeseal clones,
// none of which leads to the host's binary:
//   - a memfd with the write, grow, shrink and seal seals (as exeseal.IsCloned),
//   - a file on a read-only, lower-only overlayfs mount made with fsmount
//     and never attached to any mount namespace (what exeseal uses when it
//     can: the mount refuses every write),
//   - an unlinked private copy (exeseal's O_TMPFILE / temporary-file
//     fallbacks, e.g. when memfds may not be executable): writing to it
//     changes no binary anyone else runs.
func sealedExe(fd int) bool {
	const base = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0); err == nil {
		return seals&base == base
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return false
	}
	if fs.Type == overlayfsMagic && fs.Flags&unix.ST_RDONLY != 0 {
		return true
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 0
}
