package egress

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// HookHolderPath pins the hook holder: one network namespace per host that
// holds a table with the same base chains as a container's.
//
// Why: netfilter turns its per-hook code paths on and off with static keys
// that count the hooks registered in all namespaces together. A container's
// table registers the filter hooks of its base chains, and through its NAT
// chain the NAT and connection tracking hooks, for IPv4 and IPv6. On a host
// where no other namespace has those hooks (no iptables or nftables rules,
// as on this project's CI machine), every create switches the keys on and
// every namespace's destruction switches them off again, and each switch
// patches kernel text: stop-the-world IPIs to every CPU, ~6 ms of CPU per
// create and more in the kernel worker that tears the namespace down, on a
// 2-core VM (docs/benchmarks.md). With the holder's hooks registered the
// counts never fall to zero, and a container's registration is an atomic
// increment. A host with a firewall or with docker's rules is in that state
// already; the holder makes every host like it.
//
// The holder has no interface but its loopback (down), no process, and
// lives until the host reboots or someone unmounts it (`umount
// /run/mxc-egress/nfhooks.netns`). MXC_NF_HOOK_HOLDER=0 leaves it out
// (for comparisons).
const HookHolderPath = "/run/mxc-egress/nfhooks.netns"

// holdHooks makes sure the hook holder exists, with pl's table in it. It is
// an optimisation: failures are logged, not returned.
func holdHooks(pl *plan) {
	if os.Getenv("MXC_NF_HOOK_HOLDER") == "0" {
		return
	}
	if isNSFS(HookHolderPath) {
		return // one statfs: the path of every create after the first
	}
	if err := makeHookHolder(HookHolderPath, pl); err != nil {
		logrus.Debugf("egress: no netfilter hook holder: %v", err)
	}
}

func isNSFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// makeHookHolder creates the holder at path: a new network namespace bind
// mounted there (as `ip netns add` does), with pl's table. Creates racing
// each other serialise on a lock of the mount point file; one that finds
// the namespace mounted leaves it.
func makeHookHolder(path string, pl *plan) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	if isNSFS(path) {
		return nil // made while this one waited
	}
	if err := pinNewNetNS(path); err != nil {
		return fmt.Errorf("new network namespace at %s: %w", path, err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = applyTable(fd, buildTable(pl))
		unix.Close(fd)
	}
	if err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		return fmt.Errorf("hook holder's table: %w", err)
	}
	return nil
}

// pinNewNetNS bind mounts a new network namespace on path, as `ip netns
// add` does, from a thread that returns to its own namespace afterwards.
func pinNewNetNS(path string) error {
	return onNetNSThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		return nil
	}, func() error {
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount: %w", err)
		}
		return nil
	})
}
