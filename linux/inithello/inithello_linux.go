package inithello

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/initfd"
)

// magic is queued on the init's end by Pair; Send says hello only on a
// socket whose queued message is it (initfd.Claim).
const magic = "mxc-init-hello/1\n"

// Pair returns the runtime's end of a new hello socket (with SO_PASSCRED)
// and the end to append to the init's ExtraFiles. Both are close-on-exec
// in the runtime; the caller closes child once the init has started.
func Pair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("init hello socket: %w", err)
	}
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("init hello socket: SO_PASSCRED: %w", err)
	}
	if err := unix.Send(fds[0], []byte(magic), 0); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("init hello socket: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "init-hello")
	defer ours.Close() // FileConn dups it
	c, err := net.FileConn(ours)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("init hello socket: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "init-hello-child"), nil
}

// Wait returns the pid (in the caller's pid namespace) of the process that
// said hello on c. It returns ctx's error if ctx ends first, and an error
// if the peer closed its end without a hello.
func Wait(ctx context.Context, c *net.UnixConn) (int, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("init hello: %w", err)
	}
	if n == 0 {
		return 0, errors.New("init hello: the init closed its end without a hello")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return 0, fmt.Errorf("init hello: %w", err)
	}
	for i := range msgs {
		if cred, err := unix.ParseUnixCredentials(&msgs[i]); err == nil && cred.Pid > 0 {
			return int(cred.Pid), nil
		}
	}
	return 0, errors.New("init hello: no sender credentials")
}

// Send says hello on fd, if fd is the hello socket (see the package
// comment), and makes it close-on-exec. It runs in `mxc-runtime init`
// before libcontainer's init and must never fail the init: the runtime
// falls back to waiting for libcontainer when no hello comes.
func Send(fd int) bool {
	if _, ok := initfd.Claim(fd, magic); !ok {
		return false
	}
	return unix.Send(fd, []byte{1}, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL) == nil
}
