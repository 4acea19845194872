package egress

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/netlo"
)

// nsKey identifies a network namespace by the device and inode of its nsfs
// file: two paths name the same namespace exactly when their keys agree.
type nsKey struct{ Dev, Ino uint64 }

func (k nsKey) String() string { return fmt.Sprintf("%d-%d", k.Dev, k.Ino) }

// openNetNS opens path and checks that it is a network namespace.
func openNetNS(path string) (int, nsKey, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nsKey{}, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	k, err := fdKey(fd)
	if err != nil {
		unix.Close(fd)
		return -1, nsKey{}, fmt.Errorf("network namespace %s: %w", path, err)
	}
	return fd, k, nil
}

func fdKey(fd int) (nsKey, error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return nsKey{}, err
	}
	if fs.Type != unix.NSFS_MAGIC {
		return nsKey{}, fmt.Errorf("not a namespace file (nsfs, found filesystem type %#x)", fs.Type)
	}
	// NS_GET_NSTYPE tells a network namespace from the others.
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return nsKey{}, fmt.Errorf("NS_GET_NSTYPE: %w", err)
	}
	if typ != unix.CLONE_NEWNET {
		return nsKey{}, errors.New("not a network namespace")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nsKey{}, err
	}
	return nsKey{Dev: st.Dev, Ino: st.Ino}, nil
}

// inNetNS runs fn on an OS thread that has joined the network namespace
// nsfd, then returns the thread to the namespace it came from. Sockets fn
// creates stay in nsfd's namespace for their whole life, while the process
// (and every other thread) stays where it is.
func inNetNS(nsfd int, fn func() error) error {
	return onNetNSThread(func() error {
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return nil
	}, fn)
}

// onNetNSThread runs enter (which moves the thread to another network
// namespace) and then fn on a locked OS thread, and returns the thread to
// the namespace it came from. If the thread cannot go back, it is left
// locked so that the Go runtime discards it.
func onNetNSThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Thread stays locked and dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// loopbackUp brings lo up in the namespace: the gate listens there, and a
// namespace fresh from unshare has it down.
func loopbackUp(nsfd int) error {
	return inNetNS(nsfd, netlo.Up)
}
