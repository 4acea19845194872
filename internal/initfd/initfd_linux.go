// Package initfd finds, in `mxc-runtime init` (libcontainer's container
// init), the fds that the runtime handed over as the process's ExtraFiles.
//
// libcontainer puts a process's ExtraFiles at fds 3.. in order and its own
// fds (console, init and sync sockets, log pipe, pidfd socket, exec fifo)
// after them, with their numbers in the init's environment. So an fd below
// all of those is one of the ExtraFiles, and without any of those
// variables the process is not libcontainer's init at all.
//
// Which of them is whose is not guessed from its position: the runtime
// queues a message on each socket it hands over, starting with a magic
// string of the socket's owner, and the owner's Claim takes only an fd
// whose queued message starts with its magic (peeked, so any other fd is
// left as it was). The init hello (linux/inithello) and the cgroup v1
// mounts (linux/initmount) claim their sockets this way, so neither can
// write on the other's.
package initfd

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Env are the environment variables in which libcontainer tells its init
// the numbers of its own fds.
var Env = []string{
	"_LIBCONTAINER_CONSOLE", "_LIBCONTAINER_INITPIPE", "_LIBCONTAINER_SYNCPIPE",
	"_LIBCONTAINER_LOGPIPE", "_LIBCONTAINER_PIDFD_SOCK", "_LIBCONTAINER_FIFOFD",
}

// Lowest is the lowest fd libcontainer names in the environment, or -1
// outside libcontainer's init.
func Lowest() int {
	low := -1
	for _, k := range Env {
		v, ok := os.LookupEnv(k)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		if low < 0 || n < low {
			low = n
		}
	}
	return low
}

// maxClaim bounds the queued message Claim reads.
const maxClaim = 64 << 10

// Claim takes fd for the caller if fd is one of the process's ExtraFiles,
// a SOCK_SEQPACKET socket, and the message queued on it starts with magic:
// it reads that message, marks fd close-on-exec (so that the container's
// program never gets it) and returns the rest of the message. Any other fd
// is left as it was: nothing read, nothing written, flags unchanged.
func Claim(fd int, magic string) ([]byte, bool) {
	if !extra(fd) || !seqpacket(fd) {
		return nil, false
	}
	buf := make([]byte, maxClaim)
	n, _, err := unix.Recvfrom(fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err != nil || n < len(magic) || string(buf[:len(magic)]) != magic {
		return nil, false
	}
	if !closeOnExec(fd) {
		return nil, false
	}
	// The peek saw the whole message; now consume it.
	if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil {
		return nil, false
	}
	return buf[len(magic):n], true
}

// extra reports whether fd is one of the process's ExtraFiles.
func extra(fd int) bool {
	low := Lowest()
	return fd >= 3 && low >= 0 && fd < low
}

// seqpacket reports whether fd is a SOCK_SEQPACKET socket, the kind the
// runtime hands over (a client's own fds are rarely one).
func seqpacket(fd int) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return false
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && typ == unix.SOCK_SEQPACKET
}

// closeOnExec marks fd close-on-exec, so that the container's program
// never gets it.
func closeOnExec(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	return err == nil
}
