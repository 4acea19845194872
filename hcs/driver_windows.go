//go:build windows

package hcs

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	winio "github.com/Microsoft/go-winio"
	"github.com/Microsoft/hcsshim"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/windows"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/spec"
)

// Container statuses, as runc and runhcs name them.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusPaused   = "paused"
	StatusStopped  = "stopped"
	StatusUnknown  = "unknown"
)

// additionalJSONEnv is hcsshim's hook for merging extra JSON into the
// container document CreateContainer sends.
const additionalJSONEnv = "HCSSHIM_CREATECONTAINER_ADDITIONALJSON"

// Runtime drives the Windows containers whose state lives under Root.
type Runtime struct {
	Root string
	// ConfigPath is the node config; a missing file is an error only when
	// ConfigExplicit is set.
	ConfigPath     string
	ConfigExplicit bool
	// Log settings handed down to the shims.
	LogFile   string
	LogFormat string
	Debug     bool
}

// Stdio are the handles a container process reads and writes: the caller's
// own (a console, files or the named pipes containerd hands over).
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// CreateOpts are create's options.
type CreateOpts struct {
	Bundle  string
	PidFile string
	// ShimLog is the shim's log file; the runtime's --log when empty.
	ShimLog string
	Stdio   Stdio
}

func (rt *Runtime) dir(id string) string { return StateDir(rt.Root, id) }

func (rt *Runtime) load(id string) (*Record, error) {
	rec, err := LoadRecord(rt.dir(id))
	if errors.Is(err, ErrNotExist) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	return rec, err
}

// LoadBundleSpec reads BUNDLE/config.json and makes the layer folders
// absolute against the bundle (runhcs uses its working directory, which
// containerd sets to the bundle).
func LoadBundleSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Windows != nil {
		for i, f := range s.Windows.LayerFolders {
			if f != "" && !filepath.IsAbs(f) {
				s.Windows.LayerFolders[i] = filepath.Join(bundle, f)
			}
		}
	}
	return &s, nil
}

// Create creates the container: policy resolved, HCS document made, scratch
// mounted, ACLs on the endpoints, HCS compute system created, shim started.
// Every side effect is journaled in mxc.json before it happens; on error
// all of them are undone and no state is left behind.
func (rt *Runtime) Create(id string, o CreateOpts) (retErr error) {
	lk, err := acquireLock(rt.Root, id)
	if err != nil {
		return err
	}
	dir := rt.dir(id)
	if _, err := os.Lstat(dir); err == nil {
		lk.release()
		return fmt.Errorf("container %q already exists", id)
	}
	defer func() {
		if retErr != nil {
			lk.releaseAndRemove() // nothing of this container is left
		} else {
			lk.release()
		}
	}()
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return err
	}
	s, err := LoadBundleSpec(bundle)
	if err != nil {
		return err
	}
	node, err := LoadNodeConfig(rt.ConfigPath, rt.ConfigExplicit)
	if err != nil {
		return err
	}
	eff, err := ResolvePolicy(s.Annotations, node)
	if err != nil {
		return err
	}
	opts := Options{ID: id, HostCPUs: runtime.NumCPU()}
	if node != nil {
		opts.AllowDegraded = node.AllowDegraded
		if node.Windows != nil {
			opts.UtilityVMPath = node.Windows.UtilityVMPath
		}
	}
	res, err := Translate(s, eff, opts)
	if err != nil {
		return err
	}
	if eff != nil && os.Getenv(additionalJSONEnv) != "" {
		// hcsshim merges this JSON into every document it sends (read at
		// package init, so it cannot be unset here): it would bypass the
		// translation the policy was checked against.
		return fmt.Errorf("environment variable %s is set: hcsshim would merge it into the HCS document unchecked; refused for a container with an agent policy", additionalJSONEnv)
	}

	uid := make([]byte, 16)
	if _, err := rand.Read(uid); err != nil {
		return err
	}
	rec := &Record{
		ID: id, Bundle: bundle, Phase: PhaseCreating, Created: time.Now().UTC(), Owner: DefaultOwner,
		OCIVersion: s.Version, Annotations: s.Annotations, UniqueID: hex.EncodeToString(uid),
		Result: res, Process: s.Process,
	}
	if s.Root != nil {
		rec.Rootfs = s.Root.Path
	}
	if eff != nil {
		rec.PolicyDigest, rec.Tier = eff.Digest, string(eff.Policy.Isolation)
		if eff.Policy.Identity != nil {
			rec.Agent = eff.Policy.Identity.Agent
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	defer func() {
		if retErr != nil {
			if err := rt.destroy(rec, false); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("undo create: %w", err))
			}
		}
	}()
	if err := SaveRecord(dir, rec); err != nil {
		return err
	}
	if eff != nil {
		if err := SavePolicy(dir, eff); err != nil {
			return err
		}
	}

	cfg := res.Config
	if err := fillLayerIDs(cfg); err != nil {
		return err
	}
	if res.MountScratch {
		rec.ScratchMounted = true
		if err := SaveRecord(dir, rec); err != nil {
			return err
		}
		parents := make([]string, 0, len(cfg.Layers))
		for _, l := range cfg.Layers {
			parents = append(parents, l.Path)
		}
		vol, err := mountScratch(cfg.LayerFolderPath, parents)
		if err != nil {
			// mountScratch undid its own steps: nothing is mounted.
			rec.ScratchMounted = false
			return errors.Join(err, SaveRecord(dir, rec))
		}
		cfg.VolumePath = vol
		rec.Rootfs = vol + `\`
	}
	if res.NetworkNamespace != "" && len(cfg.EndpointList) == 0 {
		if cfg.EndpointList, err = namespaceEndpoints(res.NetworkNamespace); err != nil {
			return err
		}
	}
	if len(res.ACLs) > 0 {
		changed, err := applyACLs(cfg.EndpointList, res.ACLs)
		rec.ACLEndpoints = changed
		if serr := SaveRecord(dir, rec); serr != nil {
			return errors.Join(err, serr)
		}
		if err != nil {
			return err
		}
	}
	rec.HCSCreated = true
	if err := SaveRecord(dir, rec); err != nil {
		return err
	}
	c, err := hcsshim.CreateContainer(id, cfg.toHCSShim())
	if err != nil {
		return fmt.Errorf("HCS create container %s: %w", id, err)
	}
	c.Close()

	shimLog := o.ShimLog
	if shimLog == "" {
		shimLog = rt.LogFile
	}
	shim, err := rt.launchShim(id, false, shimLog, nil, o.Stdio)
	if err != nil {
		return fmt.Errorf("start shim: %w", err)
	}
	defer shim.Release()
	if err := WritePid(filepath.Join(dir, ShimPidFile), shim.Pid); err != nil {
		_ = shim.Kill()
		return err
	}
	if o.PidFile != "" {
		if err := WritePid(o.PidFile, shim.Pid); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
	}
	rec.Phase = PhaseCreated
	if err := SaveRecord(dir, rec); err != nil {
		return err
	}
	if eff != nil {
		rt.auditPolicy(rec, eff)
	}
	return nil
}

func (rt *Runtime) auditPolicy(rec *Record, eff *spec.Effective) {
	w, err := audit.Open(filepath.Join(rt.dir(rec.ID), audit.FileName), rec.ID, rec.Agent)
	if err != nil {
		logrus.Warnf("container %s: audit log: %v", rec.ID, err)
		return
	}
	defer w.Close()
	_ = w.Emit(audit.KindPolicy, map[string]string{
		"digest":    eff.Digest,
		"tier":      string(eff.Policy.Isolation),
		"isolation": string(rec.Result.Isolation),
		"sources":   strings.Join(eff.Sources, "; "),
		"driver":    "hcs",
	})
	for _, d := range rec.Result.Degraded {
		_ = w.Emit(audit.KindDegraded, map[string]string{"rule": d})
	}
}

func (rt *Runtime) auditEvent(rec *Record, kind string, detail map[string]string) {
	if rec.PolicyDigest == "" {
		return
	}
	w, err := audit.Open(filepath.Join(rt.dir(rec.ID), audit.FileName), rec.ID, rec.Agent)
	if err != nil {
		logrus.Warnf("container %s: audit log: %v", rec.ID, err)
		return
	}
	defer w.Close()
	_ = w.Emit(kind, detail)
}

// Start starts a created container and has its shim run the init process.
func (rt *Runtime) Start(id string) error {
	lk, err := acquireLock(rt.Root, id)
	if err != nil {
		return err
	}
	defer lk.release()
	rec, err := rt.load(id)
	if err != nil {
		return err
	}
	st, err := rt.status(rec)
	if err != nil {
		return err
	}
	switch st {
	case StatusCreated:
	case StatusStopped:
		return errors.New("cannot start a container that has stopped")
	case StatusRunning:
		return errors.New("cannot start an already running container")
	default:
		return fmt.Errorf("cannot start a container in the %s state", st)
	}
	c, err := hcsshim.OpenContainer(id)
	if err != nil {
		return fmt.Errorf("open HCS container %s: %w", id, err)
	}
	defer c.Close()
	if err := c.Start(); err != nil {
		return fmt.Errorf("HCS start container %s: %w", id, err)
	}
	timeout := 30 * time.Second
	conn, err := winio.DialPipe(ShimPipePath(rec.UniqueID), &timeout)
	if err != nil {
		return fmt.Errorf("container %s: reach its shim: %w", id, err)
	}
	defer conn.Close()
	if err := shimReply(conn); err != nil {
		return fmt.Errorf("container %s: start init process: %w", id, err)
	}
	rt.auditEvent(rec, audit.KindExec, map[string]string{"process": "init", "commandLine": rec.Result.Init.CommandLine})
	return nil
}

// shimReply reads a shim's answer on its error channel until EOF.
func shimReply(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch {
	case string(b) == string(ShimSuccess):
		return nil
	case len(b) == 0:
		return errors.New("the shim exited without an answer")
	}
	return errors.New(strings.TrimSpace(string(b)))
}

// Run creates and starts the container; unless detached it waits for the
// init process and returns its exit code, deleting the container unless keep.
func (rt *Runtime) Run(id string, o CreateOpts, detach, keep bool) (int, error) {
	if err := rt.Create(id, o); err != nil {
		return -1, err
	}
	if err := rt.Start(id); err != nil {
		return -1, errors.Join(err, rt.Delete(id, true))
	}
	if detach {
		return 0, nil
	}
	code, err := rt.wait(id)
	if !keep {
		err = errors.Join(err, rt.Delete(id, true))
	}
	return code, err
}

// wait waits for the container's shim to exit and returns the init exit code.
func (rt *Runtime) wait(id string) (int, error) {
	dir := rt.dir(id)
	pid, err := ReadPid(filepath.Join(dir, ShimPidFile))
	if err != nil {
		return -1, err
	}
	if p, err := os.FindProcess(pid); err == nil {
		st, werr := p.Wait()
		p.Release()
		if werr == nil {
			if ex, _ := LoadExit(dir); ex != nil {
				return ex.Code, nil
			}
			return st.ExitCode(), nil
		}
	}
	ex, err := LoadExit(dir)
	if err != nil || ex == nil {
		return -1, errors.Join(err, fmt.Errorf("container %s: exit status unknown", id))
	}
	return ex.Code, nil
}

// ExecOpts are exec's options.
type ExecOpts struct {
	Process *specs.Process
	Detach  bool
	PidFile string
	ShimLog string
	Stdio   Stdio
}

// InitProcess returns a copy of the container's init process spec, the
// base exec builds on.
func (rt *Runtime) InitProcess(id string) (*specs.Process, error) {
	rec, err := rt.load(id)
	if err != nil {
		return nil, err
	}
	if rec.Process == nil {
		return &specs.Process{}, nil
	}
	p := *rec.Process
	p.Env = append([]string(nil), p.Env...)
	p.Args = nil
	p.CommandLine = ""
	return &p, nil
}

// Exec runs another process in a running container through a new shim.
// Unless detached it returns the process's exit code.
func (rt *Runtime) Exec(id string, o ExecOpts) (int, error) {
	rec, err := rt.load(id)
	if err != nil {
		return -1, err
	}
	st, err := rt.status(rec)
	if err != nil {
		return -1, err
	}
	if st != StatusRunning {
		return -1, fmt.Errorf("cannot exec in a %s container", st)
	}
	pc, err := ProcessFor(o.Process)
	if err != nil {
		return -1, fmt.Errorf("process: %w", err)
	}
	data, err := json.Marshal(o.Process)
	if err != nil {
		return -1, err
	}
	shimLog := o.ShimLog
	if shimLog == "" {
		shimLog = rt.LogFile
	}
	shim, err := rt.launchShim(id, true, shimLog, data, o.Stdio)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	defer shim.Release()
	rt.auditEvent(rec, audit.KindExec, map[string]string{"process": "exec", "commandLine": pc.CommandLine})
	if o.PidFile != "" {
		if err := WritePid(o.PidFile, shim.Pid); err != nil {
			return -1, fmt.Errorf("pid file: %w", err)
		}
	}
	if o.Detach {
		return 0, nil
	}
	ps, err := shim.Wait()
	if err != nil {
		return -1, err
	}
	return ps.ExitCode(), nil
}

// Kill delivers sig: KILL terminates the init process (with all, the whole
// container); TERM and INT shut the container down gracefully (HCS v1 has
// no per-process signals).
func (rt *Runtime) Kill(id, sig string, all bool) error {
	signal, err := ParseSignal(sig)
	if err != nil {
		return err
	}
	rec, err := rt.load(id)
	if err != nil {
		return err
	}
	st, err := rt.status(rec)
	if err != nil {
		return err
	}
	if st != StatusRunning && st != StatusCreated && st != StatusPaused {
		return fmt.Errorf("container %s is not running (%s)", id, st)
	}
	c, err := hcsshim.OpenContainer(id)
	if err != nil {
		return fmt.Errorf("open HCS container %s: %w", id, err)
	}
	defer c.Close()
	if st == StatusCreated {
		// Nothing runs yet: any signal ends the container.
		return ignorePending(c.Terminate())
	}
	if signal == SignalTerm {
		return ignorePending(c.Shutdown())
	}
	pid, err := ReadPid(filepath.Join(rt.dir(id), InitPidFile))
	if err != nil {
		return err
	}
	if all || pid == 0 {
		return ignorePending(c.Terminate())
	}
	p, err := c.OpenProcess(pid)
	if err != nil {
		if hcsshim.IsNotExist(err) || hcsshim.IsAlreadyStopped(err) {
			return nil
		}
		return fmt.Errorf("open init process %d: %w", pid, err)
	}
	defer p.Close()
	if err := p.Kill(); err != nil && !hcsshim.IsAlreadyStopped(err) && !hcsshim.IsNotExist(err) {
		return fmt.Errorf("kill init process %d: %w", pid, err)
	}
	return nil
}

// ignorePending treats HCS's "operation pending" and "already stopped" as
// success: the request was accepted or is moot.
func ignorePending(err error) error {
	if err == nil || hcsshim.IsPending(err) || hcsshim.IsAlreadyStopped(err) || hcsshim.IsNotExist(err) {
		return nil
	}
	return err
}

// Delete removes a stopped (or, with force, any) container and all it holds.
func (rt *Runtime) Delete(id string, force bool) error {
	lk, err := acquireLock(rt.Root, id)
	if err != nil {
		return err
	}
	rec, err := rt.load(id)
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			lk.releaseAndRemove()
			if force {
				return nil
			}
			return err
		}
		if !force {
			lk.release()
			return fmt.Errorf("%w (delete --force removes it anyway)", err)
		}
		// Unreadable record: remove what is certain to be ours.
		if props, qerr := hcsshim.GetContainers(hcsshim.ComputeSystemQuery{IDs: []string{id}, Owners: []string{DefaultOwner}}); qerr == nil && len(props) > 0 {
			terminate(id)
		}
		err = os.RemoveAll(rt.dir(id))
		lk.releaseAndRemove()
		return err
	}
	st, err := rt.status(rec)
	if err != nil && !force {
		lk.release()
		return err
	}
	switch st {
	case StatusStopped, StatusCreated, StatusCreating:
	default:
		if !force {
			lk.release()
			return fmt.Errorf("cannot delete container %s that is not stopped: %s (use --force)", id, st)
		}
	}
	err = rt.destroy(rec, force)
	if err != nil {
		lk.release()
		return err
	}
	lk.releaseAndRemove()
	return nil
}

// destroy undoes everything the record says create did, in reverse. The
// state dir stays when an undo step fails, so that delete can retry it;
// with force it goes anyway (the failure is logged).
func (rt *Runtime) destroy(rec *Record, force bool) error {
	dir := rt.dir(rec.ID)
	var errs []error
	if rec.HCSCreated {
		terminate(rec.ID)
	}
	if pid, _ := ReadPid(filepath.Join(dir, ShimPidFile)); pid > 0 {
		// The shim ends by itself once the container is gone; stop it if not.
		if p, err := os.FindProcess(pid); err == nil {
			if !waitProcess(p, 10*time.Second) {
				_ = p.Kill()
				waitProcess(p, 10*time.Second)
			}
			p.Release()
		}
	}
	if rec.ScratchMounted && rec.Result != nil && rec.Result.Config != nil {
		if err := unmountScratch(rec.Result.Config.LayerFolderPath); err != nil {
			errs = append(errs, fmt.Errorf("unmount scratch layer %s: %w", rec.Result.Config.LayerFolderPath, err))
		}
	}
	if len(errs) > 0 && force {
		logrus.Warnf("container %s: %v (state removed anyway: --force)", rec.ID, errors.Join(errs...))
		errs = nil
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove state: %w", err))
		}
	}
	return errors.Join(errs...)
}

// terminate ends the HCS compute system id, if it exists, and waits for it.
func terminate(id string) {
	c, err := hcsshim.OpenContainer(id)
	if err != nil {
		return
	}
	defer c.Close()
	if err := c.Terminate(); err == nil || hcsshim.IsPending(err) {
		_ = c.WaitTimeout(time.Minute)
	}
}

// waitProcess waits up to d for p to exit.
func waitProcess(p *os.Process, d time.Duration) bool {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, uint32(p.Pid))
	if err != nil {
		return true // gone
	}
	defer windows.CloseHandle(h)
	ev, _ := windows.WaitForSingleObject(h, uint32(d.Milliseconds()))
	return ev == windows.WAIT_OBJECT_0
}

// processAlive reports whether pid is a running process.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return false
	}
	const stillActive = 259
	return code == stillActive
}

// status derives the container's status from HCS, the shim and exit.json.
func (rt *Runtime) status(rec *Record) (string, error) {
	if rec.Phase != PhaseCreated {
		return StatusCreating, nil
	}
	dir := rt.dir(rec.ID)
	if ex, err := LoadExit(dir); err != nil {
		return "", err
	} else if ex != nil {
		return StatusStopped, nil
	}
	shimPid, err := ReadPid(filepath.Join(dir, ShimPidFile))
	if err != nil {
		return "", err
	}
	if !processAlive(shimPid) {
		// Without its shim nothing runs or waits in the container.
		return StatusStopped, nil
	}
	props, err := hcsshim.GetContainers(hcsshim.ComputeSystemQuery{IDs: []string{rec.ID}})
	if err != nil {
		return "", fmt.Errorf("query HCS container %s: %w", rec.ID, err)
	}
	if len(props) == 0 {
		return StatusStopped, nil
	}
	switch props[0].State {
	case "", "Created":
		return StatusCreated, nil
	case "Running":
		return StatusRunning, nil
	case "Paused":
		return StatusPaused, nil
	case "Stopped":
		return StatusStopped, nil
	}
	return StatusUnknown, nil
}

// State returns the container's state document.
func (rt *Runtime) State(id string) (*ContainerState, error) {
	rec, err := rt.load(id)
	if err != nil {
		return nil, err
	}
	return rt.stateOf(rec)
}

func (rt *Runtime) stateOf(rec *Record) (*ContainerState, error) {
	st, err := rt.status(rec)
	if err != nil {
		return nil, err
	}
	pid, _ := ReadPid(filepath.Join(rt.dir(rec.ID), ShimPidFile))
	if st == StatusStopped {
		pid = 0
	}
	return &ContainerState{
		OCIVersion: rec.OCIVersion, ID: rec.ID, Pid: pid, Status: st, Bundle: rec.Bundle,
		Rootfs: rec.Rootfs, Created: rec.Created, Owner: rec.Owner, Annotations: rec.Annotations,
		Isolation: rec.Result.Isolation, PolicyDigest: rec.PolicyDigest,
	}, nil
}

// List returns the state of every container under the root.
func (rt *Runtime) List() ([]ContainerState, error) {
	ents, err := os.ReadDir(rt.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []ContainerState
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		rec, err := LoadRecord(rt.dir(e.Name()))
		if err != nil {
			if !errors.Is(err, ErrNotExist) {
				logrus.Warnf("container %s: %v", e.Name(), err)
			}
			continue
		}
		st, err := rt.stateOf(rec)
		if err != nil {
			logrus.Warnf("container %s: %v", e.Name(), err)
			continue
		}
		out = append(out, *st)
	}
	return out, nil
}

// Ps lists the processes of a running container.
func (rt *Runtime) Ps(id string) ([]hcsshim.ProcessListItem, error) {
	rec, err := rt.load(id)
	if err != nil {
		return nil, err
	}
	st, err := rt.status(rec)
	if err != nil {
		return nil, err
	}
	if st != StatusRunning && st != StatusPaused {
		return nil, fmt.Errorf("container %s is not running (%s)", id, st)
	}
	c, err := hcsshim.OpenContainer(id)
	if err != nil {
		return nil, fmt.Errorf("open HCS container %s: %w", id, err)
	}
	defer c.Close()
	return c.ProcessList()
}

// launchShim starts `mxc-runtime shim` for container id, hands it the stdio
// handles by value (inherited, as runhcs does) and waits for its answer on
// a pipe that is the shim's stdout. data, if any, is written to the shim's
// stdin (exec's process spec).
func (rt *Runtime) launchShim(id string, exec bool, logPath string, data []byte, stdio Stdio) (_ *os.Process, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{exe}
	if rt.Debug {
		args = append(args, "--debug")
	}
	if logPath != "" {
		format := rt.LogFormat
		if format == "" {
			format = "text"
		}
		args = append(args, "--log", logPath, "--log-format", format)
	}
	args = append(args, "--root", rt.Root, "shim")
	var inherit []syscall.Handle
	for i, f := range []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
		if f == nil {
			continue
		}
		h := windows.Handle(f.Fd())
		if h == windows.InvalidHandle || h == 0 {
			continue
		}
		if err := windows.SetHandleInformation(h, windows.HANDLE_FLAG_INHERIT, windows.HANDLE_FLAG_INHERIT); err != nil {
			return nil, fmt.Errorf("stdio handle: %w", err)
		}
		inherit = append(inherit, syscall.Handle(h))
		args = append(args, []string{"--stdin", "--stdout", "--stderr"}[i], strconv.FormatUint(uint64(h), 10))
	}
	if exec {
		args = append(args, "--exec")
	}
	args = append(args, id)

	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer errR.Close()
	defer errW.Close()
	var dataR, dataW *os.File
	if data != nil {
		if dataR, dataW, err = os.Pipe(); err != nil {
			return nil, err
		}
		defer dataW.Close()
	} else if dataR, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	defer dataR.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()

	p, err := os.StartProcess(exe, args, &os.ProcAttr{
		Files: []*os.File{dataR, errW, null},
		Sys: &syscall.SysProcAttr{
			AdditionalInheritedHandles: inherit,
			// Ctrl-C at the caller's console is not the container's to take.
			CreationFlags: windows.CREATE_NEW_PROCESS_GROUP,
		},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = p.Kill()
			_, _ = p.Wait()
		}
	}()
	errW.Close()
	dataR.Close()
	if data != nil {
		if _, err := dataW.Write(data); err != nil {
			return nil, fmt.Errorf("hand process spec to shim: %w", err)
		}
		dataW.Close()
	}
	if err := shimReply(errR); err != nil {
		return nil, err
	}
	return p, nil
}
