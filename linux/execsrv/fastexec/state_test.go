//go:build linux && cgo

package fastexec

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"

	"mxc.dev/mxc/linux/container"
)

// stateInput is what a state.json depends on, for the table and the fuzz
// target: the document is made by encoding/json from libcontainer.State, as
// libcontainer's saveState writes it.
type stateInput struct {
	ID               string
	Pid              int
	Start            uint64
	Freezer, Unified string
	NoCgroups        bool
	// Hostile content inside config: annotations and net devices (map
	// keys with object values) named like State's own keys.
	AnnKey, AnnVal string
	Devices        []string
	PidPath        string // the pid namespace joined ("": its own)
	NoPidNS        bool
	Poststop       bool
	IntelRdt       string
}

func (in stateInput) document(t testing.TB) []byte {
	s := libcontainer.State{
		BaseState: libcontainer.BaseState{
			ID:                   in.ID,
			InitProcessPid:       in.Pid,
			InitProcessStartTime: in.Start,
			Created:              time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
			Config: configs.Config{
				Rootfs:  "/run/mxc/x/rootfs",
				Labels:  []string{"bundle=/b", in.AnnKey + "=" + in.AnnVal},
				Cgroups: &cgroups.Cgroup{Path: "/x", Resources: &cgroups.Resources{}},
			},
		},
		NamespacePaths: map[configs.NamespaceType]string{configs.NEWPID: "/proc/1/ns/pid"},
		IntelRdtPath:   in.IntelRdt,
	}
	s.Config.Namespaces = configs.Namespaces{{Type: configs.NEWNS}}
	if !in.NoPidNS {
		s.Config.Namespaces = append(s.Config.Namespaces, configs.Namespace{Type: configs.NEWPID, Path: in.PidPath})
	}
	s.Config.Namespaces = append(s.Config.Namespaces, configs.Namespace{Type: configs.NEWNET, Path: "/var/run/netns/x"})
	if in.Poststop {
		s.Config.Hooks = configs.Hooks{configs.Poststop: configs.HookList{configs.NewCommandHook(&configs.Command{Path: "/bin/true"})}}
	}
	if in.AnnKey != "" {
		s.Config.Sysctl = map[string]string{in.AnnKey: in.AnnVal}
	}
	if len(in.Devices) > 0 {
		s.Config.NetDevices = map[string]*configs.LinuxNetDevice{}
		for _, d := range in.Devices {
			s.Config.NetDevices[d] = &configs.LinuxNetDevice{Name: d}
		}
	}
	if !in.NoCgroups {
		s.CgroupPaths = map[string]string{"cpu": "/sys/fs/cgroup/cpu/x", "name=systemd": "/sys/fs/cgroup/systemd/x"}
		if in.Freezer != "" {
			s.CgroupPaths["freezer"] = in.Freezer
		}
		if in.Unified != "" {
			s.CgroupPaths[""] = in.Unified
		}
	}
	b, err := json.Marshal(&s) // libcontainer/utils.WriteJSON
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkState: whatever the C parser accepts agrees with what the Go CLI
// reads from the same document (libcontainer's State; the freeze file by
// linux/container.FreezeFile); it returns whether C accepted.
func checkState(t testing.TB, doc []byte, id string) bool {
	t.Helper()
	got, ok := parseState(doc, id)
	if !ok {
		return false
	}
	var s libcontainer.State
	if err := json.Unmarshal(doc, &s); err != nil {
		t.Fatalf("C accepted a document Go cannot read (%v): %s", err, doc)
	}
	want := parsedState{
		Pid: s.InitProcessPid, Start: s.InitProcessStartTime, Freeze: container.FreezeFile(s.CgroupPaths),
		Cgroups: slices.Sorted(maps.Values(s.CgroupPaths)), PidPrivate: s.Config.Namespaces.IsPrivate(configs.NEWPID),
		Poststop: len(s.Config.Hooks[configs.Poststop]) > 0, IntelRdt: s.IntelRdtPath != "",
	}
	slices.Sort(got.Cgroups)
	if s.ID != id || !reflect.DeepEqual(got, want) || want.Freeze == "" {
		t.Fatalf("C read %+v for %q, Go %+v (id %q) from %s", got, id, want, s.ID, doc)
	}
	return true
}

func TestStateMatchesLibcontainer(t *testing.T) {
	base := stateInput{ID: "c1", Pid: 4242, Start: 2622974, Freezer: "/sys/fs/cgroup/freezer/c1", Unified: "/sys/fs/cgroup/unified/c1"}
	tests := []struct {
		name   string
		edit   func(*stateInput)
		accept bool
	}{
		{"hybrid: v1 freezer", func(*stateInput) {}, true},
		{"cgroup v2 only", func(in *stateInput) { in.Freezer = "" }, true},
		{"v1 without the unified dir", func(in *stateInput) { in.Unified = "" }, true},
		{"path cleaned as filepath.Join", func(in *stateInput) { in.Freezer = "/sys/fs/cgroup//freezer/a/../c1/" }, true},
		{"non-ASCII path", func(in *stateInput) { in.Freezer = "/sys/fs/cgroup/freezer/é" }, true},
		{"id with characters JSON escapes", func(in *stateInput) { in.ID = "a<b" }, false},
		{"path JSON escapes", func(in *stateInput) { in.Freezer = "/sys/fs/cgroup/freezer/a&b" }, false},
		{"no freezer at all", func(in *stateInput) { in.Freezer, in.Unified = "", "" }, false},
		{"no cgroups", func(in *stateInput) { in.NoCgroups = true }, false},
		{"no cgroups, a net device named cgroup_paths", func(in *stateInput) {
			in.NoCgroups = true
			in.Devices = []string{"cgroup_paths", "namespace_paths"}
		}, false},
		{"net devices named like State's keys", func(in *stateInput) { in.Devices = []string{"cgroup_paths", "namespace_paths"} }, true},
		{"sysctl key cgroup_paths", func(in *stateInput) {
			in.AnnKey, in.AnnVal = "cgroup_paths", `{"freezer":"/evil"},"namespace_paths":`
		}, true},
		{"pid 0", func(in *stateInput) { in.Pid = 0 }, false},
		{"negative pid", func(in *stateInput) { in.Pid = -1 }, false},
		{"largest start time", func(in *stateInput) { in.Start = ^uint64(0) }, true},
		{"pid namespace joined", func(in *stateInput) { in.PidPath = "/proc/1/ns/pid" }, true},
		{"no pid namespace", func(in *stateInput) { in.NoPidNS = true }, true},
		{"poststop hook", func(in *stateInput) { in.Poststop = true }, true},
		{"intel RDT", func(in *stateInput) { in.IntelRdt = "/sys/fs/resctrl/x" }, true},
		{"sysctl keys named like the hooks and RDT", func(in *stateInput) {
			in.AnnKey, in.AnnVal = "poststop", `[{"path":"/x"}],"intel_rdt_path":"/y"`
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.edit(&in)
			if got := checkState(t, in.document(t), in.ID); got != tt.accept {
				t.Fatalf("accepted %v, want %v: %s", got, tt.accept, in.document(t))
			}
		})
	}
	doc := base.document(t)
	if _, ok := parseState(doc, "c"); ok {
		t.Fatal("accepted the state of c1 for id c")
	}
	if _, ok := parseState(doc[:len(doc)/2], base.ID); ok {
		t.Fatal("accepted a truncated document")
	}
}

// plain: encoding/json writes s without an escape.
func plain(s string) bool {
	b, _ := json.Marshal(s)
	return string(b) == `"`+s+`"`
}

func FuzzState(f *testing.F) {
	f.Add("c1", 4242, uint64(2622974), "/sys/fs/cgroup/freezer/c1", "/sys/fs/cgroup/unified/c1", false, "k", "v", "eth0", "", false, "")
	f.Add("c1", 1, uint64(0), "", "/c1", false, "cgroup_paths", `{"freezer":"/x"}`, "cgroup_paths", "/proc/1/ns/pid", true, "/r")
	f.Add("x", 7, uint64(9), "", "", true, "namespace_paths", "", "namespace_paths", "", false, "")
	f.Add("x", 7, uint64(9), "/f", "", false, "namespaces", `[{"type":"NEWPID"}]`, "namespaces", "", false, "")
	f.Fuzz(func(t *testing.T, id string, pid int, start uint64, freezer, unified string, noCg bool, annKey, annVal, dev, pidPath string, poststop bool, rdt string) {
		in := stateInput{ID: id, Pid: pid, Start: start, Freezer: freezer, Unified: unified, NoCgroups: noCg,
			AnnKey: annKey, AnnVal: annVal, PidPath: pidPath, Poststop: poststop, IntelRdt: rdt}
		if dev != "" {
			in.Devices = []string{dev, "namespace_paths"}
		}
		doc := in.document(t)
		accepted := checkState(t, doc, id)
		// What it must accept: libcontainer's usual documents.
		usual := id != "" && !strings.ContainsAny(id, "/\\") && plain(id) && pid > 0 && pid <= 1<<31-1 && !noCg &&
			(freezer != "" || unified != "") && plain(freezer) && plain(unified) && plain(dev) && plain(annKey) && plain(annVal) && plain(pidPath) && plain(rdt) &&
			len(freezer)+len(unified) < 4000
		if usual && !accepted {
			t.Fatalf("refused a usual document: %s", doc)
		}
	})
}
