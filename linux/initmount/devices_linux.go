package initmount

import (
	"errors"
	"fmt"
	"path"
	"strings"

	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// deviceSpec is one device node taken from libcontainer, as its
// createDeviceNode would make it.
type deviceSpec struct {
	Name string `json:"name"` // its entry in /dev
	// Mode is the node's type and permission bits, as mknod(2) takes them.
	Mode uint32 `json:"mode"`
	Rdev uint64 `json:"rdev"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	// Source is the host's node bind-mounted instead where the init may not
	// mknod (a user namespace).
	Source string `json:"source"`
	Bind   bool   `json:"bind,omitempty"`
}

// devNotTaken are entries of /dev that libcontainer makes after the
// device nodes (the ptmx and /proc symlinks) or that are the console's: a
// device of the spec there stays with libcontainer, whose order decides
// which of the two the container gets. devKinds' directories are the
// mounts'.
var devNotTaken = map[string]bool{"ptmx": true, "fd": true, "stdin": true, "stdout": true, "stderr": true, "core": true, "console": true}

// selectDevices returns the indexes, in order, of the device nodes this
// package makes: the longest run at the end of config.Devices (entries
// without a path are cgroup rules only, made by nobody, and skipped) of
// nodes directly in libcontainer's /dev tmpfs. libcontainer makes device
// nodes after every mount, and this package's hook makes them after the
// mounts it takes, so the order of mounts and nodes stays libcontainer's
// (in a user namespace the nodes are bind mounts, and show in mountinfo).
// The caller has checked the container-wide conditions (selectMounts).
func selectDevices(config *configs.Config) []int {
	start := len(config.Devices)
	for i := len(config.Devices) - 1; i >= 0; i-- {
		d := config.Devices[i]
		if d.Path == "" {
			continue
		}
		if _, err := deviceOf(config, d); err != nil {
			break
		}
		start = i
	}
	var out []int
	for i := start; i < len(config.Devices); i++ {
		if config.Devices[i].Path != "" {
			out = append(out, i)
		}
	}
	return out
}

// deviceOf says how this package makes d, or why it does not: a char,
// block or fifo node named directly in /dev, which libcontainer's tmpfs
// covers, with nothing mounted at or below it.
func deviceOf(config *configs.Config, d *devices.Device) (deviceSpec, error) {
	p := path.Clean("/" + d.Path)
	name, ok := strings.CutPrefix(p, devDir+"/")
	if !ok || strings.Contains(name, "/") || devNotTaken[name] || devKinds[name] != "" {
		return deviceSpec{}, errors.New("not a node directly in /dev")
	}
	var typ uint32
	switch d.Type {
	case devices.CharDevice:
		typ = unix.S_IFCHR
	case devices.BlockDevice:
		typ = unix.S_IFBLK
	case devices.FifoDevice:
		typ = unix.S_IFIFO
	default:
		return deviceSpec{}, fmt.Errorf("type %c", d.Type)
	}
	rdev, err := d.Mkdev()
	if err != nil {
		return deviceSpec{}, err
	}
	if !coveredBy(config.Mounts, p, "tmpfs", devDir) || mountBelow(config.Mounts, p) {
		return deviceSpec{}, errors.New("not in libcontainer's /dev tmpfs")
	}
	return deviceSpec{
		Name: name, Mode: uint32(d.FileMode) | typ, Rdev: rdev, UID: d.Uid, GID: d.Gid, Source: d.Path,
		// libcontainer's createDevices: "containers running in a user
		// namespace are not allowed to mknod devices".
		Bind: config.Namespaces.Contains(configs.NEWUSER),
	}, nil
}

// mountBelow says whether one of mounts lies below p.
func mountBelow(mounts []*configs.Mount, p string) bool {
	for _, m := range mounts {
		if strings.HasPrefix(path.Clean("/"+m.Destination), p+"/") {
			return true
		}
	}
	return false
}

// makeDevices makes the nodes in the rootfs's /dev, which must be a tmpfs
// (libcontainer's; checked again here), as libcontainer's
// createDeviceNode does. Every error names the node.
func makeDevices(root int, nodes []deviceSpec) error {
	if len(nodes) == 0 {
		return nil
	}
	dev, err := openTmpfsInRoot(root, devDir, "libcontainer's tmpfs")
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, d := range nodes {
		if err := makeDevice(dev, d); err != nil {
			return fmt.Errorf("device node %s: %w", path.Join(devDir, d.Name), err)
		}
	}
	return nil
}

// makeDevice is libcontainer's createDeviceNode for a node in the tmpfs
// dev: mknod (an existing entry is left as it is), then the node's type
// and numbers checked, its mode (which the umask cut) and owner set; where
// mknod is not permitted, the host's node bind-mounted on an empty file.
func makeDevice(dev int, d deviceSpec) error {
	if !d.Bind {
		err := unix.Mknodat(dev, d.Name, d.Mode, int(d.Rdev))
		switch {
		case err == nil:
			return fixNode(dev, d)
		case errors.Is(err, unix.EEXIST):
			return nil
		case !errors.Is(err, unix.EPERM):
			return fmt.Errorf("mknodat: %w", err)
		}
	}
	fd, err := unix.Openat(dev, d.Name, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("create the mount point: %w", err)
	}
	defer unix.Close(fd)
	if err := mountAt(d.Source, fd, "bind", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", d.Source, err)
	}
	return nil
}

func fixNode(dev int, d deviceSpec) error {
	fd, err := unix.Openat(dev, d.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the new node: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != d.Mode&unix.S_IFMT || uint64(st.Rdev) != d.Rdev {
		return fmt.Errorf("the new node is %#o %d:%d, not %#o %d:%d", st.Mode&unix.S_IFMT, unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)),
			d.Mode&unix.S_IFMT, unix.Major(d.Rdev), unix.Minor(d.Rdev))
	}
	// Through the fd's magic link: an O_PATH fd takes no fchmod.
	if err := unix.Fchmodat(unix.AT_FDCWD, procFd(fd), d.Mode&^unix.S_IFMT, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := unix.Fchownat(fd, "", int(d.UID), int(d.GID), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}
