package cgroupfs

import (
	"path"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

func TestEligible(t *testing.T) {
	sys := &configs.Mount{Device: "sysfs", Source: "sysfs", Destination: "/sys"}
	cg := &configs.Mount{Device: "cgroup", Source: "cgroup", Destination: "/sys/fs/cgroup"}
	proc := &configs.Mount{Device: "proc", Source: "proc", Destination: "/proc"}
	bind := func(dest string) *configs.Mount {
		return &configs.Mount{Device: "bind", Source: "/src", Destination: dest, Flags: 4096}
	}
	ns := configs.Namespaces{{Type: configs.NEWNS}, {Type: configs.NEWPID}}
	cases := []struct {
		name   string
		mounts []*configs.Mount
		edit   func(c *configs.Config)
		want   int
	}{
		{"runc's order", []*configs.Mount{proc, sys, cg}, nil, 2},
		{"docker's order, binds after", []*configs.Mount{proc, sys, cg, bind("/etc/hosts"), bind("/etc/resolv.conf")}, nil, 2},
		{"no sysfs before it", []*configs.Mount{proc, cg, sys}, nil, -1},
		{"no cgroup mount", []*configs.Mount{proc, sys}, nil, -1},
		{"elsewhere", []*configs.Mount{sys, {Device: "cgroup", Destination: "/cg"}}, nil, -1},
		{"unclean destination", []*configs.Mount{sys, {Device: "cgroup", Destination: "/sys//fs/cgroup/"}}, nil, 1},
		{"two cgroup mounts", []*configs.Mount{sys, cg, cg}, nil, -1},
		{"later mount below", []*configs.Mount{sys, cg, bind("/sys/fs/cgroup/memory/x")}, nil, -1},
		{"later mount at it", []*configs.Mount{sys, cg, bind("/sys/fs/cgroup")}, nil, -1},
		{"later mount above", []*configs.Mount{sys, cg, bind("/sys")}, nil, -1},
		{"later mount at /", []*configs.Mount{sys, cg, bind("/")}, nil, -1},
		{"later sibling", []*configs.Mount{sys, cg, bind("/sys/fs/cgroupx"), bind("/sys/kernel/x")}, nil, 1},
		{"id-mapped", []*configs.Mount{sys, {Device: "cgroup", Destination: "/sys/fs/cgroup", IDMapping: &configs.MountIDMapping{}}}, nil, -1},
		{"recursive attributes", []*configs.Mount{sys, {Device: "cgroup", Destination: "/sys/fs/cgroup", RecAttr: &unix.MountAttr{}}}, nil, -1},
		{"user namespace", []*configs.Mount{sys, cg}, func(c *configs.Config) {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER})
		}, -1},
		{"cgroup namespace", []*configs.Mount{sys, cg}, func(c *configs.Config) {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWCGROUP})
		}, 1},
		{"user and cgroup namespaces", []*configs.Mount{sys, cg}, func(c *configs.Config) {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER}, configs.Namespace{Type: configs.NEWCGROUP})
		}, 1},
		{"no mount namespace", []*configs.Mount{sys, cg}, func(c *configs.Config) {
			c.Namespaces = configs.Namespaces{{Type: configs.NEWPID}}
		}, -1},
		{"SELinux label", []*configs.Mount{sys, cg}, func(c *configs.Config) { c.MountLabel = "system_u:object_r:x" }, -1},
		{"rootless", []*configs.Mount{sys, cg}, func(c *configs.Config) { c.RootlessEUID = true }, -1},
		{"relative rootfs", []*configs.Mount{sys, cg}, func(c *configs.Config) { c.Rootfs = "rootfs" }, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &configs.Config{Rootfs: "/bundle/rootfs", Namespaces: append(configs.Namespaces(nil), ns...), Mounts: tc.mounts}
			if tc.edit != nil {
				tc.edit(c)
			}
			if got := eligible(c); got != tc.want {
				t.Fatalf("eligible = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestTakeRemovesTheMount: a taken mount leaves libcontainer's list, the
// hook goes first in prestart, and the init's end is attached last.
func TestTakeRemovesTheMount(t *testing.T) {
	t.Setenv("MXC_CGROUPFS", "")
	user := configs.NewCommandHook(&configs.Command{Path: "/bin/true"})
	c := &configs.Config{
		Rootfs:     "/bundle/rootfs",
		Namespaces: configs.Namespaces{{Type: configs.NEWNS}},
		Mounts: []*configs.Mount{
			{Device: "sysfs", Destination: "/sys"},
			{Device: "cgroup", Destination: "/sys/fs/cgroup", Flags: 1},
			{Device: "bind", Destination: "/etc/hosts"},
		},
		Hooks: configs.Hooks{configs.Prestart: configs.HookList{user}},
	}
	pl, err := Take(c)
	if err != nil {
		t.Fatal(err)
	}
	if pl == nil {
		t.Skip("cgroup v2 host: nothing to take")
	}
	defer pl.Close()
	if len(c.Mounts) != 2 || c.Mounts[1].Destination != "/etc/hosts" {
		t.Fatalf("mounts after Take: %+v", c.Mounts)
	}
	hooks := c.Hooks[configs.Prestart]
	if len(hooks) != 2 {
		t.Fatalf("prestart hooks: %d", len(hooks))
	}
	if _, ok := hooks[0].(configs.FuncHook); !ok {
		t.Fatalf("first prestart hook is %T, want mxc's", hooks[0])
	}
	if pl.p.Flags != 1 || pl.p.Rootfs != "/bundle/rootfs" || pl.p.Cgroupns {
		t.Fatalf("params: %+v", pl.p)
	}
	pl.Close()
	pl.Close() // idempotent

	t.Setenv("MXC_CGROUPFS", "0")
	c.Mounts = append(c.Mounts, &configs.Mount{Device: "cgroup", Destination: "/sys/fs/cgroup"})
	if pl, err := Take(c); pl != nil || err != nil {
		t.Fatalf("MXC_CGROUPFS=0: Take = %v, %v", pl, err)
	}
}

// FuzzEligible: whatever the mount list, eligible never panics, and a
// mount it picks is the one cgroup mount, at Dest, after a sysfs at /sys,
// with nothing mounted at, above or below Dest after it.
func FuzzEligible(f *testing.F) {
	f.Add("proc:/proc sysfs:/sys cgroup:/sys/fs/cgroup bind:/etc/hosts", false, false)
	f.Add("sysfs:/sys cgroup:/sys/fs/cgroup bind:/sys/fs/cgroup/x", true, true)
	f.Add("sysfs:/sys/ cgroup:/sys//fs/cgroup/ tmpfs:/sys/fs/cgroupx", false, true)
	f.Fuzz(func(t *testing.T, list string, userns, cgroupns bool) {
		c := &configs.Config{Rootfs: "/r", Namespaces: configs.Namespaces{{Type: configs.NEWNS}}}
		if userns {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER})
		}
		if cgroupns {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWCGROUP})
		}
		for _, f := range strings.Fields(list) {
			dev, dest, _ := strings.Cut(f, ":")
			c.Mounts = append(c.Mounts, &configs.Mount{Device: dev, Destination: dest})
		}
		i := eligible(c)
		if i < 0 {
			return
		}
		if userns && !cgroupns {
			t.Fatal("took a user namespace without a cgroup namespace")
		}
		clean := func(p string) string { return path.Clean("/" + p) }
		if c.Mounts[i].Device != "cgroup" || clean(c.Mounts[i].Destination) != Dest {
			t.Fatalf("picked %+v", c.Mounts[i])
		}
		sys := false
		for j, m := range c.Mounts {
			d := clean(m.Destination)
			switch {
			case j < i && m.Device == "sysfs" && d == "/sys":
				sys = true
			case j != i && m.Device == "cgroup":
				t.Fatalf("picked one of several cgroup mounts: %v", list)
			case j > i && (d == "/" || d == Dest || strings.HasPrefix(Dest, d+"/") || strings.HasPrefix(d, Dest+"/")):
				t.Fatalf("mount %d (%s) after the picked one overlaps it", j, d)
			}
		}
		if !sys {
			t.Fatalf("no sysfs at /sys before the picked mount: %v", list)
		}
	})
}
