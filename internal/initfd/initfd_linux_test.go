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
	if Lowest() != -1 || Extra(3) {
		t.Fatal("outside libcontainer's init, no fd is an ExtraFile")
	}
	t.Setenv("_LIBCONTAINER_INITPIPE", "9")
	t.Setenv("_LIBCONTAINER_SYNCPIPE", "7")
	t.Setenv("_LIBCONTAINER_LOGPIPE", "not a number")
	if got := Lowest(); got != 7 {
		t.Fatalf("Lowest = %d, want 7", got)
	}
	for fd, want := range map[int]bool{2: false, 3: true, 6: true, 7: false, 9: false} {
		if Extra(fd) != want {
			t.Errorf("Extra(%d) = %v, want %v", fd, !want, want)
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
		if got := Seqpacket(fds[0]); got != want {
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
	if Seqpacket(int(r.Fd())) || Seqpacket(-1) {
		t.Error("a pipe or a bad fd is not a seqpacket socket")
	}
	fd, _ := unix.Dup(int(r.Fd()))
	defer unix.Close(fd)
	if !CloseOnExec(fd) {
		t.Fatal("CloseOnExec failed")
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %s not close-on-exec: %v", strconv.Itoa(fd), err)
	}
}
