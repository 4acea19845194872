package initfd

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLowestAndExtra(t *testing.T) {
	for _, k := range Env {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	if Lowest() != -1 || extra(3) {
		t.Fatal("outside libcontainer's init, no fd is an ExtraFile")
	}
	t.Setenv("_LIBCONTAINER_INITPIPE", "9")
	t.Setenv("_LIBCONTAINER_SYNCPIPE", "7")
	t.Setenv("_LIBCONTAINER_LOGPIPE", "not a number")
	if got := Lowest(); got != 7 {
		t.Fatalf("Lowest = %d, want 7", got)
	}
	for fd, want := range map[int]bool{2: false, 3: true, 6: true, 7: false, 9: false} {
		if extra(fd) != want {
			t.Errorf("extra(%d) = %v, want %v", fd, !want, want)
		}
	}
}

func TestSeqpacket(t *testing.T) {
	kinds := map[int]bool{unix.SOCK_SEQPACKET: true, unix.SOCK_STREAM: false, unix.SOCK_DGRAM: false}
	for typ, want := range kinds {
		fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqpacket(fds[0]); got != want {
			t.Errorf("socket type %d: Seqpacket = %v", typ, got)
		}
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if seqpacket(int(r.Fd())) || seqpacket(-1) {
		t.Error("a pipe or a bad fd is not a seqpacket socket")
	}
	fd, _ := unix.Dup(int(r.Fd()))
	defer unix.Close(fd)
	if !closeOnExec(fd) {
		t.Fatal("CloseOnExec failed")
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %s not close-on-exec: %v", strconv.Itoa(fd), err)
	}
}

// TestClaim: Claim takes only an ExtraFile seqpacket socket whose queued
// message starts with the caller's magic; any other fd keeps its message
// and its flags.
func TestClaim(t *testing.T) {
	pair := func(typ int, msg string) (int, int) {
		t.Helper()
		fds, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		if msg != "" {
			if _, err := unix.Write(fds[0], []byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
		return fds[0], fds[1]
	}
	_, mine := pair(unix.SOCK_SEQPACKET, "magic-a/1\npayload")
	_, other := pair(unix.SOCK_SEQPACKET, "magic-b/1\npayload")
	_, empty := pair(unix.SOCK_SEQPACKET, "")
	_, stream := pair(unix.SOCK_STREAM, "magic-a/1\npayload")
	high := max(mine, other, empty, stream)
	for _, k := range Env {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	if _, ok := Claim(mine, "magic-a/1\n"); ok {
		t.Fatal("claimed outside libcontainer's init")
	}
	t.Setenv("_LIBCONTAINER_INITPIPE", strconv.Itoa(high+1))
	for name, fd := range map[string]int{"another magic": other, "no message": empty, "a stream socket": stream} {
		if _, ok := Claim(fd, "magic-a/1\n"); ok {
			t.Errorf("claimed %s", name)
		}
		if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
			t.Errorf("%s: made close-on-exec", name)
		}
	}
	buf := make([]byte, 64)
	if n, _, err := unix.Recvfrom(other, buf, unix.MSG_DONTWAIT); err != nil || string(buf[:n]) != "magic-b/1\npayload" {
		t.Errorf("the other socket's message: %q, %v", buf[:n], err)
	}
	payload, ok := Claim(mine, "magic-a/1\n")
	if !ok || string(payload) != "payload" {
		t.Fatalf("Claim = %q, %v", payload, ok)
	}
	if flags, _ := unix.FcntlInt(uintptr(mine), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
		t.Error("a claimed fd is not close-on-exec")
	}
	if _, _, err := unix.Recvfrom(mine, buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("the claimed message is still queued (%v)", err)
	}
}
