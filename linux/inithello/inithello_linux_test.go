package inithello

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/initfd"
)

// TestHello: Send on the child end (below libcontainer's fds) is received
// with the sender's pid, and leaves the fd close-on-exec.
func TestHello(t *testing.T) {
	conn, child, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer child.Close()
	fd := int(child.Fd())
	// The child end is close-on-exec in the runtime; the init gets a dup
	// without it. Clear it to see Send set it.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	t.Setenv("_LIBCONTAINER_INITPIPE", strconv.Itoa(fd+1))
	if !Send(fd) {
		t.Fatal("Send refused the hello socket")
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("the hello socket is not close-on-exec after Send (flags %#x, %v)", flags, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pid, err := Wait(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if pid != os.Getpid() {
		t.Errorf("hello from pid %d, want %d", pid, os.Getpid())
	}
}

// TestSendLeavesOthersAlone: Send writes nothing on an fd that is not the
// hello socket: at or above libcontainer's fds, outside libcontainer's
// init, a pipe, a stream socket.
func TestSendLeavesOthersAlone(t *testing.T) {
	conn, child, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer child.Close()
	fd := int(child.Fd())

	for _, k := range initfd.Env {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	if Send(fd) {
		t.Error("Send wrote outside libcontainer's init (no _LIBCONTAINER_ fds in the environment)")
	}
	t.Setenv("_LIBCONTAINER_INITPIPE", strconv.Itoa(fd+5))
	t.Setenv("_LIBCONTAINER_CONSOLE", strconv.Itoa(fd))
	if Send(fd) {
		t.Error("Send wrote on an fd libcontainer names (the console socket)")
	}
	os.Unsetenv("_LIBCONTAINER_CONSOLE")

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if int(w.Fd()) < fd+5 && Send(int(w.Fd())) {
		t.Error("Send wrote on a pipe")
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	t.Setenv("_LIBCONTAINER_INITPIPE", strconv.Itoa(sp[1]+1))
	if Send(sp[1]) {
		t.Error("Send wrote on a stream socket")
	}
	if Send(1) || Send(-1) {
		t.Error("Send wrote on stdio or an invalid fd")
	}
	// Another package's socket where the hello would be (linux/initmount's,
	// for a policy without the hello): its message and flags stay.
	other, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other[0])
	defer unix.Close(other[1])
	if _, err := unix.Write(other[0], []byte("mxc-initmount/1\n{}")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("_LIBCONTAINER_INITPIPE", strconv.Itoa(other[1]+1))
	if Send(other[1]) {
		t.Error("Send wrote on another package's socket")
	}
	buf := make([]byte, 64)
	if n, _, err := unix.Recvfrom(other[0], buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("a hello reached the other socket's peer: %q, %v", buf[:n], err)
	}
	if n, _, err := unix.Recvfrom(other[1], buf, unix.MSG_DONTWAIT); err != nil || string(buf[:n]) != "mxc-initmount/1\n{}" {
		t.Errorf("the other socket's message: %q, %v", buf[:n], err)
	}

	// Nothing arrived on the hello socket.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if pid, err := Wait(ctx, conn); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %d, %v; want the context's deadline", pid, err)
	}
}

// TestWaitEnds: Wait returns when its context ends and when the init's end
// closes without a hello.
func TestWaitEnds(t *testing.T) {
	conn, child, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := Wait(ctx, conn); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel: %v", err)
	}
	child.Close()

	conn2, child2, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	child2.Close()
	if _, err := Wait(context.Background(), conn2); err == nil {
		t.Error("Wait returned no error after the peer closed")
	}
}
