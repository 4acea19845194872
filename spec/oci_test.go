package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func dockerCaps() []string {
	return []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_SYS_ADMIN"}
}

func baseSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: []string{"sh"},
			Env:  []string{"PATH=/usr/bin:/bin", "DISPLAY=:0", "HOME=/root", "SSH_AUTH_SOCK=/tmp/ssh-x/agent.1", "XDG_RUNTIME_DIR=/run/user/1000", "WAYLAND_DISPLAY=wayland-0", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus", "DISPLAYX=keep"},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: dockerCaps(), Effective: dockerCaps(), Permitted: dockerCaps(), Ambient: []string{"CAP_NET_RAW"},
			},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/workspace", Type: "bind", Source: "/srv/ws", Options: []string{"rbind", "rw"}},
			{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/var/run/netns/x"}},
			MaskedPaths: []string{"/proc/kcore"},
		},
	}
}

func effOf(t *testing.T, doc string, node *NodeConfig) *Effective {
	t.Helper()
	p, _, err := ParsePolicy([]byte(minimal + doc))
	if err != nil {
		t.Fatal(err)
	}
	eff, err := NewEffective(p, node, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return eff
}

func TestApplyToOCI(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		node   *NodeConfig
		edit   func(*specs.Spec) // change the input spec
		want   func(*specs.Spec) // the expected change to the input spec
		err    string
	}{
		{
			name:   "defaults: caps bounded, nnp, ui env scrubbed",
			policy: "",
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				s.Process.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root", "DISPLAYX=keep"}
				keep := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: keep, Effective: keep, Permitted: keep, Ambient: nil}
			},
		},
		{
			name:   "policy capabilities are an upper bound, never an addition",
			policy: "process: {capabilities: [CAP_CHOWN, CAP_SYS_TIME]}\nui: {disable: false}",
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				c := []string{"CAP_CHOWN"}
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Ambient: nil}
			},
		},
		{
			name:   "ceiling allows NET_RAW",
			policy: "process: {capabilities: [CAP_NET_RAW]}\nui: {disable: false}",
			node:   &NodeConfig{Ceiling: &Ceiling{Capabilities: []string{"CAP_NET_RAW"}, AllowUI: true}},
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				c := []string{"CAP_NET_RAW"}
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Ambient: c}
			},
		},
		{
			name:   "no capabilities",
			policy: "process: {noCapabilities: true}\nui: {disable: false}",
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				s.Process.Capabilities = &specs.LinuxCapabilities{}
			},
		},
		{
			name: "filesystem rules",
			policy: `ui: {disable: false}
process: {capabilities: [CAP_SYS_ADMIN]}
filesystem:
  readonlyPaths: [/usr, /workspace/src, /etc, /data]
  readwritePaths: [/usr/local, /workspace, /data/out, /etc/app/cache]
  deniedPaths: [/workspace/.env, /usr/local/secret]`,
			node: &NodeConfig{Ceiling: &Ceiling{Capabilities: []string{"CAP_SYS_ADMIN"}, AllowUI: true}},
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc", Type: "bind", Source: "/srv/etc", Options: []string{"rbind", "rw"}})
			},
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				c := []string{"CAP_SYS_ADMIN"}
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Ambient: nil}
				s.Mounts[2].Options = []string{"rbind", "ro"} // /data was ro already
				s.Mounts[3].Options = []string{"rbind", "ro"} // /etc made ro
				s.Linux.ReadonlyPaths = []string{"/usr", "/workspace/src"}
				s.Linux.MaskedPaths = []string{"/proc/kcore", "/workspace/.env", "/usr/local/secret"}
				s.Mounts = append(s.Mounts,
					// /usr/local: inside read-only /usr, backed by the rootfs
					specs.Mount{Destination: "/usr/local", Type: "bind", Source: "rootfs/usr/local", Options: []string{"rbind", "rw"}},
					// /etc/app/cache: inside the /etc bind mount the policy made ro
					specs.Mount{Destination: "/etc/app/cache", Type: "bind", Source: "/srv/etc/app/cache", Options: []string{"rbind", "rw"}},
				)
				// /data/out: /data is read-only in the spec itself: stays read-only.
				// /workspace: its own mount, nothing to do.
			},
		},
		{
			name:   "read-only rootfs is never made writable",
			policy: "ui: {disable: false}\nfilesystem: {readonlyPaths: [/usr], readwritePaths: [/usr/local]}",
			edit:   func(s *specs.Spec) { s.Root.Readonly = true; s.Process.Capabilities = nil },
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				s.Linux.ReadonlyPaths = []string{"/usr"}
			},
		},
		{
			name:   "read-only root with a writable tree",
			policy: "ui: {disable: false}\nfilesystem: {readonlyPaths: [/], readwritePaths: [/out, /workspace]}",
			edit:   func(s *specs.Spec) { s.Process.Capabilities = nil },
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				s.Root.Readonly = true
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: "rootfs/out", Options: []string{"rbind", "rw"}})
			},
		},
		{
			name:   "audit mode leaves files alone",
			policy: "mode: audit\nui: {disable: false}\nfilesystem: {readonlyPaths: [/usr], deniedPaths: [/etc]}",
			edit:   func(s *specs.Spec) { s.Process.Capabilities = nil },
			want:   func(s *specs.Spec) { s.Process.NoNewPrivileges = true },
		},
		{
			name:   "resources set, stricter spec limits kept",
			policy: "ui: {disable: false}\nresources: {cpus: 1.5, memory: 1Gi, pids: 100}",
			edit: func(s *specs.Spec) {
				s.Process.Capabilities = nil
				s.Linux.Resources = &specs.LinuxResources{
					Memory: &specs.LinuxMemory{Limit: i64(512 << 20), Swap: i64(-1)},
					CPU:    &specs.LinuxCPU{Quota: i64(300000), Period: u64(100000), Shares: u64(512)},
					Pids:   &specs.LinuxPids{Limit: i64(50)},
				}
			},
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(512 << 20), Swap: i64(512 << 20)}
				s.Linux.Resources.CPU.Quota = i64(150000)
			},
		},
		{
			name:   "resources on an unlimited spec",
			policy: "ui: {disable: false}\nresources: {cpus: 0.25, memory: 64Mi, pids: 10}",
			edit:   func(s *specs.Spec) { s.Process.Capabilities = nil },
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				s.Linux.Resources = &specs.LinuxResources{
					Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(64 << 20)},
					CPU:    &specs.LinuxCPU{Quota: i64(25000), Period: u64(100000)},
					Pids:   &specs.LinuxPids{Limit: i64(10)},
				}
			},
		},
		{
			name:   "session tier adds namespaces",
			policy: "isolation: session\nui: {disable: false}",
			edit:   func(s *specs.Spec) { s.Process.Capabilities = nil },
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace}, specs.LinuxNamespace{Type: specs.UTSNamespace}, specs.LinuxNamespace{Type: specs.CgroupNamespace})
			},
		},
		{
			name:   "ui disabled refuses a display mount",
			policy: "",
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp/.X11-unix", Type: "bind", Source: "/tmp/.X11-unix"})
			},
			err: "ui.disable is set but the spec passes the host display in mounts[3] (/tmp/.X11-unix on /tmp/.X11-unix)",
		},
		{
			name:   "ui disabled refuses ssh agent and bus",
			policy: "",
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts,
					specs.Mount{Destination: "/ssh-agent", Type: "bind", Source: "/tmp/ssh-abc/agent.42"},
					specs.Mount{Destination: "/run/user/0/bus", Type: "bind", Source: "/run/user/1000/bus"})
			},
			err: "host session bus in mounts[4]",
		},
		{
			name:   "shared display needs clipboard all and injection",
			policy: "ui: {disable: false, clipboard: read}",
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/run/user/1000/wayland-0", Type: "bind", Source: "/run/user/1000/wayland-0"})
			},
			err: "must say ui.clipboard: all and ui.injection: true",
		},
		{
			name:   "input devices need injection",
			policy: "ui: {disable: false, clipboard: all}",
			edit: func(s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/uinput", Type: "c", Major: 10, Minor: 223}}
			},
			err: "linux.devices[0] /dev/uinput is an input device",
		},
		{
			name:   "Windows paths on a Linux container",
			policy: `filesystem: {readonlyPaths: ['C:\Windows']}`,
			err:    `filesystem: C:\Windows is not a Linux path and the container is Linux`,
		},
		{
			name:   "read-write carve-out in a tmpfs",
			policy: "ui: {disable: false}\nfilesystem: {readonlyPaths: [/run], readwritePaths: [/run/app]}",
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs"})
			},
			err: "filesystem.readwritePaths: /run/app lies in the tmpfs mount at /run",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseSpec()
			if tt.edit != nil {
				tt.edit(in)
			}
			before, _ := json.Marshal(in)
			eff := effOf(t, tt.policy, tt.node)
			err := ApplyToOCI(in, eff)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				after, _ := json.Marshal(in)
				if string(after) != string(before) {
					t.Errorf("spec changed although ApplyToOCI failed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := baseSpec()
			if tt.edit != nil {
				tt.edit(want)
			}
			tt.want(want)
			if !reflect.DeepEqual(in, want) {
				g, _ := json.MarshalIndent(in, "", " ")
				w, _ := json.MarshalIndent(want, "", " ")
				t.Errorf("got:\n%s\nwant:\n%s", g, w)
			}
			// Applying twice changes nothing more.
			if err := ApplyToOCI(in, eff); err != nil || !reflect.DeepEqual(in, want) {
				t.Errorf("second ApplyToOCI: %v", err)
			}
			if false {
				g, _ := json.MarshalIndent(in, "", " ")
				w, _ := json.MarshalIndent(want, "", " ")
				t.Errorf("got:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

func TestApplyToOCIWindows(t *testing.T) {
	s := &specs.Spec{
		Process: &specs.Process{Env: []string{"DISPLAY=:0", "A=b"}},
		Windows: &specs.Windows{Resources: &specs.WindowsResources{Memory: &specs.WindowsMemoryResources{Limit: u64(4 << 30)}}},
	}
	eff := effOf(t, `resources: {memory: 1Gi, cpus: 1}
filesystem: {readonlyPaths: ['C:\Windows']}`, nil)
	if err := ApplyToOCI(s, eff); err != nil {
		t.Fatal(err)
	}
	if *s.Windows.Resources.Memory.Limit != 1<<30 || !reflect.DeepEqual(s.Process.Env, []string{"A=b"}) || s.Linux != nil || s.Process.NoNewPrivileges {
		t.Errorf("%+v %+v", s.Windows.Resources.Memory, s.Process)
	}
}

func TestScrubUIEnv(t *testing.T) {
	got := ScrubUIEnv([]string{"DISPLAY=:1", "XAUTHORITY=/x", "WAYLAND_SOCKET=3", "KEEP=1", "SSH_AUTH_SOCK=", "DISPLAY"})
	if !reflect.DeepEqual(got, []string{"KEEP=1"}) {
		t.Errorf("%v", got)
	}
}
