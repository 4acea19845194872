//go:build linux

package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/linux/execsrv"
	"mxc.dev/mxc/spec"
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
//
// This is the normal path. An `exec` the fast path can serve (see package
// execsrv and docs/design/exec.md) never gets here: the C client in the
// binary's constructor hands it to the container's exec server. A
// foreground exec here starts that server when the container has none
// (MXC_EXEC_FAST decides for which containers), in the background, so that
// the next one is fast.
func (r *Runtime) Exec(o ExecOpts) (int, error) {
	var waitSigs func() *signals
	if !o.Detach {
		waitSigs = catchSignalsAsync(false)
		defer func() { go func() { waitSigs().stop() }() }() // see Runtime.create
	}
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
	ep, err := r.prepareExec(c, o.ID, sp, func(p *libcontainer.Process) error {
		p.SubCgroupPaths = o.SubCgroups
		return addPreservedFDs(p, o.PreserveFDs)
	})
	if err != nil {
		return -1, err
	}
	p := ep.p
	if ep.eff != nil {
		if w, err := audit.Append(filepath.Join(ep.stateDir, audit.FileName), o.ID, ep.agent); err == nil {
			_ = w.Emit(audit.KindExec, map[string]string{"args": strings.Join(sp.Args, " "), "uid": strconv.Itoa(int(sp.User.UID))})
			w.Close()
		}
	}
	var sigs *signals
	if !o.Detach {
		sigs = waitSigs()
	}
	io, err := setupStdio(p, c, sp.Terminal, o.Detach, o.ConsoleSocket)
	if err != nil {
		return -1, err
	}
	defer io.Close()
	if err := c.Run(p); err != nil {
		return -1, err
	}
	if err := applyLateRlimits(p, ep.lateRlimits); err != nil {
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
		// containerd, podman and friends exec detached and reap the
		// process themselves: they never use the fast path.
		return 0, nil
	}
	if st == libcontainer.Running {
		r.startExecServerInBackground(o.ID, ep.stateDir, ep.eff != nil)
	}
	return sigs.forward(p, io)
}

// execProcess is a process prepared as the normal exec path prepares it.
type execProcess struct {
	p           *libcontainer.Process
	lateRlimits []configs.Rlimit
	stateDir    string
	eff         *spec.Effective
	agent       string
}

// prepareExec turns sp into the libcontainer process an exec starts:
// converted, not the init, rlimits split, the policy's last step wrapped
// around it. before runs right before the policy engine prepares the
// process (extra files must be in place by then: the last step's own fds
// are appended after them).
func (r *Runtime) prepareExec(c *libcontainer.Container, id string, sp *specs.Process, before func(*libcontainer.Process) error) (*execProcess, error) {
	p, err := newProcess(sp)
	if err != nil {
		return nil, err
	}
	p.Init = false
	ep := &execProcess{p: p, lateRlimits: takeLateRlimits(p), stateDir: r.stateDir(id)}
	p.LogLevel = strconv.Itoa(int(logrus.GetLevel()))
	if before != nil {
		if err := before(p); err != nil {
			return nil, err
		}
	}
	if r.Policy != nil {
		eff, err := LoadPolicy(ep.stateDir)
		if err != nil {
			return nil, err
		}
		if eff != nil {
			rec, _ := LoadRecord(ep.stateDir)
			cc := &CreateContext{ID: id, StateDir: ep.stateDir, Record: rec}
			if err := r.Policy.PrepareProcess(p, eff, cc); err != nil {
				return nil, fmt.Errorf("agent policy: %w", err)
			}
			ep.eff = eff
			if rec != nil {
				ep.agent = rec.Agent
			}
		}
	}
	return ep, nil
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

// startExecServerInBackground starts `mxc-runtime exec-server start ID`,
// detached, when the container should have an exec server and has none
// running. It never changes what this exec does or returns: the helper is
// a process of its own (own session, stdio on /dev/null), reaped by
// forward's wait loop if it ends first, and any failure is its own (it
// records it in exec/unavailable or lets the next exec try again).
func (r *Runtime) startExecServerInBackground(id, stateDir string, hasPolicy bool) {
	if r.Exe == "" || !execsrv.ModeFromEnv().StartsFor(hasPolicy) {
		return
	}
	if _, no := execsrv.Unavailable(stateDir); no {
		return
	}
	if in, err := execsrv.ReadInfo(stateDir); err == nil && in.ServerAlive() {
		if cur, err := execsrv.StatFile(filepath.Join(in.Bundle, "config.json")); err == nil && cur == in.Config {
			return
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer devnull.Close()
	// --config "": exec does not use the node config, and the helper must
	// not fail on it.
	cmd := exec.Command(r.Exe, "--root", r.Root, "--config", "", execsrv.ServerVerb, "start", id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		logrus.Debugf("start the exec server of %s: %v", id, err)
		return
	}
	_ = cmd.Process.Release()
}

// StartExecServer starts the container's exec server (`exec-server start`)
// unless one runs already, and waits until it is ready. The server is
// started exactly as `exec ID <command>` would start a process (the
// bundle's process, the policy's last step), so it holds what such a
// process holds; see docs/design/exec.md.
func (r *Runtime) StartExecServer(id string) (retErr error) {
	// Not under the container's lock: the server may wait, frozen, for a
	// resume, and a delete must not wait for it. The server's files go
	// into exec/ only while the state dir exists (execsrv makes exec/, not
	// the state dir), and a delete that meets them halfway removes them.
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	stateDir := r.stateDir(id)
	lock, err := execsrv.Lock(stateDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	if reason, no := execsrv.Unavailable(stateDir); no {
		return fmt.Errorf("container %q has no exec fast path: %s", id, reason)
	}
	st, err := c.Status()
	if err != nil {
		return err
	}
	if st != libcontainer.Running {
		return fmt.Errorf("cannot start the exec server of container %q: it is %s", id, st)
	}
	bundle, ok := utils.SearchLabels(c.Config().Labels, "bundle")
	if !ok {
		return errors.New("bundle not found in the container's labels")
	}
	cfgID, err := execsrv.StatFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return err
	}
	if in, err := execsrv.ReadInfo(stateDir); err == nil {
		if in.ServerAlive() && in.Config == cfgID {
			return nil
		}
	}
	// Stale, dead or made from an older config.json: replace it.
	if err := execsrv.Stop(stateDir); err != nil {
		return err
	}
	if n := execsrv.CountStart(stateDir); n > execsrv.MaxStarts {
		reason := fmt.Sprintf("its exec server was started %d times", execsrv.MaxStarts)
		_ = execsrv.MarkUnavailable(stateDir, reason)
		return fmt.Errorf("container %q: %s; giving up on it", id, reason)
	}
	unavailable := func(err error) error {
		_ = execsrv.MarkUnavailable(stateDir, err.Error())
		return fmt.Errorf("container %q has no exec fast path: %w", id, err)
	}
	// The server is this binary, run inside the container.
	if err := agentexec.CheckStatic(); err != nil {
		return unavailable(err)
	}
	if sc := c.Config().Seccomp; sc != nil {
		// A notify filter's listener belongs to one process: the
		// processes the server starts would share the server's.
		if sc.ListenerPath != "" {
			return unavailable(errors.New("the seccomp profile hands syscalls to a seccomp agent (listenerPath)"))
		}
		for _, call := range sc.Syscalls {
			if call != nil && call.Action == configs.Notify {
				return unavailable(errors.New("the seccomp profile hands syscalls to a seccomp agent (SCMP_ACT_NOTIFY)"))
			}
		}
	}
	// The process `exec ID <command>` would start, with the server's
	// command line in place of <command>.
	sp, err := r.execProcessSpec(c, ExecOpts{ID: id, Args: []string{execsrv.ServerVerb}})
	if err != nil {
		return err
	}
	sock := execsrv.SocketPath(stateDir)
	listen, err := execsrv.Listen(sock)
	if err != nil {
		return err
	}
	defer listen.Close()
	defer func() {
		if retErr != nil {
			_ = os.Remove(sock)
		}
	}()
	// The server's config is written once the policy engine has prepared
	// the process (the scrub), into this memfd, before the process starts.
	cfgFD, err := unix.MemfdCreate("mxc-exec-config", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	cfgFile := os.NewFile(uintptr(cfgFD), "mxc-exec-config")
	defer cfgFile.Close()
	// The ready socket: we say "G" (go) once the late rlimits are set, the
	// server answers "R" (ready) or "E<why>"; the kernel adds its pid, as
	// seen from here, to the answer.
	ready, readyTheirs, err := readySocket()
	if err != nil {
		return err
	}
	defer ready.Close()
	defer readyTheirs.Close()
	const listenFD, configFD, readyFD = 3, 4, 5
	serverArgs := execsrv.ServeArgs(listenFD, configFD, readyFD)
	probes := execsrv.ScrubProbe(spec.UIEnvVars)
	ep, err := r.prepareExec(c, id, sp, func(p *libcontainer.Process) error {
		p.ExtraFiles = []*os.File{listen, cfgFile, readyTheirs}
		// Ask the policy engine whether it scrubs the UI variables: the
		// server must scrub the requests' --env the same way.
		p.Env = append(p.Env, probes...)
		return nil
	})
	if err != nil {
		return err
	}
	p := ep.p
	env, scrub, err := execsrv.StripProbes(p.Env, probes)
	if err != nil {
		return unavailable(err)
	}
	p.Env = env
	if ep.eff != nil {
		err = agentexec.AsServer(p, serverArgs)
	} else {
		err = agentexec.WrapExe(p, serverArgs)
	}
	if err != nil {
		return err
	}
	sc := &execsrv.ServerConfig{Cwd: sp.Cwd, Env: p.Env}
	if scrub {
		sc.Scrub = spec.UIEnvVars
	}
	data, err := sc.Encode()
	if err != nil {
		return unavailable(err)
	}
	if _, err := cfgFile.Write(data); err != nil {
		return err
	}
	if _, err := cfgFile.Seek(0, 0); err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	p.Stdin, p.Stdout, p.Stderr = devnull, devnull, devnull
	if ep.eff != nil {
		if w, err := audit.Append(filepath.Join(stateDir, audit.FileName), id, ep.agent); err == nil {
			_ = w.Emit(audit.KindExec, map[string]string{"args": "mxc-runtime " + execsrv.ServerVerb + " " + execsrv.ServeArg, "uid": strconv.Itoa(int(sp.User.UID)), "execServer": "true"})
			w.Close()
		}
	}
	if err := c.Run(p); err != nil {
		return fmt.Errorf("start the exec server: %w", err)
	}
	// The process we started forks the server and exits (see the C
	// server): reap it in any case.
	defer func() { _, _ = p.Wait() }()
	pid := 0
	kill := func() {
		if ppid, err := p.Pid(); err == nil {
			_ = unix.Kill(ppid, unix.SIGKILL)
		}
		if pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	if err := applyLateRlimits(p, ep.lateRlimits); err != nil {
		kill()
		return err
	}
	// The server's copy is its own now; ours would hide its exit.
	readyTheirs.Close()
	if pid, err = waitReady(ready); err != nil {
		kill()
		if errors.Is(err, errServerRefused) {
			return unavailable(err)
		}
		return fmt.Errorf("exec server of %q: %w", id, err)
	}
	start, _ := execsrv.ProcStart(pid)
	ls, err := c.State()
	if err != nil {
		kill()
		return err
	}
	cfg := c.Config()
	stdioUID, err := cfg.HostUID(int(sp.User.UID))
	if err != nil {
		kill()
		return err
	}
	rootGID, err := cfg.HostRootGID()
	if err != nil {
		kill()
		return err
	}
	in := &execsrv.Info{
		ServerPid: pid, ServerStart: start,
		InitPid: ls.InitProcessPid, InitStart: ls.InitProcessStartTime,
		FreezeFile: FreezeFile(ls.CgroupPaths),
		Bundle:     bundle, Config: cfgID,
		StdioUID: stdioUID, HostRootGID: rootGID,
		Audit: ep.eff != nil, UID: sp.User.UID, Agent: ep.agent,
	}
	if err := execsrv.WriteInfo(stateDir, in); err != nil {
		kill()
		return err
	}
	return nil
}

// StopExecServer stops the container's exec server, if it has one.
func (r *Runtime) StopExecServer(id string) error {
	stateDir := r.stateDir(id)
	if _, err := os.Stat(stateDir); err != nil {
		return fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	lock, err := execsrv.Lock(stateDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	return execsrv.Stop(stateDir)
}

// ExecServerStatus says whether the container's exec server runs (its pid)
// or why the container has no fast path.
func (r *Runtime) ExecServerStatus(id string) (pid int, unavailable string, err error) {
	stateDir := r.stateDir(id)
	if _, err := os.Stat(stateDir); err != nil {
		return 0, "", fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if reason, no := execsrv.Unavailable(stateDir); no {
		return 0, reason, nil
	}
	if in, err := execsrv.ReadInfo(stateDir); err == nil && in.ServerAlive() {
		return in.ServerPid, "", nil
	}
	return 0, "", nil
}

var errServerRefused = errors.New("the exec server refused to start")

// readySocket returns the two ends of the server's ready socket; ours
// receives the sender's credentials.
func readySocket() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "exec-server-ready")
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fds[0])
		theirs.Close()
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fds[0]), "exec-server-ready")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		theirs.Close()
		return nil, nil, err
	}
	return c.(*net.UnixConn), theirs, nil
}

// waitReady says "G" and waits for the server's "R" (ready) or "E<why>",
// and returns the server's pid (in our pid namespace) from the answer's
// credentials. The server's setup is a few milliseconds; the deadline
// only guards against a wedged container.
func waitReady(c *net.UnixConn) (int, error) {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("G")); err != nil {
		// It is gone already; its reason may still be queued.
		logrus.Debugf("exec server go-ahead: %v", err)
	}
	b := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	n, oobn, _, _, err := c.ReadMsgUnix(b, oob)
	switch {
	case n > 0 && b[0] == 'E':
		return 0, fmt.Errorf("%w: %s", errServerRefused, b[1:n])
	case n > 0 && b[0] == 'R':
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			return 0, fmt.Errorf("exec server: no credentials with its answer: %v", err)
		}
		cred, err := unix.ParseUnixCredentials(&msgs[0])
		if err != nil || cred.Pid <= 0 {
			return 0, fmt.Errorf("exec server: no pid with its answer: %v", err)
		}
		return int(cred.Pid), nil
	case err != nil && !errors.Is(err, io.EOF):
		return 0, fmt.Errorf("waiting for the exec server: %w", err)
	}
	return 0, errors.New("the exec server exited while starting")
}

// FreezeFile is the file that says whether the container is frozen (the
// exec and start fast paths read it; libcontainer's cgroup manager decides
// from the same file).
func FreezeFile(paths map[string]string) string {
	if p, ok := paths["freezer"]; ok && p != "" {
		return filepath.Join(p, "freezer.state")
	}
	if p, ok := paths[""]; ok && p != "" {
		return filepath.Join(p, "cgroup.freeze")
	}
	return ""
}
