//go:build linux

package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"

	h "mxc.dev/mxc/integration/harness"
)

// cgroupView is what a container shows of its mounts and its fds: the
// mountinfo without mount ids and anonymous device numbers (those depend on
// the order of mounts on the host, not on what was mounted), the entries at
// /sys/fs/cgroup (mode, owner, type: not `ls -l`, whose minute column made
// two views taken across a minute's turn differ), the entries of /dev and
// of the filesystems mounted in it (mode, owner, type, device numbers),
// and pid 1's open fds.
const cgroupView = `cat /proc/self/mountinfo; echo ---; for f in /sys/fs/cgroup/*; do stat -c '%n %a %u:%g %F' "$f"; done; echo ---; ` +
	`for f in /dev /dev/* /dev/pts/* /dev/shm/* /dev/mqueue/*; do stat -c '%n %a %u:%g %F %t:%T' "$f"; done; echo ---; ls /proc/1/fd`

var anonDev = regexp.MustCompile(`^0:\d+$`)

// normalizeView makes the view independent of mount ids and anonymous
// device numbers, which depend on what the host mounted before: each
// mountinfo line names its parent by mount point instead of id. The order
// of the lines stays: mounts are made in the spec's order.
func normalizeView(s string) string {
	info, rest, _ := strings.Cut(s, "---\n")
	lines := strings.Split(strings.TrimSpace(info), "\n")
	point := map[string]string{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 4 {
			point[f[0]] = f[4]
		}
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 5 {
			out = append(out, l)
			continue
		}
		parent, ok := point[f[1]]
		if !ok {
			parent = "(outside)"
		}
		if anonDev.MatchString(f[2]) {
			f[2] = "0:_"
		}
		out = append(out, "parent="+parent+" "+strings.Join(f[2:], " "))
	}
	return strings.Join(out, "\n") + "\n---\n" + rest
}

// TestCgroupV1ViewMatchesLibcontainer: the mounts and device nodes that
// mxc's init makes itself (linux/initmount: the run of /dev/pts, /dev/shm,
// /dev/mqueue, /sys and the cgroup v1 view at the end of the spec's list,
// and the nodes in /dev's tmpfs) are, in order, mount for mount, option
// for option, node for node, the ones libcontainer makes
// (MXC_INIT_MOUNTS=0): for the cgroup mount as runc's and docker's specs
// write it, read-write, with private propagation, in a cgroup namespace
// (one mount per hierarchy instead of binds), in a user namespace (nodes
// bind-mounted from the host), with a node of the spec's own; and where
// libcontainer keeps the mounts: a mount after them (docker's binds, a
// mount below the view), ctr's spec (a /run tmpfs last), a read-only
// /dev/mqueue (libcontainer keeps it and everything before it), the view in
// a user namespace without a cgroup namespace.
func TestCgroupV1ViewMatchesLibcontainer(t *testing.T) {
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("cgroup v2 host: no v1 view to mount")
	}
	all := []string{"/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "the cgroup v1 view at /sys/fs/cgroup"}
	cases := []struct {
		name  string
		taken []string // what mxc's init mounts, in order (else libcontainer does, both times)
		edit  func(s *specs.Spec)
	}{
		{"runc spec", all, func(*specs.Spec) {}},
		{"docker options", all, func(s *specs.Spec) {
			cgroupMount(t, s).Options = []string{"ro", "nosuid", "noexec", "nodev"}
		}},
		{"read-write", all, func(s *specs.Spec) {
			cgroupMount(t, s).Options = []string{"nosuid", "noexec", "nodev"}
		}},
		{"private propagation", all, func(s *specs.Spec) {
			m := cgroupMount(t, s)
			m.Options = append(m.Options, "rprivate")
			m = specMount(t, s, "/dev/shm")
			m.Options = append(m.Options, "rprivate")
		}},
		{"cgroup namespace", all, func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}},
		{"a mount below the view after it", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup/extra", Type: "tmpfs", Source: "tmpfs"})
		}},
		{"docker's binds after it", nil, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: "/etc/hostname", Options: []string{"rbind", "ro"}})
		}},
		{"ctr's spec: no cgroup mount, /run last", nil, func(s *specs.Spec) {
			*cgroupMount(t, s) = specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}}
		}},
		{"no cgroup mount, /sys last", all[:4], func(s *specs.Spec) {
			s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Type == "cgroup" })
		}},
		{"read-only mqueue", all[3:], func(s *specs.Spec) {
			m := specMount(t, s, "/dev/mqueue")
			m.Options = append(m.Options, "ro")
		}},
		// A user namespace (identity-mapped: the bundle's rootfs is
		// root's): the device nodes are bind mounts of the host's, in
		// mountinfo after every mount; libcontainer bind-mounts host paths
		// for the cgroup view unless there is a cgroup namespace too.
		{"user namespace", nil, func(s *specs.Spec) { userNamespace(s, false) }},
		{"user and cgroup namespaces (the session tier's)", all, func(s *specs.Spec) { userNamespace(s, true) }},
		{"a device node of the spec", all, func(s *specs.Spec) {
			mode := os.FileMode(0o640)
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := h.NewRuntime(t)
			b := h.NewBundle(t, "sh", "-c", cgroupView)
			tc.edit(b.Spec)
			b.Save(t)
			views := map[string]string{}
			for _, mode := range []string{"", "0"} {
				rt.Env = []string{"MXC_INIT_MOUNTS=" + mode}
				res := rt.MustRun("--debug", "run", "--bundle", b.Dir, "cgview")
				want := ""
				if mode == "" && len(tc.taken) > 0 {
					want = "initmount: the init mounted " + strings.Join(tc.taken, ", ")
				}
				if got := initMountsLine(res.Stderr); got != want {
					t.Errorf("MXC_INIT_MOUNTS=%q: mxc's init mounted %q, want %q", mode, got, want)
				}
				// The nodes in /dev's tmpfs are made by mxc's init in every
				// case here.
				if made := strings.Contains(res.Stderr, "initmount: the init made the device nodes /dev/null,"); made != (mode == "") {
					t.Errorf("MXC_INIT_MOUNTS=%q: device nodes made by mxc's init: %v", mode, made)
				}
				if strings.Contains(res.Stderr, "cannot serialize hook") {
					t.Errorf("MXC_INIT_MOUNTS=%q: libcontainer's hook warning reached the user: %s", mode, res.Stderr)
				}
				views[mode] = normalizeView(res.Stdout)
			}
			if views[""] != views["0"] {
				t.Fatalf("mxc's view differs from libcontainer's\n--- mxc:\n%s\n--- libcontainer:\n%s", views[""], views["0"])
			}
			if !strings.Contains(views[""], " /sys/fs/cgroup/memory ") && slices.Contains(tc.taken, all[4]) {
				t.Fatalf("no memory hierarchy in the view:\n%s", views[""])
			}
		})
	}
}

// TestCgroupV1ViewBeforeHooks: the spec's createContainer hooks (in the
// container's mount namespace, before pivot_root) already see the cgroup
// v1 view, as they do when libcontainer mounts it.
func TestCgroupV1ViewBeforeHooks(t *testing.T) {
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("cgroup v2 host: no v1 view to mount")
	}
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "true")
	rootfs := filepath.Join(b.Dir, "rootfs")
	out := filepath.Join(rootfs, "tmp", "hook-view")
	b.Spec.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{
		Path: "/bin/sh",
		Args: []string{"sh", "-c", fmt.Sprintf(`grep -c ' %s/sys/fs/cgroup/[^ ]* .* - cgroup ' /proc/self/mountinfo > %s`, rootfs, out)},
	}}}
	b.Save(t)
	rt.MustRun("run", "--bundle", b.Dir, "cghook")
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("hook output: %v", err)
	}
	mounts, err := cgroups.GetCgroupMounts(false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(data)), fmt.Sprint(len(mounts)); got != want {
		t.Fatalf("createContainer hook saw %s cgroup v1 mounts in the rootfs, want %s", got, want)
	}
}

// userNamespace puts s in a user namespace mapping the host's first 65536
// ids to themselves (the bundle's rootfs is root's), with a cgroup
// namespace if cgroupns.
func userNamespace(s *specs.Spec, cgroupns bool) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	if cgroupns {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
}

// initMountsLine is the runtime's debug line that names what mxc's init
// mounted (linux/initmount); "" if none.
func initMountsLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if i := strings.Index(l, "initmount: the init mounted "); i >= 0 {
			l = l[i:]
			if j := strings.IndexByte(l, '"'); j >= 0 {
				l = l[:j]
			}
			return l
		}
	}
	return ""
}

func specMount(t *testing.T, s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	t.Fatalf("spec has no mount at %s", dest)
	return nil
}

func cgroupMount(t *testing.T, s *specs.Spec) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Type == "cgroup" {
			return &s.Mounts[i]
		}
	}
	t.Fatal("spec has no cgroup mount")
	return nil
}
