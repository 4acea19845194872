package initmount

import (
	"path"
	"slices"
	"strings"
	"testing"

	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// runcMounts are the mounts of `runc spec`, in its order.
func runcMounts() []*configs.Mount {
	return []*configs.Mount{
		{Device: "proc", Source: "proc", Destination: "/proc"},
		{Device: "tmpfs", Source: "tmpfs", Destination: "/dev", Data: "mode=755,size=65536k"},
		{Device: "devpts", Source: "devpts", Destination: "/dev/pts", Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{Device: "tmpfs", Source: "shm", Destination: "/dev/shm", Data: "mode=1777,size=65536k"},
		{Device: "mqueue", Source: "mqueue", Destination: "/dev/mqueue"},
		{Device: "sysfs", Source: "sysfs", Destination: "/sys", Flags: unix.MS_RDONLY},
		{Device: "cgroup", Source: "cgroup", Destination: "/sys/fs/cgroup", Flags: unix.MS_RDONLY},
	}
}

func TestSelectMounts(t *testing.T) {
	bind := func(dest string) *configs.Mount {
		return &configs.Mount{Device: "bind", Source: "/src", Destination: dest, Flags: unix.MS_BIND}
	}
	ns := configs.Namespaces{{Type: configs.NEWNS}, {Type: configs.NEWPID}}
	all := []int{2, 3, 4, 5, 6}
	cases := []struct {
		name     string
		edit     func(c *configs.Config)
		cgroupV2 bool
		want     []int
	}{
		// mxc's masks of denied files come after the user's mounts
		// (userMounts = 7 below): made first, if they are elsewhere.
		{"mxc's masks after, elsewhere", func(c *configs.Config) {
			c.Mounts = append(c.Mounts, bind("/workspace/.env"), bind("/proc/kcore"))
		}, false, all},
		{"mxc's mask below /sys", func(c *configs.Config) {
			c.Mounts = append(c.Mounts, bind("/sys/kernel/x"))
		}, false, []int{6}},
		{"mxc's mask below /dev/shm", func(c *configs.Config) {
			c.Mounts = append(c.Mounts, bind("/dev/shm/x"))
		}, false, []int{4, 5, 6}},
		{"runc's spec", nil, false, all},
		// Mounts are made in their listed order: a mount libcontainer
		// makes, anywhere after ours, stops the run.
		{"docker's binds after", func(c *configs.Config) {
			c.Mounts = append(c.Mounts, bind("/etc/hosts"), bind("/etc/resolv.conf"))
		}, false, nil},
		{"ctr's /run tmpfs last", func(c *configs.Config) {
			c.Mounts[6] = &configs.Mount{Device: "tmpfs", Source: "tmpfs", Destination: "/run"}
		}, false, nil},
		{"no cgroup mount", func(c *configs.Config) { c.Mounts = c.Mounts[:6] }, false, []int{2, 3, 4, 5}},
		{"cgroup v2 host", nil, true, nil},
		{"docker's /dev/shm is a bind", func(c *configs.Config) { c.Mounts[3] = bind("/dev/shm") }, false, []int{4, 5, 6}},
		{"read-only mqueue", func(c *configs.Config) { c.Mounts[4].Flags |= unix.MS_RDONLY }, false, []int{5, 6}},
		{"wrong type at /dev/mqueue", func(c *configs.Config) { c.Mounts[4].Device = "tmpfs" }, false, []int{5, 6}},
		{"device node in /dev/shm", func(c *configs.Config) {
			c.Devices = append(c.Devices, &devices.Device{Path: "/dev/shm/node"})
		}, false, []int{4, 5, 6}},
		{"/dev not a tmpfs", func(c *configs.Config) { c.Mounts[1] = bind("/dev") }, false, []int{5, 6}},
		{"/dev/pts before /dev", func(c *configs.Config) {
			c.Mounts[1], c.Mounts[2] = c.Mounts[2], c.Mounts[1]
		}, false, []int{3, 4, 5, 6}},
		{"no sysfs before the cgroup view", func(c *configs.Config) {
			c.Mounts[5] = &configs.Mount{Device: "tmpfs", Destination: "/sys"}
		}, false, nil},
		// The second view would lie in the first, not in sysfs.
		{"the cgroup view twice", func(c *configs.Config) {
			c.Mounts = append(c.Mounts, &configs.Mount{Device: "cgroup", Destination: "/sys/fs/cgroup"})
		}, false, nil},
		// The second would lie in the first, not in /dev's tmpfs.
		{"/dev/mqueue twice", func(c *configs.Config) {
			c.Mounts = append(c.Mounts[:6:6], &configs.Mount{Device: "mqueue", Destination: "/dev/mqueue"})
		}, false, nil},
		{"unclean destinations", func(c *configs.Config) {
			c.Mounts[2].Destination, c.Mounts[6].Destination = "/dev//pts/", "sys/fs/cgroup"
		}, false, all},
		{"id-mapped", func(c *configs.Config) { c.Mounts[5].IDMapping = &configs.MountIDMapping{} }, false, []int{6}},
		{"recursive attributes", func(c *configs.Config) { c.Mounts[6].RecAttr = &unix.MountAttr{} }, false, nil},
		{"extensions", func(c *configs.Config) { c.Mounts[3].Extensions = configs.EXT_COPYUP }, false, []int{4, 5, 6}},
		{"cgroup namespace", func(c *configs.Config) {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWCGROUP})
		}, false, all},
		// libcontainer bind-mounts host paths for the view in a user
		// namespace without a cgroup namespace: it keeps the view, and so
		// everything before it.
		{"user namespace", func(c *configs.Config) {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER})
		}, false, nil},
		{"user namespace, no cgroup mount", func(c *configs.Config) {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER})
			c.Mounts = c.Mounts[:6]
		}, false, []int{2, 3, 4, 5}},
		{"user and cgroup namespaces (the session tier)", func(c *configs.Config) {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER}, configs.Namespace{Type: configs.NEWCGROUP})
		}, false, all},
		{"no mount namespace", func(c *configs.Config) { c.Namespaces = configs.Namespaces{{Type: configs.NEWPID}} }, false, nil},
		{"SELinux label", func(c *configs.Config) { c.MountLabel = "system_u:object_r:x" }, false, nil},
		{"rootless", func(c *configs.Config) { c.RootlessEUID = true }, false, nil},
		{"relative rootfs", func(c *configs.Config) { c.Rootfs = "rootfs" }, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &configs.Config{Rootfs: "/bundle/rootfs", Namespaces: append(configs.Namespaces(nil), ns...), Mounts: runcMounts()}
			if tc.edit != nil {
				tc.edit(c)
			}
			users := len(c.Mounts)
			if strings.HasPrefix(tc.name, "mxc's") {
				users = 7
			}
			if got := selectMounts(c, !tc.cgroupV2, users); !slices.Equal(got, tc.want) {
				t.Fatalf("selectMounts = %v, want %v", got, tc.want)
			}
		})
	}
}

// defaultDevices are a cgroup-only rule and three of libcontainer's
// default nodes, as specconv lists them.
func defaultDevices() []*devices.Device {
	return []*devices.Device{
		{Rule: devices.Rule{Type: devices.CharDevice, Major: devices.Wildcard, Minor: devices.Wildcard}},
		{Path: "/dev/null", FileMode: 0o666, Rule: devices.Rule{Type: devices.CharDevice, Major: 1, Minor: 3}},
		{Path: "/dev/zero", FileMode: 0o666, Rule: devices.Rule{Type: devices.CharDevice, Major: 1, Minor: 5}},
		{Path: "/dev/tty", FileMode: 0o666, Rule: devices.Rule{Type: devices.CharDevice, Major: 5, Minor: 0}},
	}
}

// TestSelectDevices: the run of nodes at the end of the list that lie
// directly in libcontainer's /dev tmpfs, with nothing mounted on them;
// a node libcontainer must make (elsewhere, special, mounted over, of no
// node type) stops the run.
func TestSelectDevices(t *testing.T) {
	node := func(p string) *devices.Device {
		return &devices.Device{Path: p, FileMode: 0o600, Rule: devices.Rule{Type: devices.CharDevice, Major: 10, Minor: 200}}
	}
	cases := []struct {
		name string
		edit func(c *configs.Config)
		want []int
	}{
		{"libcontainer's defaults", nil, []int{1, 2, 3}},
		{"a node in a directory of /dev, last", func(c *configs.Config) { c.Devices = append(c.Devices, node("/dev/net/tun")) }, nil},
		{"a node in a directory of /dev, first", func(c *configs.Config) {
			c.Devices = append([]*devices.Device{node("/dev/net/tun")}, c.Devices...)
		}, []int{2, 3, 4}},
		{"unclean path", func(c *configs.Config) { c.Devices = append(c.Devices, node("/dev//fuse/")) }, []int{1, 2, 3, 4}},
		{"/dev/ptmx (libcontainer's symlink)", func(c *configs.Config) { c.Devices = append(c.Devices, node("/dev/ptmx")) }, nil},
		{"/dev/console", func(c *configs.Config) { c.Devices = append(c.Devices, node("/dev/console")) }, nil},
		{"outside /dev", func(c *configs.Config) { c.Devices = append(c.Devices, node("/tmp/x")) }, nil},
		{"a block device", func(c *configs.Config) {
			d := node("/dev/loop0")
			d.Type = devices.BlockDevice
			c.Devices = append(c.Devices, d)
		}, []int{1, 2, 3, 4}},
		{"a wildcard rule with a path", func(c *configs.Config) {
			d := node("/dev/x")
			d.Type = devices.WildcardDevice
			c.Devices = append(c.Devices, d)
		}, nil},
		{"a mount on a node", func(c *configs.Config) {
			c.Mounts = append(c.Mounts, &configs.Mount{Device: "bind", Source: "/x", Destination: "/dev/zero"})
		}, []int{3}},
		{"/dev a bind mount (libcontainer makes no nodes)", func(c *configs.Config) {
			c.Mounts[1] = &configs.Mount{Device: "bind", Source: "/dev", Destination: "/dev"}
		}, nil},
		{"no /dev mount", func(c *configs.Config) { c.Mounts = c.Mounts[:1] }, nil},
		{"user namespace: binds", func(c *configs.Config) {
			c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER})
		}, []int{1, 2, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &configs.Config{Rootfs: "/r", Namespaces: configs.Namespaces{{Type: configs.NEWNS}}, Mounts: runcMounts(), Devices: defaultDevices()}
			if tc.edit != nil {
				tc.edit(c)
			}
			got := selectDevices(c)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("selectDevices = %v, want %v", got, tc.want)
			}
			for _, i := range got {
				d, err := deviceOf(c, c.Devices[i])
				if err != nil || d.Bind != c.Namespaces.Contains(configs.NEWUSER) || d.Source != c.Devices[i].Path {
					t.Fatalf("device %d: %+v, %v", i, d, err)
				}
			}
		})
	}
}

// FuzzSelectDevices: whatever the nodes and mounts, the nodes picked are
// the end of the list (cgroup-only rules aside), each a single name in
// /dev that a tmpfs at /dev covers, with no mount at or below it.
func FuzzSelectDevices(f *testing.F) {
	f.Add("/dev/null /dev/zero /dev/net/tun", "tmpfs:/dev bind:/dev/zero")
	f.Add("/dev/ptmx  /dev//x/", "tmpfs:/dev/ tmpfs:/dev/x")
	f.Fuzz(func(t *testing.T, nodes, mounts string) {
		c := &configs.Config{Rootfs: "/r", Namespaces: configs.Namespaces{{Type: configs.NEWNS}}}
		for _, m := range strings.Fields(mounts) {
			dev, dest, _ := strings.Cut(m, ":")
			c.Mounts = append(c.Mounts, &configs.Mount{Device: dev, Destination: dest})
		}
		for _, n := range strings.Split(nodes, " ") {
			c.Devices = append(c.Devices, &devices.Device{Path: n, Rule: devices.Rule{Type: devices.CharDevice, Major: 1, Minor: 3}})
		}
		got := selectDevices(c)
		for k, i := range got {
			if k > 0 && i <= got[k-1] {
				t.Fatalf("not in order: %v", got)
			}
			for j := i + 1; j < len(c.Devices); j++ {
				if c.Devices[j].Path != "" && !slices.Contains(got, j) {
					t.Fatalf("picked %d but not %d after it", i, j)
				}
			}
			p := path.Clean("/" + c.Devices[i].Path)
			name, ok := strings.CutPrefix(p, "/dev/")
			if !ok || name == "" || strings.Contains(name, "/") {
				t.Fatalf("picked %q", c.Devices[i].Path)
			}
			var last *configs.Mount
			for _, m := range c.Mounts {
				d := path.Clean("/" + m.Destination)
				if strings.HasPrefix(d+"/", p+"/") || strings.HasPrefix(d, p+"/") {
					if d != "/" && strings.HasPrefix(d, p) {
						t.Fatalf("picked %s with %s mounted at or below it", p, d)
					}
				}
				if d == "/" || strings.HasPrefix(p+"/", d+"/") {
					last = m
				}
			}
			if last == nil || last.Device != "tmpfs" || path.Clean("/"+last.Destination) != "/dev" {
				t.Fatalf("picked %s, not in a tmpfs at /dev: %v", p, mounts)
			}
		}
	})
}

// TestTake: the taken mounts leave libcontainer's list, the plan has them
// in order with their options, the hook goes first in prestart; a
// disabled package takes nothing.
func TestTake(t *testing.T) {
	t.Setenv("MXC_CGROUPFS", "")
	t.Setenv("MXC_INIT_MOUNTS", "")
	user := configs.NewCommandHook(&configs.Command{Path: "/bin/true"})
	c := &configs.Config{
		Rootfs:     "/bundle/rootfs",
		Namespaces: configs.Namespaces{{Type: configs.NEWNS}},
		Mounts:     runcMounts()[:6], // no cgroup view: the same on a cgroup v2 host
		Hooks:      configs.Hooks{configs.Prestart: configs.HookList{user}},
		Devices:    defaultDevices(),
	}
	c.Mounts[3].PropagationFlags = []int{unix.MS_PRIVATE}
	pl, err := Take(c, len(c.Mounts))
	if err != nil || pl == nil {
		t.Fatalf("Take = %v, %v", pl, err)
	}
	defer pl.Close()
	var left []string
	for _, m := range c.Mounts {
		left = append(left, m.Destination)
	}
	if !slices.Equal(left, []string{"/proc", "/dev"}) {
		t.Fatalf("left to libcontainer: %v", left)
	}
	want := []mountSpec{
		{Kind: kindDev, Name: "pts", Source: "devpts", Device: "devpts", Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{Kind: kindDev, Name: "shm", Source: "shm", Device: "tmpfs", Data: "mode=1777,size=65536k", Propagation: []int{unix.MS_PRIVATE}},
		{Kind: kindDev, Name: "mqueue", Source: "mqueue", Device: "mqueue"},
		{Kind: kindSysfs, Source: "sysfs", Device: "sysfs", Flags: unix.MS_RDONLY},
	}
	if len(pl.p.Mounts) != len(want) || pl.p.Rootfs != "/bundle/rootfs" {
		t.Fatalf("params: %+v", pl.p)
	}
	for i, m := range pl.p.Mounts {
		w := want[i]
		if m.Kind != w.Kind || m.Name != w.Name || m.Source != w.Source || m.Device != w.Device ||
			m.Flags != w.Flags || m.Data != w.Data || !slices.Equal(m.Propagation, w.Propagation) || m.Cgroupns {
			t.Fatalf("mount %d: %+v, want %+v", i, m, w)
		}
	}
	if got := pl.what(); !slices.Equal(got, []string{"/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"}) {
		t.Fatalf("what: %v", got)
	}
	// The nodes after the cgroup-only rule: all of them.
	if len(c.Devices) != 1 || c.Devices[0].Path != "" {
		t.Fatalf("devices left to libcontainer: %+v", c.Devices)
	}
	if len(pl.p.Devices) != 3 {
		t.Fatalf("devices taken: %+v", pl.p.Devices)
	}
	if d := pl.p.Devices[0]; d != (deviceSpec{Name: "null", Mode: unix.S_IFCHR | 0o666, Rdev: unix.Mkdev(1, 3), Source: "/dev/null"}) {
		t.Fatalf("/dev/null: %+v", d)
	}
	hooks := c.Hooks[configs.Prestart]
	if len(hooks) != 2 {
		t.Fatalf("prestart hooks: %d", len(hooks))
	}
	if _, ok := hooks[0].(configs.FuncHook); !ok {
		t.Fatalf("first prestart hook is %T, want mxc's", hooks[0])
	}
	pl.Close()
	pl.Close() // idempotent

	for _, env := range []string{"MXC_INIT_MOUNTS", "MXC_CGROUPFS"} {
		t.Setenv(env, "0")
		c.Mounts = runcMounts()
		if pl, err := Take(c, len(c.Mounts)); pl != nil || err != nil || len(c.Mounts) != 7 {
			t.Fatalf("%s=0: Take = %v, %v; %d mounts left", env, pl, err, len(c.Mounts))
		}
		t.Setenv(env, "")
	}
}

// FuzzSelectMounts: whatever the mount list, selectMounts never panics and
// picks the mounts at the end of the list, each one a kind it makes, with
// what it must lie in made before it, and no cgroup view in a user
// namespace without a cgroup namespace.
func FuzzSelectMounts(f *testing.F) {
	f.Add("proc:/proc tmpfs:/dev devpts:/dev/pts tmpfs:/dev/shm mqueue:/dev/mqueue sysfs:/sys cgroup:/sys/fs/cgroup", false, false, uint8(0))
	f.Add("sysfs:/sys cgroup:/sys/fs/cgroup bind:/sys/fs/cgroup/x", true, true, uint8(1))
	f.Add("tmpfs:/dev/ devpts:/dev//pts tmpfs:/dev/shm tmpfs:/dev sysfs:sys/ cgroup:/sys//fs/cgroup/ bind:/x", false, true, uint8(1))
	f.Fuzz(func(t *testing.T, list string, userns, cgroupns bool, own uint8) {
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
		users := len(c.Mounts) - int(own)%(len(c.Mounts)+1)
		got := selectMounts(c, true, users)
		if len(got) == 0 {
			return
		}
		clean := func(p string) string { return path.Clean("/" + p) }
		// Covering before i: the last mount at d or above it.
		covering := func(i int, d string) *configs.Mount {
			for j := i - 1; j >= 0; j-- {
				o := clean(c.Mounts[j].Destination)
				if o == "/" || strings.HasPrefix(d+"/", o+"/") {
					return c.Mounts[j]
				}
			}
			return nil
		}
		seen := map[string]bool{}
		for k, i := range got {
			if i != users-len(got)+k {
				t.Fatalf("picked %v, not the end of %d user mounts", got, users)
			}
			m := c.Mounts[i]
			d := clean(m.Destination)
			for _, o := range c.Mounts[users:] {
				od := clean(o.Destination)
				if od == "/" || strings.HasPrefix(d+"/", od+"/") || strings.HasPrefix(od+"/", d+"/") {
					t.Fatalf("picked %s, which mxc's own mount %s overlaps", d, od)
				}
			}
			if seen[d] {
				t.Fatalf("picked %s twice", d)
			}
			seen[d] = true
			switch {
			case m.Device == "cgroup" && d == Dest:
				if userns && !cgroupns {
					t.Fatal("picked the cgroup view in a user namespace without a cgroup namespace")
				}
				if cv := covering(i, d); cv == nil || cv.Device != "sysfs" || clean(cv.Destination) != "/sys" {
					t.Fatalf("picked the cgroup view without sysfs at /sys before it: %v", list)
				}
			case m.Device == "sysfs" && d == "/sys":
			default:
				name := strings.TrimPrefix(d, "/dev/")
				if kind, ok := devKinds[name]; !ok || kind != m.Device {
					t.Fatalf("picked %+v", m)
				}
				if cv := covering(i, d); cv == nil || cv.Device != "tmpfs" || clean(cv.Destination) != "/dev" {
					t.Fatalf("picked %s without a tmpfs at /dev before it: %v", d, list)
				}
			}
		}
	})
}
