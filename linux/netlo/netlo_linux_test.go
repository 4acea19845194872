package netlo

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUp brings lo up in a network namespace made for the test (on a
// thread that is then thrown away), twice: the second call finds it up.
func TestUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (makes a network namespace)")
	}
	errc := make(chan error, 1)
	var before, after uint16
	go func() {
		// Never unlocked: the thread ends with the goroutine, its
		// namespace with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		before = loFlags(t)
		if err := Up(); err != nil {
			errc <- err
			return
		}
		if err := Up(); err != nil {
			errc <- err
			return
		}
		after = loFlags(t)
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if before&unix.IFF_UP != 0 || after&unix.IFF_UP == 0 {
		t.Fatalf("lo flags before %#x, after %#x: want down, then up", before, after)
	}
}

func loFlags(t *testing.T) uint16 {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer unix.Close(fd)
	ifr, _ := unix.NewIfreq("lo")
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Error(err)
		return 0
	}
	return ifr.Uint16()
}
