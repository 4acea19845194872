//go:build linux

package enforce

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/spec"
)

func effective(t *testing.T, p *spec.AgentPolicy) *spec.Effective {
	t.Helper()
	p.APIVersion, p.Kind = spec.APIVersion, spec.Kind
	nc := &spec.NodeConfig{Ceiling: &spec.Ceiling{AllowAudit: true, AllowUI: true}}
	eff, err := spec.NewEffective(p, nc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return eff
}

func TestLandlockRulesAndMissing(t *testing.T) {
	fsPolicy := &spec.AgentPolicy{Filesystem: &spec.Filesystem{
		ReadonlyPaths: []string{"/usr"}, ReadwritePaths: []string{"/workspace"}, DeniedPaths: []string{"/workspace/.env"},
	}}
	eff := effective(t, fsPolicy)
	r := landlockRules(eff, hostFacts{ABI: 7, Seccomp: true})
	if !r.HandleFS {
		t.Fatal("file rules not handled")
	}
	paths := map[string]uint64{}
	for _, pr := range r.Paths {
		paths[pr.Path] = pr.Access
	}
	if paths["/usr"] != landlock.ReadOnly || paths["/workspace"] != landlock.ReadWrite {
		t.Errorf("rules %v", paths)
	}
	if _, ok := paths["/workspace/.env"]; ok {
		t.Error("a denied path got a Landlock rule")
	}
	if paths["/dev/null"] != landlock.DeviceRW || paths["/proc"] != landlock.ReadOnly {
		t.Errorf("implicit rules missing: %v", paths)
	}
	if r.Scoped != 0 {
		t.Errorf("a container with its own namespaces got scopes %#x", r.Scoped)
	}
	host := landlockRules(eff, hostFacts{ABI: 7, HostNet: true, HostPID: true})
	if host.Scoped != landlock.ScopeAbstractUnixSocket|landlock.ScopeSignal {
		t.Errorf("host namespaces: scopes %#x", host.Scoped)
	}
	audit := *fsPolicy
	audit.Mode = spec.ModeAudit
	if r := landlockRules(effective(t, &audit), hostFacts{ABI: 7, HostNet: true}); r.HandleFS || r.Scoped != 0 {
		t.Errorf("audit mode must not enforce: %+v", r)
	}

	for _, c := range []struct {
		name  string
		facts hostFacts
		want  []string
	}{
		{"all there", hostFacts{ABI: 7, Seccomp: true, HostNet: true, HostPID: true}, nil},
		{"no landlock", hostFacts{ABI: 0, Seccomp: true}, []string{"Landlock is not available"}},
		{"abi 2", hostFacts{ABI: 2, Seccomp: true}, []string{"truncating", "ABI 3"}},
		{"abi 5 host ns", hostFacts{ABI: 5, Seccomp: true, HostNet: true, HostPID: true}, []string{"abstract unix sockets", "signalling host processes"}},
		{"abi 5 own ns", hostFacts{ABI: 5, Seccomp: true}, nil},
		{"no seccomp", hostFacts{ABI: 7}, []string{"seccomp"}},
	} {
		got := missing(eff, c.facts, landlockRules(eff, c.facts))
		joined := strings.Join(got, "\n")
		if len(c.want) == 0 && len(got) != 0 {
			t.Errorf("%s: unexpected gaps %q", c.name, got)
		}
		for _, w := range c.want {
			if !strings.Contains(joined, w) {
				t.Errorf("%s: gaps %q lack %q", c.name, got, w)
			}
		}
	}
}

func TestUIDevice(t *testing.T) {
	for _, c := range []struct {
		d    specs.LinuxDevice
		want bool
	}{
		{specs.LinuxDevice{Path: "/dev/input/event3", Type: "c", Major: 13, Minor: 67}, true},
		{specs.LinuxDevice{Path: "/dev/uinput", Type: "c", Major: 10, Minor: 223}, true},
		{specs.LinuxDevice{Path: "/dev/tty1", Type: "c", Major: 4, Minor: 1}, true},
		{specs.LinuxDevice{Path: "/dev/ttyS0", Type: "c", Major: 4, Minor: 64}, true},
		{specs.LinuxDevice{Path: "/dev/my-console", Type: "c", Major: 4, Minor: 2}, true},
		{specs.LinuxDevice{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0}, false},
		{specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}, false},
		{specs.LinuxDevice{Path: "/dev/pts/0", Type: "c", Major: 136, Minor: 0}, false},
	} {
		if got := uiDevice(c.d) != ""; got != c.want {
			t.Errorf("%s: %v, want %v", c.d.Path, got, c.want)
		}
	}
}

func TestAllowedCaps(t *testing.T) {
	if c := AllowedCaps(&spec.AgentPolicy{}); !c["CAP_CHOWN"] || c["CAP_SYS_ADMIN"] || c["CAP_NET_RAW"] {
		t.Errorf("default set %v", c)
	}
	if c := AllowedCaps(&spec.AgentPolicy{Process: &spec.Process{NoCapabilities: true}}); len(c) != 0 {
		t.Errorf("noCapabilities: %v", c)
	}
	if c := AllowedCaps(&spec.AgentPolicy{Process: &spec.Process{Capabilities: []string{"cap_kill"}}}); len(c) != 1 || !c["CAP_KILL"] {
		t.Errorf("listed: %v", c)
	}
}

func TestBoundExecCaps(t *testing.T) {
	st := &state{AllowedCaps: []string{"CAP_CHOWN", "CAP_KILL"}, BundleCaps: []string{"CAP_KILL", "CAP_NET_RAW"}}
	p := &libcontainer.Process{Capabilities: &configs.Capabilities{
		Bounding: []string{"CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"}, Effective: []string{"CAP_NET_RAW"},
	}}
	if err := boundExecCaps(p, st); err != nil {
		t.Fatalf("bundle capabilities must be bounded silently: %v", err)
	}
	if strings.Join(p.Capabilities.Bounding, ",") != "CAP_KILL,CAP_CHOWN" || len(p.Capabilities.Effective) != 0 {
		t.Errorf("bounded to %+v", p.Capabilities)
	}
	p = &libcontainer.Process{Capabilities: &configs.Capabilities{Bounding: []string{"CAP_SYS_ADMIN", "CAP_KILL"}}}
	if err := boundExecCaps(p, st); err == nil || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") {
		t.Errorf("exec --cap CAP_SYS_ADMIN: %v", err)
	}
}

func TestSessionSlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "slots")
	nc := &spec.NodeConfig{Session: &spec.SessionConfig{IDBase: 200000, IDSize: 1000, Slots: 2}}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ra, err := allocSlot(dir, nc, a)
	if err != nil || ra.Base != 200000 || ra.Size != 1000 || ra.String() != "200000-200999" {
		t.Fatalf("first slot %+v %v", ra, err)
	}
	if again, _ := allocSlot(dir, nc, a); again != ra {
		t.Errorf("the same owner got another slot: %+v", again)
	}
	rb, err := allocSlot(dir, nc, b)
	if err != nil || rb.Base != 201000 {
		t.Fatalf("second slot %+v %v", rb, err)
	}
	if _, err := allocSlot(dir, nc, filepath.Join(t.TempDir(), "c")); err == nil || !strings.Contains(err.Error(), "session.slots") {
		// c's state dir does not exist, but its creator (us) is alive.
		t.Errorf("third slot on a 2-slot node: %v", err)
	}
	// An owner whose state dir is gone and whose creator is dead is stale.
	stale, _ := json.Marshal(slotOwner{StateDir: "/nonexistent/mxc-state", Pid: 1 << 30})
	if err := os.WriteFile(filepath.Join(dir, "1"), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	if rc, err := allocSlot(dir, nc, filepath.Join(t.TempDir(), "d")); err != nil || rc.Slot != 1 {
		t.Errorf("stale slot not reclaimed: %+v %v", rc, err)
	}
	if err := freeSlot(dir, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "0")); !os.IsNotExist(err) {
		t.Errorf("slot 0 not freed: %v", err)
	}
	for _, s := range []string{"1"} {
		os.Remove(filepath.Join(dir, s))
	}
	if err := freeSlot(dir, "/nonexistent"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("empty slot dir left: %v", err)
	}
}

func TestUserNamespaceAndIDMapBinds(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{}, Mounts: []specs.Mount{
		{Destination: "/workspace", Type: "bind", Source: "/srv/ws", Options: []string{"rbind", "rw"}},
		{Destination: "/dev/null", Type: "bind", Source: "/dev/null", Options: []string{"bind"}},
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/data", Type: "none", Source: "/srv/data", Options: []string{"bind", "idmap"}},
	}}
	if err := userNamespace(s, idRange{Base: 1 << 30, Size: 65536}); err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != 1<<30 || s.Linux.GIDMappings[0].Size != 65536 {
		t.Errorf("mappings %+v", s.Linux.UIDMappings)
	}
	idmapBinds(s)
	if !hasOpt(s.Mounts[0].Options, "idmap") || hasOpt(s.Mounts[1].Options, "idmap") || hasOpt(s.Mounts[2].Options, "idmap") {
		t.Errorf("idmap options: %+v", s.Mounts)
	}
	if n := strings.Count(strings.Join(s.Mounts[3].Options, ","), "idmap"); n != 1 {
		t.Errorf("idmap added twice: %v", s.Mounts[3].Options)
	}
	joined := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/proc/1/ns/user"}}}}
	if err := userNamespace(joined, idRange{Base: 1, Size: 1}); err == nil {
		t.Error("joining an existing user namespace must be refused")
	}
}
