//go:build linux

package enforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/spec"

	"mxc.dev/mxc/internal/phasemark"
)

// DefaultSlotDir is where session-tier id ranges are handed out. It is one
// directory for the whole node, not one per runtime root: docker and
// containerd run mxc with different roots on the same node, and two agents
// must never share a host id range.
const DefaultSlotDir = "/run/mxc-session-slots"

// idRange is one agent's host uid/gid range.
type idRange struct {
	Slot uint32
	Base uint32 // first host id
	Size uint32
}

func (r idRange) String() string {
	return fmt.Sprintf("%d-%d", r.Base, uint64(r.Base)+uint64(r.Size)-1)
}

func sessionConfig(nc *spec.NodeConfig) (base, size, slots uint32) {
	base, size, slots = 1<<30, 65536, 1024
	if nc != nil && nc.Session != nil {
		if nc.Session.IDBase != 0 {
			base = nc.Session.IDBase
		}
		if nc.Session.IDSize != 0 {
			size = nc.Session.IDSize
		}
		if nc.Session.Slots != 0 {
			slots = nc.Session.Slots
		}
	}
	return base, size, slots
}

// slotOwner is what a slot file records.
type slotOwner struct {
	StateDir string    `json:"stateDir"`
	Pid      int       `json:"pid"`
	Created  time.Time `json:"created"`
}

// lockSlotDir creates (if needed) and flocks the slot directory itself. A
// holder may remove the directory when it empties, so a waiter that wakes
// up on a removed directory retries on the new one.
func lockSlotDir(dir string) (*os.File, error) {
	for i := 0; i < 100; i++ {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("session slots: %w", err)
		}
		f, err := os.Open(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("session slots: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("session slots: lock %s: %w", dir, err)
		}
		var held, cur unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(dir, &cur) == nil && held.Ino == cur.Ino && held.Dev == cur.Dev {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("session slots: %s keeps disappearing", dir)
}

// allocSlot hands out the lowest free slot to stateDir. A slot whose owner
// is gone (no state dir, creator dead) is free again: that is what a
// create killed before it could record its slot leaves behind.
func allocSlot(dir string, nc *spec.NodeConfig, stateDir string) (idRange, error) {
	base, size, slots := sessionConfig(nc)
	lk, err := lockSlotDir(dir)
	if err != nil {
		return idRange{}, err
	}
	defer lk.Close()
	for n := uint32(0); n < slots; n++ {
		p := filepath.Join(dir, strconv.FormatUint(uint64(n), 10))
		if b, err := os.ReadFile(p); err == nil {
			var o slotOwner
			if json.Unmarshal(b, &o) == nil && (ownerAlive(o) || o.StateDir == stateDir) {
				if o.StateDir == stateDir {
					return idRange{Slot: n, Base: base + n*size, Size: size}, nil
				}
				continue
			}
		}
		b, _ := json.Marshal(slotOwner{StateDir: stateDir, Pid: os.Getpid(), Created: time.Now().UTC()})
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return idRange{}, fmt.Errorf("session slot %d: %w", n, err)
		}
		return idRange{Slot: n, Base: base + n*size, Size: size}, nil
	}
	return idRange{}, fmt.Errorf("session tier: all %d id ranges of the node are in use (node config session.slots)", slots)
}

func ownerAlive(o slotOwner) bool {
	if _, err := os.Stat(o.StateDir); err == nil {
		return true
	}
	if o.Pid > 0 && unix.Kill(o.Pid, 0) == nil {
		// The creator still runs: its create may not have made the state
		// dir yet.
		return true
	}
	return false
}

// freeSlot releases every slot stateDir holds, and the directory when it
// is empty.
func freeSlot(dir, stateDir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lk, err := lockSlotDir(dir)
	if err != nil {
		return err
	}
	defer lk.Close()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	left := 0
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		var o slotOwner
		if err == nil && json.Unmarshal(b, &o) == nil && o.StateDir == stateDir {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		left++
	}
	if left == 0 {
		_ = unix.Rmdir(dir)
	}
	return nil
}

// userNamespace gives the spec a user namespace mapping container ids
// 0..size-1 to the agent's host range. A spec that joins an existing user
// namespace is refused: the session tier owns the agent's identity.
func userNamespace(s *specs.Spec, r idRange) error {
	found := false
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			if ns.Path != "" {
				return fmt.Errorf("isolation session: linux.namespaces joins the user namespace %s; the session tier gives each agent a user namespace and id range of its own", ns.Path)
			}
			found = true
		}
	}
	if !found {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	}
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: r.Base, Size: r.Size}}
	s.Linux.UIDMappings = m
	s.Linux.GIDMappings = m
	return nil
}

// idmapBinds asks libcontainer (kernel >= 5.12) to id-map the spec's bind
// mounts of files and directories with the container's mapping, so that
// host files keep their owners inside the container (a workspace owned by
// uid 1000 stays writable by the agent's uid 1000) instead of showing as
// the overflow id. Device, /proc and /sys binds are left alone.
func idmapBinds(s *specs.Spec) {
	for i := range s.Mounts {
		m := &s.Mounts[i]
		bind := m.Type == "bind" || hasOpt(m.Options, "bind") || hasOpt(m.Options, "rbind")
		if !bind || hasOpt(m.Options, "idmap") || hasOpt(m.Options, "ridmap") || len(m.UIDMappings) > 0 {
			continue
		}
		src := filepath.Clean(m.Source)
		if strings.HasPrefix(src, "/dev/") || src == "/dev" || strings.HasPrefix(src, "/proc") || strings.HasPrefix(src, "/sys") {
			continue
		}
		m.Options = append(m.Options, "idmap")
	}
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// idmapDir is where the id-mapped view of a session container's rootfs is
// mounted on the host.
func idmapDir(root, id string) string { return filepath.Join(root, ".mxc-idmap", id) }

// mountIDMappedRootfs mounts an id-mapped view of rootfs at dst: files
// owned by host uid k appear owned by base+k, i.e. by container uid k. A
// bundle's rootfs is usually owned by host root; without this the agent's
// root (host uid base) would own nothing in it.
//
// libcontainer id-maps bind mounts but not the rootfs, hence this mount,
// made on the host before create and removed by Teardown. The container's
// root reaches it by path from inside its user namespace, so every
// directory above it must be searchable by others (0711, as runc's root).
func mountIDMappedRootfs(root, rootfs, dst string, r idRange) error {
	if err := prepareIDMapDir(root, dst); err != nil {
		return err
	}
	return mountIDMapped(rootfs, dst, r)
}

// prepareIDMapDir makes dst, the mount point of the id-mapped rootfs,
// ready: no stale mount on it, and searchable by the agent's uids.
func prepareIDMapDir(root, dst string) error {
	// A create of this id killed after its mount (the caller holds the
	// id's lock and there is no state dir) left it: stacking another on
	// top would leak both.
	if err := unmountIDMapped(dst); err != nil {
		return fmt.Errorf("id-mapped rootfs: stale mount of an interrupted create: %w", err)
	}
	if err := os.MkdirAll(dst, 0o711); err != nil {
		return fmt.Errorf("id-mapped rootfs: %w", err)
	}
	// The runtime's own directories are made searchable; anything above
	// the root must already be.
	for d := filepath.Dir(dst); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("id-mapped rootfs: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if !strings.HasPrefix(d+"/", filepath.Clean(root)+"/") {
				return fmt.Errorf("isolation session: %s is not searchable by other users, so the agent's root (an unprivileged host uid) cannot reach its rootfs", d)
			}
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("id-mapped rootfs: make %s searchable: %w", d, err)
			}
		}
		if d == "/" || d == "." {
			break
		}
	}
	return nil
}

// mountIDMapped mounts rootfs on dst, id-mapped into the range r.
func mountIDMapped(rootfs, dst string, r idRange) error {
	phasemark.Mark("idmap: start")
	userns, err := usernsFD(r)
	if err != nil {
		return err
	}
	defer unix.Close(userns)
	phasemark.Mark("idmap: userns")
	tree, err := unix.OpenTree(unix.AT_FDCWD, rootfs, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "id-mapped rootfs: open_tree", Path: rootfs, Err: err}
	}
	defer unix.Close(tree)
	phasemark.Mark("idmap: tree opened")
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)}); err != nil {
		hint := ""
		if errors.Is(err, unix.EINVAL) {
			hint = " (the filesystem of the rootfs does not support id-mapped mounts on this kernel)"
		}
		return fmt.Errorf("isolation session: id-map the rootfs %s: %w%s", rootfs, err, hint)
	}
	phasemark.Mark("idmap: id-mapped")
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "id-mapped rootfs: move_mount", Path: dst, Err: err}
	}
	phasemark.Mark("idmap: moved")
	return nil
}

// unmountIDMapped removes what mountIDMappedRootfs made; idempotent. The
// .mxc-idmap directory above dst stays, as the root's .locks does:
// removing it once empty raced with another container's create between
// its two mkdirs (ENOENT, found by 100 concurrent creates).
func unmountIDMapped(dst string) error {
	for i := 0; i < 8; i++ {
		err := unix.Unmount(dst, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		} else if err != nil {
			return fmt.Errorf("unmount %s: %w", dst, err)
		}
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// usernsFDExec returns an fd of a user namespace with r's mapping: a
// child is started in it under PTRACE_TRACEME, so it stops at its exec
// before running any code, its namespace is opened and it is killed (the
// approach of libcontainer's own id-mapped mounts). usernsFD takes it
// with MXC_USERNS_HELPER=exec.
func usernsFDExec(r idRange) (int, error) {
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.Base), Size: int(r.Size)}}
	proc, err := os.StartProcess("/proc/self/exe", []string{"mxc-userns"}, &os.ProcAttr{
		Sys: &syscall.SysProcAttr{
			Cloneflags:  unix.CLONE_NEWUSER,
			UidMappings: m,
			GidMappings: m,
			Ptrace:      true,
		},
	})
	if err != nil {
		return -1, fmt.Errorf("id-mapped rootfs: user namespace helper: %w", err)
	}
	defer func() {
		_ = proc.Kill()
		_, _ = proc.Wait()
	}()
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", proc.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("id-mapped rootfs: open user namespace: %w", err)
	}
	return fd, nil
}
