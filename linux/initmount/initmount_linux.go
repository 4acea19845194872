package initmount

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
	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/initfd"
)

// magic starts the parameters message; the init takes the socket only if
// its queued message starts with it.
const magic = "mxc-initmount/1\n"

// Dest is where the cgroup v1 view goes.
const Dest = "/sys/fs/cgroup"

// devDir is the directory of the pseudo-filesystems this package mounts
// besides the cgroup view: libcontainer's own tmpfs by then.
const devDir = "/dev"

// devKinds are the mounts this package may take under devDir: the
// directory name and the filesystem type it must have.
var devKinds = map[string]string{"pts": "devpts", "shm": "tmpfs", "mqueue": "mqueue"}

// answerTimeout bounds the runtime's wait for the init's answer. The work
// is ~30 system calls; the bound is for an init that hangs, which
// libcontainer would otherwise wait for forever in its hook phase.
const answerTimeout = 30 * time.Second

// params is what the init needs to mount: the runtime's view of the mounts.
type params struct {
	Rootfs  string       `json:"rootfs"`
	Mounts  []mountSpec  `json:"mounts"`
	Devices []deviceSpec `json:"devices,omitempty"`
}

// mountSpec is one mount taken from libcontainer, as it would make it.
type mountSpec struct {
	Kind        string `json:"kind"`           // kindDev, kindSysfs or kindCgroup
	Name        string `json:"name,omitempty"` // kindDev: pts, shm or mqueue, its directory in /dev
	Source      string `json:"source,omitempty"`
	Device      string `json:"device,omitempty"`
	Flags       int    `json:"flags"`
	Data        string `json:"data,omitempty"`
	Propagation []int  `json:"propagation,omitempty"`
	// Cgroupns: the init has a cgroup namespace of its own, in which each
	// hierarchy is mounted directly (its root is the container's cgroup)
	// instead of bind-mounted from the host's tree.
	Cgroupns bool `json:"cgroupns,omitempty"`
}

const (
	kindDev    = "dev"
	kindSysfs  = "sysfs"
	kindCgroup = "cgroup"
)

// Plan is the mounts taken from libcontainer's configuration, to be made
// by the init through a socket.
type Plan struct {
	p      params
	ours   *os.File
	theirs *os.File
}

// Take decides which of config's mounts this package makes (the run of
// /dev's pseudo-filesystems, /sys and the cgroup v1 view at the end of the
// user's list; see the package comment), removes them from config.Mounts
// and puts the hook that makes them first in config's prestart hooks. A
// nil Plan means libcontainer keeps them all. On success the caller must
// Attach the plan to the init process before starting it and Close it
// afterwards.
//
// userMounts is how many of config.Mounts come from the user's spec; the
// rest are mxc's own (the policy's masks of denied files, appended last),
// which the spec's order does not govern: they may come before the taken
// mounts unless they lie at, above or below one of them.
func Take(config *configs.Config, userMounts int) (*Plan, error) {
	if Disabled() {
		return nil, nil
	}
	idx := selectMounts(config, !cgroups.IsCgroup2UnifiedMode(), userMounts)
	var devIdx []int
	if containerWide(config) {
		devIdx = selectDevices(config)
	}
	if len(idx) == 0 && len(devIdx) == 0 {
		return nil, nil
	}
	pl := &Plan{p: params{Rootfs: config.Rootfs}}
	taken := map[int]bool{}
	for _, j := range idx {
		m := config.Mounts[j]
		ms := mountSpec{Source: m.Source, Device: m.Device, Flags: m.Flags, Data: m.Data, Propagation: m.PropagationFlags}
		switch m.Device {
		case "cgroup":
			ms.Kind, ms.Cgroupns = kindCgroup, config.Namespaces.Contains(configs.NEWCGROUP)
		case "sysfs":
			ms.Kind = kindSysfs
		default:
			ms.Kind, ms.Name = kindDev, path.Base(path.Clean(m.Destination))
		}
		pl.p.Mounts = append(pl.p.Mounts, ms)
		taken[j] = true
	}
	takenDev := map[int]bool{}
	for _, j := range devIdx {
		d, err := deviceOf(config, config.Devices[j])
		if err != nil { // selectDevices checked it
			return nil, fmt.Errorf("init mounts: device %s: %w", config.Devices[j].Path, err)
		}
		pl.p.Devices = append(pl.p.Devices, d)
		takenDev[j] = true
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("init mounts: socketpair: %w", err)
	}
	pl.ours = os.NewFile(uintptr(fds[0]), "initmount")
	pl.theirs = os.NewFile(uintptr(fds[1]), "initmount-init")
	msg, err := json.Marshal(pl.p)
	if err != nil {
		pl.Close()
		return nil, err
	}
	// Queued before the init exists, so that the init can recognise the
	// socket the moment it starts.
	if err := unix.Send(fds[0], append([]byte(magic), msg...), 0); err != nil {
		pl.Close()
		return nil, fmt.Errorf("init mounts: %w", err)
	}
	config.Mounts = without(config.Mounts, taken)
	config.Devices = without(config.Devices, takenDev)
	if config.Hooks == nil {
		config.Hooks = configs.Hooks{}
	}
	config.Hooks[configs.Prestart] = append(configs.HookList{configs.NewFunctionHook(pl.hook)}, config.Hooks[configs.Prestart]...)
	return pl, nil
}

// without returns list without the elements whose indexes are in drop
// (list itself when there are none).
func without[T any](list []T, drop map[int]bool) []T {
	if len(drop) == 0 {
		return list
	}
	kept := make([]T, 0, len(list)-len(drop))
	for j, v := range list {
		if !drop[j] {
			kept = append(kept, v)
		}
	}
	return kept
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
		return errors.New("init mounts: socket already closed")
	}
	// The init has its end by now; without ours a dead init reads as EOF.
	if pl.theirs != nil {
		pl.theirs.Close()
		pl.theirs = nil
	}
	fd := int(pl.ours.Fd())
	if err := unix.Send(fd, []byte{'g'}, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("init mounts: ask the init: %w", err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(answerTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("init mounts: no answer from the init in %s", answerTimeout)
		}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("init mounts: %w", err)
		}
		if n > 0 {
			break
		}
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
	switch {
	case err != nil:
		return fmt.Errorf("init mounts: read the init's answer: %w", err)
	case n == 0:
		return errors.New("init mounts: the init closed its end without an answer")
	case string(buf[:n]) != "ok":
		return fmt.Errorf("init mounts: %s", buf[:n])
	}
	if w := pl.what(); len(w) > 0 {
		logrus.Debugf("initmount: the init mounted %s", strings.Join(w, ", "))
	}
	if len(pl.p.Devices) > 0 {
		var n []string
		for _, d := range pl.p.Devices {
			n = append(n, path.Join(devDir, d.Name))
		}
		how := "mknod"
		if pl.p.Devices[0].Bind {
			how = "bind mounts of the host's"
		}
		logrus.Debugf("initmount: the init made the device nodes %s (%s)", strings.Join(n, ", "), how)
	}
	return nil
}

// what names the mounts of the plan, for the debug log.
func (pl *Plan) what() []string {
	var w []string
	for _, m := range pl.p.Mounts {
		switch m.Kind {
		case kindDev:
			w = append(w, path.Join(devDir, m.Name))
		case kindSysfs:
			w = append(w, "/sys")
		case kindCgroup:
			w = append(w, "the cgroup v1 view at "+Dest)
		}
	}
	return w
}

// Disabled reports whether MXC_INIT_MOUNTS=0 (or the older MXC_CGROUPFS=0)
// leaves every mount to libcontainer: A/B benchmarks, the comparison tests.
func Disabled() bool {
	return os.Getenv("MXC_INIT_MOUNTS") == "0" || os.Getenv("MXC_CGROUPFS") == "0"
}

// selectMounts returns the indexes, in order, of the mounts this package
// makes: the longest run at the end of config.Mounts of mounts it can make.
// Only the end: the runtime spec has a runtime make mounts in their listed
// order (runtime-tools checks mountinfo for it), and what libcontainer
// keeps is made before the hooks, so nothing this package makes may come
// before a mount libcontainer makes. cgroupV1 says the host has the v1
// hierarchies the cgroup view shows. Nothing in a configuration without a
// mount namespace, rootless, with an SELinux mount label or a relative
// rootfs.
func selectMounts(config *configs.Config, cgroupV1 bool, userMounts int) []int {
	if !containerWide(config) {
		return nil
	}
	if userMounts < 0 || userMounts > len(config.Mounts) {
		userMounts = len(config.Mounts)
	}
	// mxc's own mounts, made by libcontainer before the taken ones.
	own := config.Mounts[userMounts:]
	start := userMounts
	seen := map[string]bool{}
	for i := userMounts - 1; i >= 0; i-- {
		d := path.Clean("/" + config.Mounts[i].Destination)
		if seen[d] || overlaps(own, d) || !canMake(config, i, d, cgroupV1) {
			break
		}
		seen[d] = true
		start = i
	}
	var out []int
	for i := start; i < userMounts; i++ {
		out = append(out, i)
	}
	return out
}

// containerWide says whether the container allows this package anything:
// a mount namespace, not rootless, no SELinux mount label, an absolute
// rootfs.
func containerWide(config *configs.Config) bool {
	return config.Namespaces.Contains(configs.NEWNS) && config.MountLabel == "" && !config.RootlessEUID &&
		!config.RootlessCgroups && filepath.IsAbs(config.Rootfs)
}

// overlaps says whether one of mounts is at, above or below d.
func overlaps(mounts []*configs.Mount, d string) bool {
	for _, m := range mounts {
		o := path.Clean("/" + m.Destination)
		if o == "/" || strings.HasPrefix(d+"/", o+"/") || strings.HasPrefix(o+"/", d+"/") {
			return true
		}
	}
	return false
}

// canMake says whether this package can make config.Mounts[i] (at d) as
// libcontainer would:
//   - the cgroup view at Dest, on a v1 host, after sysfs at /sys, not in a
//     user namespace without a cgroup namespace (libcontainer bind-mounts
//     host paths into one);
//   - sysfs at /sys;
//   - devpts at /dev/pts, tmpfs at /dev/shm, mqueue at /dev/mqueue, after a
//     tmpfs at /dev (whose fresh directory they go in), read-write
//     (libcontainer remounts a read-only tmpfs after pivot_root, from its
//     own list), with no device node of the spec inside (libcontainer makes
//     those before the hooks);
//
// in a user namespace too (the same mount(2) whoever makes it; see the
// package comment), and none with an id mapping, recursive attributes,
// extensions, cleared flags or bind flags.
func canMake(config *configs.Config, i int, d string, cgroupV1 bool) bool {
	m := config.Mounts[i]
	if m.IDMapping != nil || m.RecAttr != nil || m.Extensions != 0 || m.ClearedFlags != 0 ||
		m.Flags&(unix.MS_BIND|unix.MS_REMOUNT) != 0 {
		return false
	}
	userns := config.Namespaces.Contains(configs.NEWUSER)
	switch {
	case m.Device == "cgroup" && d == Dest:
		return cgroupV1 && (!userns || config.Namespaces.Contains(configs.NEWCGROUP)) &&
			coveredBy(config.Mounts[:i], d, "sysfs", "/sys")
	case m.Device == "sysfs" && d == "/sys":
		return true
	}
	name, under := strings.CutPrefix(d, devDir+"/")
	kind, known := devKinds[name]
	return under && known && m.Device == kind && m.Flags&unix.MS_RDONLY == 0 &&
		coveredBy(config.Mounts[:i], d, "tmpfs", devDir) && !deviceUnder(config.Devices, d)
}

// coveredBy says whether the last of mounts at d or above it is of type
// device at dest: what d lies in when the next mount is made.
func coveredBy(mounts []*configs.Mount, d, device, dest string) bool {
	for j := len(mounts) - 1; j >= 0; j-- {
		o := path.Clean("/" + mounts[j].Destination)
		if o == "/" || strings.HasPrefix(d+"/", o+"/") {
			return mounts[j].Device == device && o == dest
		}
	}
	return false
}

// deviceUnder says whether a device node of the spec lies below d.
func deviceUnder(devices []*devices.Device, d string) bool {
	for _, dv := range devices {
		if strings.HasPrefix(path.Clean("/"+dv.Path)+"/", d+"/") {
			return true
		}
	}
	return false
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
	} else if err := makeAll(p); err != nil {
		answer = err.Error()
	}
	_ = unix.Send(fd, []byte(answer), unix.MSG_NOSIGNAL)
}

// makeAll makes p's mounts, then its device nodes, inside p's rootfs, in
// the calling process's mount namespace (the container's, before
// pivot_root).
func makeAll(p params) error {
	root, err := unix.Open(p.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", p.Rootfs, err)
	}
	defer unix.Close(root)
	if err := mountAll(root, p.Mounts); err != nil {
		return err
	}
	return makeDevices(root, p.Devices)
}

// mountAll makes mounts inside root, in order, as libcontainer's
// mountToRootfs would. Every error names the mount.
func mountAll(root int, mounts []mountSpec) error {
	var err error
	for _, m := range mounts {
		switch m.Kind {
		case kindDev:
			err = mountDevOne(root, m)
			if err != nil {
				err = fmt.Errorf("mount %s on %s: %w", m.Device, path.Join(devDir, m.Name), err)
			}
		case kindSysfs:
			if err = mountSysfs(root, m); err != nil {
				err = fmt.Errorf("mount sysfs on /sys: %w", err)
			}
		case kindCgroup:
			err = mountCgroupView(root, m.Flags, m.Propagation, m.Cgroupns)
		default:
			err = fmt.Errorf("unknown kind of mount %q", m.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// mountDevOne mounts d in /dev: a directory 0755, the mount with the
// spec's source, type, flags and data, then its propagation flags. /dev is
// resolved inside the root and must be a tmpfs: the one libcontainer has
// just mounted there (canMake), not the image's directory; below it
// everything is that tmpfs's.
func mountDevOne(root int, d mountSpec) error {
	if kind, ok := devKinds[d.Name]; !ok || kind != d.Device {
		return fmt.Errorf("not a mount this package makes")
	}
	dev, err := openTmpfsInRoot(root, devDir, "libcontainer's tmpfs")
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	if err := unix.Mkdirat(dev, d.Name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkdir: %w", err)
	}
	return mountOn(func() (int, error) { return openDir(dev, d.Name) }, d.Source, d.Device, d.Flags, d.Data, d.Propagation, nil)
}

// mountOn mounts on the directory open opens, then applies propagation
// to the new mount's root and runs after on it (both through a second
// open: the first fd is the directory under the mount). after may be nil.
func mountOn(open func() (int, error), source, fstype string, flags int, data string, propagation []int, after func(root int) error) error {
	fd, err := open()
	if err != nil {
		return err
	}
	err = mountAt(source, fd, fstype, flags, data)
	unix.Close(fd)
	if err != nil || (len(propagation) == 0 && after == nil) {
		return err
	}
	if fd, err = open(); err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := propagate(fd, propagation); err != nil {
		return err
	}
	if after != nil {
		return after(fd)
	}
	return nil
}

// mountSysfs mounts sysfs on the rootfs's /sys as libcontainer does: an
// ordinary directory (made if missing; never a symlink or anything but a
// directory: "must be mounted on ordinary directory"), the mount with the
// spec's flags and data, then its propagation flags.
func mountSysfs(root int, m mountSpec) error {
	if err := unix.Mkdirat(root, "sys", 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkdir: %w", err)
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	open := func() (int, error) {
		fd, err := unix.Openat2(root, "sys", how)
		if err != nil {
			return -1, fmt.Errorf("sysfs must be mounted on an ordinary directory: %w", err)
		}
		return fd, nil
	}
	return mountOn(open, m.Source, "sysfs", m.Flags, m.Data, m.Propagation, nil)
}

// mountCgroupView makes the cgroup v1 view at Dest inside root as
// libcontainer's mountCgroupV1 does, in the calling process's mount
// namespace (the container's, before pivot_root). flags and propagation
// are the spec mount's; cgroupns says that the caller is in the
// container's own cgroup namespace. Every error names the step and the
// path.
func mountCgroupView(root, flags int, propagation []int, cgroupns bool) error {
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
	tmp, err := openTmpfsInRoot(root, Dest, "the tmpfs just mounted there")
	if err != nil {
		return err
	}
	defer unix.Close(tmp)
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
	if err := unix.Mkdirat(tmp, name, 0o755); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	var remount func(int) error
	if flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 {
		remount = func(d int) error {
			if err := mountAt("", d, "", flags|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
				return fmt.Errorf("remount: %w", err)
			}
			return nil
		}
	}
	return mountOn(func() (int, error) { return openDir(tmp, name) }, source, "bind", flags, "", propagation, remount)
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
	return unix.Mount(source, procFd(fd), fstype, uintptr(flags), data)
}

// procFd is fd's magic link in the host's procfs (see mountAt).
func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// openTmpfsInRoot is openInRoot of a directory that must be the root of a
// tmpfs (what names the one expected, for the error).
func openTmpfsInRoot(root int, p, what string) (int, error) {
	fd, err := openInRoot(root, p)
	if err != nil {
		return -1, err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Type != unix.TMPFS_MAGIC {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is not %s (%v)", p, what, err)
	}
	return fd, nil
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
