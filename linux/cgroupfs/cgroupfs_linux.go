package cgroupfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/initfd"
)

// magic starts the parameters message; the init takes the socket only if
// its queued message starts with it.
const magic = "mxc-cgroupfs/1\n"

// Dest is the only destination this package mounts.
const Dest = "/sys/fs/cgroup"

// answerTimeout bounds the runtime's wait for the init's answer. The work
// is ~30 system calls; the bound is for an init that hangs, which
// libcontainer would otherwise wait for forever in its hook phase.
const answerTimeout = 30 * time.Second

// params is what the init needs to mount: the runtime's view of the mount.
type params struct {
	Rootfs      string `json:"rootfs"`
	Flags       int    `json:"flags"`
	Propagation []int  `json:"propagation,omitempty"`
	// Cgroupns: the init has a cgroup namespace of its own, in which each
	// hierarchy is mounted directly (its root is the container's cgroup)
	// instead of bind-mounted from the host's tree.
	Cgroupns bool `json:"cgroupns,omitempty"`
}

// Plan is a cgroup mount taken from libcontainer's configuration, to be
// mounted by the init through a socket.
type Plan struct {
	p      params
	ours   *os.File
	theirs *os.File
}

// Take decides whether config's cgroup mount can be made by this package
// (see the package comment) and, if so, removes it from config.Mounts and
// puts the hook that makes it first in config's prestart hooks. A nil Plan
// means libcontainer keeps the mount. On success the caller must Attach the
// plan to the init process before starting it and Close it afterwards.
func Take(config *configs.Config) (*Plan, error) {
	i := eligible(config)
	if i < 0 || os.Getenv("MXC_CGROUPFS") == "0" || cgroups.IsCgroup2UnifiedMode() {
		return nil, nil
	}
	m := config.Mounts[i]
	pl := &Plan{p: params{Rootfs: config.Rootfs, Flags: m.Flags, Propagation: m.PropagationFlags,
		Cgroupns: config.Namespaces.Contains(configs.NEWCGROUP)}}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroup mount: socketpair: %w", err)
	}
	pl.ours = os.NewFile(uintptr(fds[0]), "cgroupfs")
	pl.theirs = os.NewFile(uintptr(fds[1]), "cgroupfs-init")
	msg, err := json.Marshal(pl.p)
	if err != nil {
		pl.Close()
		return nil, err
	}
	// Queued before the init exists, so that the init can recognise the
	// socket the moment it starts.
	if err := unix.Send(fds[0], append([]byte(magic), msg...), 0); err != nil {
		pl.Close()
		return nil, fmt.Errorf("cgroup mount: %w", err)
	}
	config.Mounts = append(config.Mounts[:i:i], config.Mounts[i+1:]...)
	if config.Hooks == nil {
		config.Hooks = configs.Hooks{}
	}
	config.Hooks[configs.Prestart] = append(configs.HookList{configs.NewFunctionHook(pl.hook)}, config.Hooks[configs.Prestart]...)
	return pl, nil
}

// eligible returns the index of config's cgroup mount if this package may
// make it, or -1.
func eligible(config *configs.Config) int {
	// A user namespace without a cgroup namespace gets libcontainer's bind
	// mounts of host paths, which the user namespace may not be allowed to
	// see: left to libcontainer.
	userns, cgroupns := config.Namespaces.Contains(configs.NEWUSER), config.Namespaces.Contains(configs.NEWCGROUP)
	if !config.Namespaces.Contains(configs.NEWNS) || (userns && !cgroupns) || config.MountLabel != "" || config.RootlessEUID ||
		config.RootlessCgroups || !filepath.IsAbs(config.Rootfs) {
		return -1
	}
	idx, sys := -1, false
	for i, m := range config.Mounts {
		d := path.Clean("/" + m.Destination)
		switch {
		case m.Device == "cgroup":
			if idx >= 0 || d != Dest || !sys || m.IDMapping != nil || m.RecAttr != nil ||
				m.Extensions != 0 || m.ClearedFlags != 0 {
				return -1
			}
			idx = i
		case idx < 0:
			if m.Device == "sysfs" && d == "/sys" {
				sys = true
			}
		case d == "/" || strings.HasPrefix(Dest+"/", d+"/") || strings.HasPrefix(d+"/", Dest+"/"):
			// After the cgroup mount, at it, above it or below it: it
			// would be mounted before ours instead of after.
			return -1
		}
	}
	return idx
}

// Attach appends the init's end of the socket to p's ExtraFiles. It must
// be the last ExtraFile (Serve looks there).
func (pl *Plan) Attach(p *libcontainer.Process) {
	p.ExtraFiles = append(p.ExtraFiles, pl.theirs)
}

// Close releases the runtime's ends. Safe on a nil Plan and more than once.
func (pl *Plan) Close() {
	if pl == nil {
		return
	}
	if pl.ours != nil {
		pl.ours.Close()
		pl.ours = nil
	}
	if pl.theirs != nil {
		pl.theirs.Close()
		pl.theirs = nil
	}
}

// hook runs in the runtime at libcontainer's procHooks: the init has made
// its other mounts and waits for the hooks. It has the init mount and
// waits for its answer.
func (pl *Plan) hook(*specs.State) error {
	if pl.ours == nil {
		return errors.New("cgroup mount: socket already closed")
	}
	// The init has its end by now; without ours a dead init reads as EOF.
	if pl.theirs != nil {
		pl.theirs.Close()
		pl.theirs = nil
	}
	fd := int(pl.ours.Fd())
	if err := unix.Send(fd, []byte{'g'}, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("cgroup mount: ask the init: %w", err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(answerTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("cgroup mount: no answer from the init in %s", answerTimeout)
		}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cgroup mount: %w", err)
		}
		if n > 0 {
			break
		}
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
	switch {
	case err != nil:
		return fmt.Errorf("cgroup mount: read the init's answer: %w", err)
	case n == 0:
		return errors.New("cgroup mount: the init closed its end without an answer")
	case string(buf[:n]) != "ok":
		return fmt.Errorf("mount cgroup v1 hierarchies at %s: %s", Dest, buf[:n])
	}
	logrus.Debugf("cgroupfs: the init mounted the cgroup v1 view at %s", Dest)
	return nil
}

// Serve runs in `mxc-runtime init` before libcontainer's init. If the last
// ExtraFile is this package's socket (initfd.Claim), it serves the
// runtime's request in a goroutine: mount when told, answer, close. It
// never fails the init: without a request nothing happens.
func Serve() {
	fd := initfd.Lowest() - 1
	payload, ok := initfd.Claim(fd, magic)
	if !ok {
		return
	}
	var p params
	perr := json.Unmarshal(payload, &p)
	go serve(fd, p, perr)
}

func serve(fd int, p params, perr error) {
	defer unix.Close(fd)
	var b [1]byte
	for {
		n, _, err := unix.Recvfrom(fd, b[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return // the runtime went away, or never asked
		}
		break
	}
	answer := "ok"
	if perr != nil {
		answer = "bad parameters: " + perr.Error()
	} else if err := Mount(p.Rootfs, p.Flags, p.Propagation, p.Cgroupns); err != nil {
		answer = err.Error()
	}
	_ = unix.Send(fd, []byte(answer), unix.MSG_NOSIGNAL)
}

// Mount makes the cgroup v1 view at Dest inside rootfs as libcontainer's
// mountCgroupV1 does, in the calling process's mount namespace (the
// container's, before pivot_root). flags and propagation are the spec
// mount's; cgroupns says that the caller is in the container's own cgroup
// namespace. Every error names the step and the path.
func Mount(rootfs string, flags int, propagation []int, cgroupns bool) error {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	// The only resolution in the image's tree: /sys/fs/cgroup inside the
	// root, no magic links; it is sysfs's directory after the /sys mount.
	dst, err := openInRoot(root, Dest)
	if err != nil {
		return err
	}
	err = mountAt("tmpfs", dst, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, "mode=755")
	unix.Close(dst)
	if err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", Dest, err)
	}
	// Re-resolve to reach the tmpfs just mounted (the old fd is the
	// directory under it), and check that it is one.
	tmp, err := openInRoot(root, Dest)
	if err != nil {
		return err
	}
	defer unix.Close(tmp)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(tmp, &sfs); err != nil || sfs.Type != unix.TMPFS_MAGIC {
		return fmt.Errorf("%s is not the tmpfs just mounted there (%v)", Dest, err)
	}
	if err := propagate(tmp, propagation); err != nil {
		return fmt.Errorf("propagation of %s: %w", Dest, err)
	}

	binds, err := ownHierarchies()
	if err != nil {
		return err
	}
	bflags := unix.MS_BIND | unix.MS_REC | flags
	var merged []string
	for _, b := range binds {
		name := filepath.Base(b.mountpoint)
		if strings.Contains(name, ",") {
			merged = append(merged, name)
		}
		if cgroupns {
			if err := mountOne(tmp, name, flags); err != nil {
				return fmt.Errorf("mount cgroup %s on %s: %w", name, path.Join(Dest, name), err)
			}
			continue
		}
		if err := bindOne(tmp, name, b.source, bflags, propagation); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.source, path.Join(Dest, name), err)
		}
	}
	for _, mc := range merged {
		for ss := range strings.SplitSeq(mc, ",") {
			if err := unix.Symlinkat(mc, tmp, ss); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("symlink %s -> %s: %w", path.Join(Dest, ss), mc, err)
			}
		}
	}
	return nil
}

// mountOne mounts hierarchy name itself on dir name of the tmpfs tmp, as
// libcontainer does in a cgroup namespace: nosuid, nodev, noexec, read-only
// if the spec's mount is, no propagation change, no remount.
func mountOne(tmp int, name string, flags int) error {
	d, err := mkdirOpen(tmp, name)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	source, data := "cgroup", name
	if name == "systemd" {
		source, data = "systemd", cgroups.CgroupNamePrefix+name
	}
	return mountAt(source, d, "cgroup", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV|flags&unix.MS_RDONLY, data)
}

// bindOne mounts source on dir name of the tmpfs tmp, as libcontainer's
// "bind" case does: bind, propagation, remount with the flags.
func bindOne(tmp int, name, source string, flags int, propagation []int) error {
	d, err := mkdirOpen(tmp, name)
	if err != nil {
		return err
	}
	err = mountAt(source, d, "bind", flags, "")
	unix.Close(d)
	if err != nil {
		return err
	}
	// The new mount's root, for the propagation and the remount.
	d, err = openDir(tmp, name)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	if err := propagate(d, propagation); err != nil {
		return err
	}
	if flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 {
		if err := mountAt("", d, "", flags|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
			return fmt.Errorf("remount: %w", err)
		}
	}
	return nil
}

// mkdirOpen makes directory name in the tmpfs tmp (new: the tmpfs was
// just mounted) and opens it for mounting on.
func mkdirOpen(tmp int, name string) (int, error) {
	if err := unix.Mkdirat(tmp, name, 0o755); err != nil {
		return -1, fmt.Errorf("mkdir: %w", err)
	}
	return openDir(tmp, name)
}

// openDir opens directory name of tmp, not following a symlink; after a
// mount on it, the mount's root.
func openDir(tmp int, name string) (int, error) {
	return unix.Openat(tmp, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func propagate(fd int, propagation []int) error {
	for _, pf := range propagation {
		if err := mountAt("", fd, "", pf, ""); err != nil {
			return err
		}
	}
	return nil
}

// mountAt is mount(2) onto the directory fd refers to. /proc here is the
// host's procfs (the init has not pivoted yet; the container's proc is at
// rootfs/proc), which no image can cover.
func mountAt(source string, fd int, fstype string, flags int, data string) error {
	return unix.Mount(source, "/proc/self/fd/"+strconv.Itoa(fd), fstype, uintptr(flags), data)
}

func openInRoot(root int, p string) (int, error) {
	fd, err := unix.Openat2(root, p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, fmt.Errorf("open %s in the rootfs: %w", p, err)
	}
	return fd, nil
}

type hierarchy struct{ mountpoint, source string }

// ownHierarchies is libcontainer's getCgroupMounts: every v1 hierarchy
// mounted in this mount namespace, with this process's own cgroup in it
// (the init has been moved into the container's cgroups already).
func ownHierarchies() ([]hierarchy, error) {
	mounts, err := cgroups.GetCgroupMounts(false)
	if err != nil {
		return nil, fmt.Errorf("cgroup v1 mounts: %w", err)
	}
	own, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("own cgroups: %w", err)
	}
	out := make([]hierarchy, 0, len(mounts))
	for _, mm := range mounts {
		dir, err := mm.GetOwnCgroup(own)
		if err != nil {
			return nil, fmt.Errorf("own cgroup in %s: %w", mm.Mountpoint, err)
		}
		rel, err := filepath.Rel(mm.Root, dir)
		if err != nil {
			return nil, fmt.Errorf("own cgroup in %s: %w", mm.Mountpoint, err)
		}
		out = append(out, hierarchy{mountpoint: mm.Mountpoint, source: filepath.Join(mm.Mountpoint, rel)})
	}
	return out, nil
}
