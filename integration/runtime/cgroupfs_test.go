//go:build linux

package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"

	h "mxc.dev/mxc/integration/harness"
)

// cgroupView is what a container shows of its mounts and its fds: the
// mountinfo without mount ids and anonymous device numbers (those depend on
// the order of mounts on the host, not on what was mounted), the links at
// /sys/fs/cgroup, and pid 1's open fds.
const cgroupView = `cat /proc/self/mountinfo; echo ---; ls -l /sys/fs/cgroup; echo ---; ls /proc/1/fd`

var mountIDs = regexp.MustCompile(`(?m)^\d+ \d+ (0:\d+ )?`)

func normalizeView(s string) string { return mountIDs.ReplaceAllString(s, "") }

// TestCgroupV1ViewMatchesLibcontainer: the cgroup v1 view that mxc's init
// mounts itself (linux/cgroupfs) is, mount for mount, option for option,
// the one libcontainer makes (MXC_CGROUPFS=0), for the mount as runc's and
// docker's specs write it, read-write, in a cgroup namespace (one mount
// per hierarchy instead of binds), and where libcontainer keeps it (a
// later mount below /sys/fs/cgroup).
func TestCgroupV1ViewMatchesLibcontainer(t *testing.T) {
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("cgroup v2 host: no v1 view to mount")
	}
	cases := []struct {
		name  string
		taken bool // mxc mounts it (else libcontainer does, both times)
		edit  func(s *specs.Spec)
	}{
		{"runc spec", true, func(*specs.Spec) {}},
		{"docker options", true, func(s *specs.Spec) {
			cgroupMount(t, s).Options = []string{"ro", "nosuid", "noexec", "nodev"}
		}},
		{"read-write", true, func(s *specs.Spec) {
			cgroupMount(t, s).Options = []string{"nosuid", "noexec", "nodev"}
		}},
		{"private propagation", true, func(s *specs.Spec) {
			m := cgroupMount(t, s)
			m.Options = append(m.Options, "rprivate")
		}},
		{"cgroup namespace", true, func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}},
		{"later mount below it", false, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup/extra", Type: "tmpfs", Source: "tmpfs"})
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
				rt.Env = []string{"MXC_CGROUPFS=" + mode}
				res := rt.MustRun("--debug", "run", "--bundle", b.Dir, "cgview")
				if taken := strings.Contains(res.Stderr, "cgroupfs: the init mounted"); taken != (tc.taken && mode == "") {
					t.Errorf("MXC_CGROUPFS=%q: mounted by mxc's init: %v, want %v", mode, taken, tc.taken && mode == "")
				}
				if strings.Contains(res.Stderr, "cannot serialize hook") {
					t.Errorf("MXC_CGROUPFS=%q: libcontainer's hook warning reached the user: %s", mode, res.Stderr)
				}
				views[mode] = normalizeView(res.Stdout)
			}
			if views[""] != views["0"] {
				t.Fatalf("mxc's view differs from libcontainer's\n--- mxc:\n%s\n--- libcontainer:\n%s", views[""], views["0"])
			}
			if !strings.Contains(views[""], " /sys/fs/cgroup/memory ") {
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

func cgroupMount(t *testing.T, s *specs.Spec) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Type == "cgroup" {
			return &s.Mounts[i]
		}
	}
	t.Fatal("spec has no cgroup mount")
	return nil
}
