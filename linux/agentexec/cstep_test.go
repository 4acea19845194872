//go:build linux

package agentexec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"

	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/seccomp"
)

func recordTypes(t *testing.T, data []byte) []uint32 {
	t.Helper()
	recs, err := ParseRecords(data, ConfigMagic)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, r := range recs {
		out = append(out, r.Type)
	}
	return out
}

// TestEncodeConfig: the config memfd holds the Go step's JSON and, unless
// MXC_AGENT_EXEC=go, the C step's records, in order.
func TestEncodeConfig(t *testing.T) {
	cfg := &Config{
		Landlock:       &landlock.Ruleset{HandleFS: true, Paths: []landlock.PathRule{{Path: "/workspace", Access: landlock.ReadWrite}}},
		MinLandlockABI: 1,
	}
	t.Setenv("MXC_AGENT_EXEC", "go")
	goOnly, err := EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := recordTypes(t, goOnly); len(got) != 1 || got[0] != RecJSON {
		t.Errorf("MXC_AGENT_EXEC=go: records %v, want the JSON only", got)
	}
	back, err := decodeConfig(goOnly)
	if err != nil || back.Landlock == nil || back.Landlock.Paths[0].Path != "/workspace" {
		t.Errorf("decode: %+v %v", back, err)
	}
	if cStepRequired(goOnly) {
		t.Error("a Go-only config requires the C step")
	}
	if landlock.ABI() < 1 {
		t.Skip("no Landlock: no C step")
	}
	t.Setenv("MXC_AGENT_EXEC", "require")
	both, err := EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := recordTypes(t, both)
	want := []uint32{RecJSON, RecCPlan, RecLandlock, RecLLRule}
	if len(got) != len(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("records %v, want %v", got, want)
		}
	}
	if !cStepRequired(both) {
		t.Error("MXC_AGENT_EXEC=require is not in the plan")
	}
	// Bare JSON (a config from before the record files) still decodes.
	js, _ := json.Marshal(cfg)
	if back, err := decodeConfig(js); err != nil || back.MinLandlockABI != 1 {
		t.Errorf("bare JSON: %+v %v", back, err)
	}
}

// TestAppendStepRefuses: what the C step cannot apply exactly is left to
// the Go step, and nothing is written for it.
func TestAppendStepRefuses(t *testing.T) {
	if landlock.ABI() < 1 {
		t.Skip("no Landlock")
	}
	for name, cfg := range map[string]*Config{
		"NUL in a rule path": {Landlock: &landlock.Ruleset{HandleFS: true, Paths: []landlock.PathRule{{Path: "/a\x00b", Access: landlock.ReadOnly}}}},
		"empty rule path":    {Landlock: &landlock.Ruleset{HandleFS: true, Paths: []landlock.PathRule{{Path: "", Access: landlock.ReadOnly}}}},
		"negative ABI":       {Landlock: &landlock.Ruleset{HandleFS: true}, MinLandlockABI: -1},
	} {
		w := NewRecords(ConfigMagic)
		before := len(w.buf)
		if err := AppendStep(w, cfg, false); !errors.Is(err, errNoCStep) {
			t.Errorf("%s: %v, want errNoCStep", name, err)
		}
		if len(w.buf) != before {
			t.Errorf("%s: records written", name)
		}
	}
	t.Setenv("MXC_AGENT_EXEC", "require")
	if _, err := EncodeConfig(&Config{Landlock: &landlock.Ruleset{HandleFS: true, Paths: []landlock.PathRule{{Path: "/a\x00"}}}}); err == nil || !strings.Contains(err.Error(), "require") {
		t.Errorf("require with a config the C step cannot take: %v", err)
	}
}

// TestPrecompile: the spec's profiles become programs (with libseccomp),
// one per non-nil profile.
func TestPrecompile(t *testing.T) {
	eperm := uint(1)
	p := &configs.Seccomp{DefaultAction: configs.Allow, Syscalls: []*configs.Syscall{{Name: "mkdir", Action: configs.Errno, ErrnoRet: &eperm}}}
	cfg := &Config{AgentSeccomp: &seccomp.Options{}, Seccomp: []*configs.Seccomp{nil, p}}
	Precompile(cfg)
	if !seccomp.Enabled {
		if len(cfg.SpecBPF) != 0 {
			t.Error("programs without libseccomp")
		}
		return
	}
	if len(cfg.SpecBPF) != 1 || len(cfg.SpecBPF[0].Insns) == 0 || len(cfg.SpecBPF[0].Insns)%8 != 0 {
		t.Fatalf("SpecBPF %+v", cfg.SpecBPF)
	}
	ap, err := agentProgram(seccomp.Options{})
	if err != nil || len(ap.Insns) == 0 {
		t.Errorf("agent program: %v", err)
	}
	// A notify action is the Go step's to refuse.
	notify := &configs.Seccomp{DefaultAction: configs.Allow, Syscalls: []*configs.Syscall{{Name: "mkdir", Action: configs.Notify}}}
	c2 := &Config{Seccomp: []*configs.Seccomp{notify}}
	Precompile(c2)
	if len(c2.SpecBPF) != 0 {
		t.Error("a notify profile was compiled")
	}
}
