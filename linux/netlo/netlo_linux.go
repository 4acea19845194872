// Package netlo brings up the loopback interface of the network namespace
// the calling thread is in. A namespace fresh from unshare or clone has lo
// down; the egress gate listens there and a sandboxed command may talk to
// itself there. Two ioctls on a socket made in the namespace: cheaper than
// a netlink handle.
package netlo

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Up sets lo up and returns once its addresses (127.0.0.1, ::1) are
// there. The caller's thread must be in the namespace
// (runtime.LockOSThread around a setns, or a fresh process).
//
// The set is made even when lo reads as up already: another process may be
// bringing it up at that moment (libcontainer's init sets up the loopback
// of a container's new namespace while mxc's egress set-up runs), and the
// kernel shows IFF_UP before its NETDEV_UP notifiers have added the
// loopback addresses, all under the RTNL lock, which SIOCGIFFLAGS does not
// take. A gate that bound 127.0.0.1 in that window got "cannot assign
// requested address" (seen once in 100 parallel creates). SIOCSIFFLAGS
// takes the RTNL lock, so it returns only after any bringing-up under way
// has finished, and changes nothing if lo is up.
func Up() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}
