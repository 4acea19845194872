//go:build linux

package execsrv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/landlock"
)

// ServerConfig is what the server needs to build each process as the
// normal path would: the bundle's cwd and environment (after the policy's
// UI scrub) and, when the policy scrubs UI variables, their names, to
// scrub the request's --env the same way.
type ServerConfig struct {
	Cwd   string
	Env   []string
	Scrub []string
}

// Encode renders the config as NUL-separated records.
func (c *ServerConfig) Encode() ([]byte, error) {
	var b bytes.Buffer
	rec := func(tag byte, v string) error {
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("exec server config: %q contains a NUL byte", v)
		}
		b.WriteByte(tag)
		b.WriteString(v)
		b.WriteByte(0)
		return nil
	}
	if !strings.HasPrefix(c.Cwd, "/") {
		return nil, fmt.Errorf("exec server config: cwd %q is not absolute", c.Cwd)
	}
	_ = rec('V', "1")
	if err := rec('W', c.Cwd); err != nil {
		return nil, err
	}
	for _, e := range c.Env {
		if err := rec('E', e); err != nil {
			return nil, err
		}
	}
	for _, s := range c.Scrub {
		if err := rec('S', s); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// LandlockPlan is the ruleset agent-exec would build for a process, in the
// form the C server applies in each child: exactly what landlock.Ruleset's
// Apply computes from the running kernel's ABI, with the rules applied at
// exec time (so paths created since the server started are covered, as
// they are on the normal path).
type LandlockPlan struct {
	HandledFS, Scoped uint64
	// AttrSize is the size of struct landlock_ruleset_attr for the ABI.
	AttrSize int
	// Flags are landlock_restrict_self's.
	Flags uint64
	Rules []landlock.PathRule
}

// restrictSelfLogNewExecOn is LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON.
const restrictSelfLogNewExecOn = 1 << 1

// PlanFor returns r's plan on this kernel, nil when r restricts nothing
// here (as Apply then returns without restricting).
func PlanFor(r *landlock.Ruleset) (*LandlockPlan, error) {
	if r.Empty() {
		return nil, nil
	}
	abi := landlock.Effective()
	if abi < 1 {
		return nil, errors.New("landlock: not supported by this kernel")
	}
	p := &LandlockPlan{Scoped: r.Scoped & landlock.Scopes(abi), AttrSize: 24}
	if r.HandleFS {
		p.HandledFS = landlock.FSRights(abi)
	}
	if abi < 6 {
		p.AttrSize = 16 // the scoped field is ABI 6
	}
	if abi < 4 {
		p.AttrSize = 8
	}
	if p.HandledFS == 0 && p.Scoped == 0 {
		return nil, nil
	}
	if r.LogNewExec && landlock.SupportsAuditLog(abi) {
		p.Flags |= restrictSelfLogNewExecOn
	}
	if r.HandleFS {
		p.Rules = append(p.Rules, r.Paths...)
	}
	return p, nil
}

// Encode renders the plan as NUL-separated records.
func (p *LandlockPlan) Encode() ([]byte, error) {
	var b bytes.Buffer
	rec := func(s string) {
		b.WriteString(s)
		b.WriteByte(0)
	}
	rec("V1")
	rec("h" + strconv.FormatUint(p.HandledFS, 10))
	rec("s" + strconv.FormatUint(p.Scoped, 10))
	rec("z" + strconv.Itoa(p.AttrSize))
	rec("f" + strconv.FormatUint(p.Flags, 10))
	for _, r := range p.Rules {
		if strings.IndexByte(r.Path, 0) >= 0 {
			return nil, fmt.Errorf("landlock rule %q contains a NUL byte", r.Path)
		}
		rec("r" + strconv.FormatUint(r.Access, 10) + " " + r.Path)
	}
	return b.Bytes(), nil
}

// Memfd returns a sealed, read-only memfd holding data, positioned at its
// start, to pass to the server as an fd. It is close-on-exec in the
// caller; a child gets it through ExtraFiles (or by clearing the flag).
func Memfd(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	return f, nil
}

// ScrubProbe returns one entry per UI variable, to find out whether a
// policy engine scrubs them from an exec'd process (see StripProbes).
func ScrubProbe(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "=mxc-exec-server-probe"
	}
	return out
}

// StripProbes takes the probe entries back out of env, which had them
// appended before the policy engine prepared the process: all gone means
// the engine scrubs the UI variables, all there (at the end) means it
// does not; anything else is an error.
func StripProbes(env, probes []string) ([]string, bool, error) {
	n := len(env) - len(probes)
	if n >= 0 {
		tail := true
		for i, p := range probes {
			if env[n+i] != p {
				tail = false
				break
			}
		}
		if tail {
			return env[:n], false, nil
		}
	}
	for _, e := range env {
		for _, p := range probes {
			if e == p {
				return nil, false, errors.New("the policy engine scrubbed only part of the UI variables")
			}
		}
	}
	return env, true, nil
}
