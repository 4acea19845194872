//go:build linux

package agentexec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/execsrv"
	"mxc.dev/mxc/linux/landlock"
)

// The C last step (package fastexec, laststep.c) runs in mxc-runtime's C
// constructor, before the Go runtime starts: it applies exactly what Exec
// would, from records the host side prepares here: the Landlock ruleset as
// Apply would build it on this kernel, and every seccomp filter as the
// cBPF program Go would load (the agent profile's precompiled program; the
// spec's profiles compiled here with libseccomp and libcontainer's own
// code). Anything it cannot take exactly is left to the Go step (Exec),
// which stays the reference.

// Program is one seccomp filter ready to load: seccomp(2)'s flags and the
// cBPF instructions (struct sock_filter, 8 bytes each, machine order).
type Program struct {
	Flags uint32 `json:"flags,omitempty"`
	Insns []byte `json:"insns"`
}

// errNoCStep marks a configuration the C step cannot apply exactly; the Go
// step then runs it.
var errNoCStep = errors.New("the C last step cannot apply this configuration")

// StepMode is MXC_AGENT_EXEC, read by the runtime that prepares the step:
// "go" always hands the step to the Go implementation; "require" makes a
// configuration the C step cannot take (or a C step that cannot run it) an
// error, for tests and benchmarks; anything else is the default (C when it
// can, Go otherwise).
func StepMode() string {
	switch m := os.Getenv("MXC_AGENT_EXEC"); m {
	case "go", "require":
		return m
	}
	return ""
}

// Precompile compiles the spec's seccomp profiles to the programs the C
// step loads (cfg.SpecBPF), once, when the container is created: every
// exec then reuses them. A profile that cannot be compiled here leaves
// SpecBPF empty, and the Go step installs the profiles itself.
func Precompile(cfg *Config) {
	cfg.SpecBPF = nil
	var progs []Program
	for _, p := range cfg.Seccomp {
		if p == nil {
			continue
		}
		prog, err := compileProfile(p)
		if err != nil {
			return
		}
		progs = append(progs, prog)
	}
	cfg.SpecBPF = progs
}

// AppendStep adds the C step's records for cfg to w (RecCPlan, RecLandlock,
// RecLLRule, RecSeccomp, in that order), or returns an error wrapping
// errNoCStep and adds nothing when the C step cannot apply cfg exactly.
func AppendStep(w *Records, cfg *Config, require bool) error {
	st := &Records{buf: make([]byte, headerSize, 1024)}
	var flags uint32
	if require {
		flags |= CPlanRequire
	}
	st.Add(RecCPlan, U32(flags), U32(0))
	if cfg.Landlock != nil && !cfg.Landlock.Empty() {
		abi := landlock.Effective()
		if abi < 1 {
			return fmt.Errorf("%w: no Landlock on this kernel", errNoCStep)
		}
		plan, err := execsrv.PlanFor(cfg.Landlock)
		if err != nil {
			return fmt.Errorf("%w: %v", errNoCStep, err)
		}
		var apply uint32
		var attrSize int
		var handled, scoped, rflags uint64
		var rules []landlock.PathRule
		if plan != nil {
			apply, attrSize, handled, scoped, rflags, rules = 1, plan.AttrSize, plan.HandledFS, plan.Scoped, plan.Flags, plan.Rules
		} else {
			attrSize = 8
		}
		if cfg.MinLandlockABI < 0 {
			return fmt.Errorf("%w: minimum Landlock ABI %d", errNoCStep, cfg.MinLandlockABI)
		}
		st.Add(RecLandlock, U32(uint32(cfg.MinLandlockABI)), U32(uint32(abi)), U32(uint32(attrSize)), U32(apply),
			U64(handled), U64(scoped), U64(rflags))
		for _, r := range rules {
			if r.Path == "" || strings.IndexByte(r.Path, 0) >= 0 {
				return fmt.Errorf("%w: Landlock rule path %q", errNoCStep, r.Path)
			}
			st.Add(RecLLRule, U64(r.Access), []byte(r.Path))
		}
	}
	var progs []Program
	if cfg.AgentSeccomp != nil {
		p, err := agentProgram(*cfg.AgentSeccomp)
		if err != nil {
			return fmt.Errorf("%w: agent seccomp profile: %v", errNoCStep, err)
		}
		progs = append(progs, p)
	}
	n := 0
	for _, p := range cfg.Seccomp {
		if p != nil {
			n++
		}
	}
	if n > 0 {
		spec := cfg.SpecBPF
		if len(spec) != n {
			c := *cfg
			Precompile(&c)
			if spec = c.SpecBPF; len(spec) != n {
				return fmt.Errorf("%w: the spec's seccomp profile could not be compiled here", errNoCStep)
			}
		}
		progs = append(progs, spec...)
	}
	for _, p := range progs {
		if len(p.Insns) == 0 || len(p.Insns)%8 != 0 || len(p.Insns)/8 > maxBPFInsns {
			return fmt.Errorf("%w: seccomp program of %d bytes", errNoCStep, len(p.Insns))
		}
		st.Add(RecSeccomp, U32(p.Flags), U32(0), p.Insns)
	}
	w.Append(st)
	return nil
}

// maxBPFInsns is BPF_MAXINSNS: the kernel loads no longer program.
const maxBPFInsns = 4096

// EncodeConfig renders cfg for the config memfd: its JSON for the Go step
// and, unless StepMode says otherwise, the C step's records.
func EncodeConfig(cfg *Config) ([]byte, error) {
	goCfg := *cfg
	goCfg.SpecBPF = nil // the Go step compiles the profiles itself
	js, err := json.Marshal(&goCfg)
	if err != nil {
		return nil, fmt.Errorf("encode agent-exec config: %w", err)
	}
	w := NewRecords(ConfigMagic)
	w.Add(RecJSON, js)
	switch mode := StepMode(); mode {
	case "go":
	default:
		if err := AppendStep(w, cfg, mode == "require"); err != nil && mode == "require" {
			return nil, fmt.Errorf("MXC_AGENT_EXEC=require: %w", err)
		}
	}
	return w.Bytes(), nil
}

// decodeConfig reads the config memfd's content: a record file (its JSON
// record), or bare JSON.
func decodeConfig(data []byte) (*Config, error) {
	var cfg Config
	js := data
	if len(data) >= 4 && data[0] != '{' {
		recs, err := ParseRecords(data, ConfigMagic)
		if err != nil {
			return nil, err
		}
		js = nil
		for _, r := range recs {
			if r.Type == RecJSON {
				js = r.Payload
				break
			}
		}
		if js == nil {
			return nil, errors.New("no JSON record")
		}
	}
	if err := json.Unmarshal(js, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// cStepRequired reports whether data's plan says the C step must run it.
func cStepRequired(data []byte) bool {
	recs, err := ParseRecords(data, ConfigMagic)
	if err != nil {
		return false
	}
	for _, r := range recs {
		if r.Type == RecCPlan && len(r.Payload) == 8 {
			return binary.NativeEndian.Uint32(r.Payload)&CPlanRequire != 0
		}
	}
	return false
}

// sockFilterBytes renders a cBPF program as RecSeccomp carries it.
func sockFilterBytes(prog []unix.SockFilter) []byte {
	out := make([]byte, 0, 8*len(prog))
	for _, f := range prog {
		out = append(out, U16(f.Code)...)
		out = append(out, f.Jt, f.Jf)
		out = append(out, U32(f.K)...)
	}
	return out
}
