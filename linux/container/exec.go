//go:build linux

package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
)

// ExecOpts are exec's flags.
type ExecOpts struct {
	ID            string
	ProcessFile   string // --process
	Args          []string
	Tty           bool
	ConsoleSocket string
	Detach        bool
	PidFile       string
	Cwd           string
	Env           []string
	User          string // uid[:gid]
	AdditionalGID []int64
	Caps          []string
	NoNewPrivs    *bool
	PreserveFDs   int
	IgnorePaused  bool
	SubCgroups    map[string]string
}

// Exec implements `exec`: it returns the process's exit status (foreground)
// or 0 once it started (detached).
func (r *Runtime) Exec(o ExecOpts) (int, error) {
	c, err := r.Load(o.ID)
	if err != nil {
		return -1, err
	}
	st, err := c.Status()
	if err != nil {
		return -1, err
	}
	switch st {
	case libcontainer.Stopped:
		return -1, fmt.Errorf("cannot exec in container %q: it is stopped", o.ID)
	case libcontainer.Paused:
		if !o.IgnorePaused {
			return -1, fmt.Errorf("cannot exec in container %q: it is paused (use --ignore-paused)", o.ID)
		}
	}
	sp, err := r.execProcessSpec(c, o)
	if err != nil {
		return -1, err
	}
	if o.PidFile != "" {
		if o.PidFile, err = filepath.Abs(o.PidFile); err != nil {
			return -1, err
		}
	}
	if err := checkTerminal(sp, o.Detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	p, err := newProcess(sp)
	if err != nil {
		return -1, err
	}
	p.Init = false
	lateRlimits := takeLateRlimits(p)
	p.SubCgroupPaths = o.SubCgroups
	p.LogLevel = strconv.Itoa(int(logrus.GetLevel()))
	if err := addPreservedFDs(p, o.PreserveFDs); err != nil {
		return -1, err
	}
	stateDir := r.stateDir(o.ID)
	if r.Policy != nil {
		eff, err := LoadPolicy(stateDir)
		if err != nil {
			return -1, err
		}
		if eff != nil {
			rec, _ := LoadRecord(stateDir)
			cc := &CreateContext{ID: o.ID, StateDir: stateDir, Record: rec}
			if err := r.Policy.PrepareProcess(p, eff, cc); err != nil {
				return -1, fmt.Errorf("agent policy: %w", err)
			}
			agent := ""
			if rec != nil {
				agent = rec.Agent
			}
			if w, err := audit.Open(filepath.Join(stateDir, audit.FileName), o.ID, agent); err == nil {
				_ = w.Emit(audit.KindExec, map[string]string{"args": strings.Join(sp.Args, " "), "uid": strconv.Itoa(int(sp.User.UID))})
				w.Close()
			}
		}
	}
	var sigs *signals
	if !o.Detach {
		sigs = catchSignals(false)
		defer sigs.stop()
	}
	io, err := setupStdio(p, c, sp.Terminal, o.Detach, o.ConsoleSocket)
	if err != nil {
		return -1, err
	}
	defer io.Close()
	if err := c.Run(p); err != nil {
		return -1, err
	}
	if err := applyLateRlimits(p, lateRlimits); err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return -1, err
	}
	if err := io.waitConsole(); err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return -1, err
	}
	io.closePostStart()
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, p); err != nil {
			_ = p.Signal(unix.SIGKILL)
			_, _ = p.Wait()
			return -1, err
		}
	}
	if o.Detach {
		return 0, nil
	}
	return sigs.forward(p, io)
}

// execProcessSpec builds the exec'd process: from --process, or from the
// bundle's process with the command-line overrides, as runc does.
func (r *Runtime) execProcessSpec(c *libcontainer.Container, o ExecOpts) (*specs.Process, error) {
	if o.ProcessFile != "" {
		data, err := os.ReadFile(o.ProcessFile)
		if err != nil {
			return nil, fmt.Errorf("read --process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", o.ProcessFile, jsonError(data, err))
		}
		if err := ValidateProcess(&p); err != nil {
			return nil, fmt.Errorf("%s: %w", o.ProcessFile, err)
		}
		return &p, nil
	}
	bundle, ok := utils.SearchLabels(c.Config().Labels, "bundle")
	if !ok {
		return nil, errors.New("bundle not found in the container's labels")
	}
	s, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	p := s.Process
	if len(o.Args) == 0 {
		return nil, errors.New("exec: no command given (and no --process)")
	}
	p.Args = o.Args
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	}
	if len(o.Caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, cp := range o.Caps {
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, cp)
			p.Capabilities.Effective = append(p.Capabilities.Effective, cp)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, cp)
			if p.Capabilities.Inheritable != nil {
				p.Capabilities.Ambient = append(p.Capabilities.Ambient, cp)
			}
		}
	}
	p.Env = append(p.Env, o.Env...)
	p.Terminal = o.Tty
	if o.NoNewPrivs != nil {
		p.NoNewPrivileges = *o.NoNewPrivs
	}
	if o.User != "" {
		us, gs, hasGID := strings.Cut(o.User, ":")
		uid, err := strconv.ParseUint(us, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: uid must be a number", o.User)
		}
		p.User.UID = uint32(uid)
		if hasGID {
			gid, err := strconv.ParseUint(gs, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user %q: gid must be a number", o.User)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range o.AdditionalGID {
		if g < 0 {
			return nil, fmt.Errorf("--additional-gids: %d is negative", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	return p, ValidateProcess(p)
}
