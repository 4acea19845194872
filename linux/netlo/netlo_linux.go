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

// Up sets lo up, unless it is already. The caller's thread must be in the
// namespace (runtime.LockOSThread around a setns, or a fresh process).
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
	if ifr.Uint16()&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}
