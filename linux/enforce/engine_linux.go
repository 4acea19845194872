//go:build linux

package enforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/internal/monitorwatch"
	"mxc.dev/mxc/internal/phasemark"
	"mxc.dev/mxc/internal/procstat"
	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/linux/container"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/monitor"
	"mxc.dev/mxc/linux/seccomp"
	"mxc.dev/mxc/spec"
)

// Options configure an Engine.
type Options struct {
	// Node is the node config; nil means none (no default, no ceiling).
	Node *spec.NodeConfig
	// Root is the runtime's state root.
	Root string
	// Exe is the mxc-runtime binary. The helpers (monitor, egress gate)
	// run from mxc-monitor next to it when that is installed (HelperExe),
	// else from Exe itself.
	Exe string
	// SlotDir is where session id ranges are handed out (DefaultSlotDir).
	SlotDir string
	// PreMonitor: Exe starts the policy monitor as its C stage (it links
	// package fastexec, whose constructor has it): see spawnLate.
	PreMonitor bool
}

// Engine implements container.PolicyEngine on Linux.
type Engine struct {
	opts Options
	// helper is the binary the helpers run from (HelperExe), looked up
	// when a helper is first needed: most verbs start none.
	helper func() string

	mu      sync.Mutex
	pending map[string]*state // by container id, between PrepareSpec and AfterCreate
}

var _ container.PolicyEngine = (*Engine)(nil)

// New returns an engine.
func New(o Options) (*Engine, error) {
	if o.Root == "" {
		return nil, errors.New("policy engine: no runtime root")
	}
	if o.SlotDir == "" {
		o.SlotDir = DefaultSlotDir
	}
	helper := sync.OnceValue(func() string { return HelperExe(o.Exe) })
	return &Engine{opts: o, helper: helper, pending: map[string]*state{}}, nil
}

// LoadNodeConfig reads the node config at path; a missing file means no
// node config (nil, nil).
func LoadNodeConfig(path string) (*spec.NodeConfig, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	nc, err := spec.ParseNodeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("node config %s: %w", path, err)
	}
	return nc, nil
}

// stateFile is the engine's per-container record, next to mxc.json: what
// every later exec needs to enforce the same rules.
const stateFile = "enforce.json"

type state struct {
	Agent agentexec.Config `json:"agent"`
	// AllowedCaps is the policy's capability bound; BundleCaps what the
	// bundle's process asked for (an exec inherits those and they are
	// bounded silently, as at create; anything else is refused).
	AllowedCaps []string `json:"allowedCaps"`
	BundleCaps  []string `json:"bundleCaps,omitempty"`
	ScrubUIEnv  bool     `json:"scrubUIEnv,omitempty"`
	HostPID     bool     `json:"hostPID,omitempty"`
	// NetNSPath is the spec's network namespace path, if it joins one.
	NetNSPath string `json:"netnsPath,omitempty"`
	HostNet   bool   `json:"hostNet,omitempty"`
	Session   bool   `json:"session,omitempty"`

	degraded []string
	// mon is the monitor spawned at PrepareProcess, configured at the
	// init's hello or else at AfterCreate (nil when none is needed, or
	// when it starts late: lateMon).
	mon *monitorProc
	// lateMon: the monitor is started once the init exists, as its C
	// stage (see spawnLate), instead of early as mon.
	lateMon bool
	// early is the monitor's configuration and the egress filter, started
	// when the init says hello (see earlyStart).
	early *earlyStart
	// idmap is the session tier's id-mapped rootfs mount, made in the
	// background from PrepareSpec on.
	idmap *asyncStep
	// kaudit: the monitor reads kernel audit records.
	kaudit bool
}

func (e *Engine) loader(name string) ([]byte, error) {
	nc := e.opts.Node
	if nc == nil || nc.PolicyDir == "" {
		return nil, os.ErrNotExist
	}
	if name == "" || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("invalid policy name %q", name)
	}
	for _, ext := range []string{".yaml", ".yml", ".json"} {
		b, err := os.ReadFile(filepath.Join(nc.PolicyDir, name+ext))
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no %s.yaml or %s.json in %s: %w", name, name, nc.PolicyDir, os.ErrNotExist)
}

// Resolve implements container.PolicyEngine.
func (e *Engine) Resolve(s *specs.Spec) (*spec.Effective, error) {
	return spec.Resolve(s.Annotations, e.opts.Node, e.loader)
}

func (e *Engine) allowDegraded() bool { return e.opts.Node != nil && e.opts.Node.AllowDegraded }

// PrepareSpec implements container.PolicyEngine.
func (e *Engine) PrepareSpec(s *specs.Spec, eff *spec.Effective, cc *container.CreateContext) (retErr error) {
	p := &eff.Policy
	if p.Isolation == spec.TierMicroVM {
		return errors.New("isolation microvm needs a virtual-machine backend (a Kata Containers or Cloud Hypervisor style VMM), which mxc does not have on Linux; use isolation: session, or run the agent on a Windows node (Hyper-V isolation)")
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	specProfile, err := seccomp.FromSpec(s.Linux.Seccomp)
	if err != nil {
		return err
	}
	bundleCaps := specCaps(s.Process)
	if err := spec.ApplyToOCI(s, eff); err != nil {
		return err
	}
	if err := egress.Check(s, eff); err != nil {
		return err
	}
	if p.Mode != spec.ModeAudit {
		maskDeniedFiles(s, eff, cc.Bundle)
	}
	// The spec's profile moves into the agent's last step (see agentexec).
	s.Linux.Seccomp = nil

	if UIDisabled(p) {
		for i, d := range s.Linux.Devices {
			if what := uiDevice(d); what != "" {
				return fmt.Errorf("linux.devices[%d] %s is %s of the host: the policy keeps the agent away from the host's UI (ui.disable / ui.injection)", i, d.Path, what)
			}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, uiDeviceRules()...)
	}

	hasNet, netPath := hasNamespace(s, specs.NetworkNamespace)
	hasPID, _ := hasNamespace(s, specs.PIDNamespace)
	f := hostFacts{ABI: landlock.Effective(), Seccomp: seccomp.Enabled, HostNet: !hasNet, HostPID: !hasPID}
	rules := landlockRules(eff, f)
	gaps := missing(eff, f, rules)
	if len(gaps) > 0 {
		if !e.allowDegraded() {
			return fmt.Errorf("this host cannot enforce the policy: %s (a node config with allowDegraded: true runs such containers anyway and records what is missing)", strings.Join(gaps, "; "))
		}
		for _, g := range gaps {
			logrus.Warnf("container %s: policy degraded: %s", cc.ID, g)
		}
	}

	st := &state{
		Agent:      *agentConfig(eff, f, rules, specProfile),
		BundleCaps: bundleCaps,
		ScrubUIEnv: UIDisabled(p),
		HostPID:    f.HostPID,
		HostNet:    f.HostNet,
		NetNSPath:  netPath,
		Session:    p.Isolation == spec.TierSession,
		degraded:   gaps,
	}
	for c := range AllowedCaps(p) {
		st.AllowedCaps = append(st.AllowedCaps, c)
	}
	sort.Strings(st.AllowedCaps)
	enf := &container.Enforcement{Seccomp: st.Agent.AgentSeccomp != nil, Degraded: gaps}
	if st.Agent.Landlock != nil {
		enf.LandlockABI = f.ABI
	}

	if p.Isolation == spec.TierSession {
		r, err := allocSlot(e.opts.SlotDir, e.opts.Node, cc.StateDir)
		if err != nil {
			return err
		}
		defer func() {
			if retErr != nil {
				_ = freeSlot(e.opts.SlotDir, cc.StateDir)
			}
		}()
		if err := userNamespace(s, r); err != nil {
			return err
		}
		idmapBinds(s)
		if s.Root == nil || s.Root.Path == "" {
			return errors.New("isolation session: the spec has no root.path")
		}
		rootfs := s.Root.Path
		if !filepath.IsAbs(rootfs) {
			rootfs = filepath.Join(cc.Bundle, rootfs)
		}
		dst := idmapDir(e.opts.Root, cc.ID)
		if err := prepareIDMapDir(e.opts.Root, dst); err != nil {
			return err
		}
		// The mount itself (a user-namespace helper process, open_tree,
		// mount_setattr) runs while create converts the spec and makes
		// libcontainer's container; the init's process waits for it
		// (PrepareProcess), and so does Teardown.
		st.idmap = goStep(func() error {
			if err := mountIDMapped(rootfs, dst, r); err != nil {
				_ = unmountIDMapped(dst)
				return err
			}
			return nil
		})
		s.Root.Path = dst
		enf.UserNS = true
		enf.IDRange = r.String()
	}
	cc.Record.Enforcement = enf
	e.mu.Lock()
	e.pending[cc.ID] = st
	e.mu.Unlock()
	return nil
}

func saveState(stateDir string, st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(stateDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save %s: %w", stateFile, err)
	}
	return os.Rename(tmp, filepath.Join(stateDir, stateFile))
}

func loadState(stateDir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("agent policy state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", stateFile, err)
	}
	return &st, nil
}

// PrepareProcess implements container.PolicyEngine.
func (e *Engine) PrepareProcess(p *libcontainer.Process, eff *spec.Effective, cc *container.CreateContext) error {
	// The last step runs this binary inside the container.
	if err := agentexec.CheckStatic(); err != nil {
		return err
	}
	var st *state
	if p.Init {
		e.mu.Lock()
		st = e.pending[cc.ID]
		e.mu.Unlock()
		if st == nil {
			return errors.New("internal: PrepareProcess for an init without PrepareSpec")
		}
		// The id-mapped rootfs must be mounted before Start: the init's
		// mount namespace is a copy of the host's made by nsexec, before
		// any Go code of the init runs, and a mount made after that copy
		// reaches it only through propagation, which a private mount
		// above the runtime's root (tmpfs state roots often are) stops.
		// (Holding the init back until the mount was done instead, to
		// overlap its start-up, failed exactly so: "reopen fd: permission
		// denied" on the bare mount point, once in ~30 runs.)
		if err := st.idmap.wait(); err != nil {
			return err
		}
		// The spec's seccomp profile as the programs the C last step loads,
		// compiled once here for the init and every later exec.
		phasemark.Mark("prepare: id-mapped rootfs ready")
		agentexec.Precompile(&st.Agent)
		if err := saveState(cc.StateDir, st); err != nil {
			return err
		}
		phasemark.Mark("prepare: seccomp compiled, state saved")
		// The monitor (and egress gate host) starts now, so that its
		// start-up overlaps the container's; AfterCreate configures it.
		if err := e.spawnMonitorFor(st, eff, cc); err != nil {
			return err
		}
	} else {
		var err error
		if st, err = loadState(cc.StateDir); err != nil {
			return err
		}
		if err := boundExecCaps(p, st); err != nil {
			return err
		}
		e.ensureHelper(cc, eff)
		if st.ScrubUIEnv {
			p.Env = spec.ScrubUIEnv(p.Env)
		}
	}
	t := true
	p.NoNewPrivileges = &t
	if err := agentexec.Wrap(p, &st.Agent); err != nil {
		return err
	}
	if p.Init && (st.mon != nil || st.lateMon) {
		// The monitor (and the egress gate it hosts) is configured as soon as
		// the init exists, while libcontainer still sets it up.
		return e.startEarly(p, eff, cc, st)
	}
	return nil
}

// boundExecCaps applies the policy's capability bound to an exec'd
// process: what the bundle's process had is bounded as it was at create;
// a capability asked for beyond both (exec --cap, --process) is refused.
func boundExecCaps(p *libcontainer.Process, st *state) error {
	if p.Capabilities == nil {
		return nil
	}
	allowed := map[string]bool{}
	for _, c := range st.AllowedCaps {
		allowed[c] = true
	}
	fromBundle := map[string]bool{}
	for _, c := range st.BundleCaps {
		fromBundle[c] = true
	}
	var refused []string
	seen := map[string]bool{}
	for _, set := range capSets(p.Capabilities) {
		for _, c := range set {
			u := strings.ToUpper(c)
			if !allowed[u] && !fromBundle[u] && !seen[u] {
				seen[u] = true
				refused = append(refused, u)
			}
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return fmt.Errorf("capabilities %s are beyond the agent policy (process.capabilities)", strings.Join(refused, ", "))
	}
	filter := func(l []string) []string {
		if l == nil {
			return nil
		}
		out := []string{}
		for _, c := range l {
			if allowed[strings.ToUpper(c)] {
				out = append(out, c)
			}
		}
		return out
	}
	c := p.Capabilities
	p.Capabilities = &configs.Capabilities{
		Bounding: filter(c.Bounding), Effective: filter(c.Effective), Permitted: filter(c.Permitted),
		Inheritable: filter(c.Inheritable), Ambient: filter(c.Ambient),
	}
	return nil
}

// AfterCreate implements container.PolicyEngine.
func (e *Engine) AfterCreate(c *libcontainer.Container, eff *spec.Effective, cc *container.CreateContext) error {
	e.mu.Lock()
	st := e.pending[cc.ID]
	delete(e.pending, cc.ID)
	e.mu.Unlock()
	if st == nil {
		return errors.New("internal: AfterCreate without PrepareSpec")
	}
	early := st.early
	if early != nil {
		early.finish()
	}
	if st.mon != nil {
		defer st.mon.close()
	}
	ls, err := c.State()
	if err != nil {
		return fmt.Errorf("container state: %w", err)
	}
	pid := ls.InitProcessPid
	rec := cc.Record
	kaudit := st.kaudit
	switch {
	case early != nil && early.pid != 0:
		if early.pid != pid {
			return fmt.Errorf("internal: init hello from pid %d, but libcontainer started pid %d", early.pid, pid)
		}
		if early.err != nil {
			return early.err
		}
	default:
		if err := e.afterInit(context.Background(), pid, eff, cc, st); err != nil {
			return err
		}
	}
	if st.mon != nil {
		if err := st.mon.wait(); err != nil {
			return err
		}
	}

	if cc.Audit != nil {
		detail := map[string]string{
			"tier":    string(eff.Policy.Isolation),
			"digest":  eff.Digest,
			"seccomp": strconv.FormatBool(rec.Enforcement != nil && rec.Enforcement.Seccomp),
		}
		if rec.Enforcement != nil {
			if abi := rec.Enforcement.LandlockABI; abi > 0 {
				detail["landlockABI"] = strconv.Itoa(abi)
			} else {
				detail["landlock"] = noLandlockReason(eff, st)
			}
			if rec.Enforcement.IDRange != "" {
				detail["idRange"] = rec.Enforcement.IDRange
			}
		}
		switch {
		case kaudit:
			detail["fsDenyEvents"] = "kernel audit"
		case st.Agent.Landlock != nil && st.Agent.Landlock.HandleFS:
			detail["fsDenyEvents"] = "unavailable: kernel audit is disabled on this host"
		}
		_ = cc.Audit.Emit(audit.KindPolicy, detail)
		for _, g := range st.degraded {
			_ = cc.Audit.Emit(audit.KindDegraded, map[string]string{"missing": g})
		}
	}
	return nil
}

// spawnMonitorFor starts the container's monitor when there is anything
// to watch or an egress gate to host, and records its pid at once (a
// create that fails later tears it down).
func (e *Engine) spawnMonitorFor(st *state, eff *spec.Effective, cc *container.CreateContext) error {
	enforcesNet, err := egress.Enforces(eff)
	if err != nil {
		return err
	}
	st.kaudit = monitor.KernelAuditEnabled() && st.Agent.Landlock != nil && st.Agent.Landlock.HandleFS
	need := monitor.Config{TimeoutMs: uint64(eff.Timeout() / time.Millisecond), OOM: hasMemoryLimit(cc.Spec), KernelAudit: st.kaudit, Gate: enforcesNet}
	if !need.Needed() {
		return nil
	}
	if e.lateMonitor(st) {
		st.lateMon = true // afterInit starts it
		return nil
	}
	mp, err := spawnMonitor(e.helper(), cc.StateDir, enforcesNet)
	if err != nil {
		return err
	}
	st.mon = mp
	cc.Record.MonitorPid = mp.pid
	if err := container.SaveRecord(cc.StateDir, cc.Record); err != nil {
		mp.close()
		return err
	}
	return nil
}

// ensureHelper restarts a container's dead monitor (and with it the egress
// gate it hosted) on the next exec: nothing else would, and until then the
// namespace fails closed (no DNS) and no timeout is watched. A failure is
// logged, not returned: the exec'd process is held by the same rules
// either way.
func (e *Engine) ensureHelper(cc *container.CreateContext, eff *spec.Effective) {
	// Under the container's lock: a delete racing with this exec must not
	// find its state dir written again behind it (the monitor's lock
	// file, the record), nor a monitor started for a container it has
	// just taken down.
	// Bounded: an OCI hook that create or start runs, holding the lock,
	// may call exec, and the restart is best effort (the next exec, or the
	// shim's policy-ensure, tries again).
	lock, err := container.TryAcquireLock(filepath.Dir(cc.StateDir), cc.ID, time.Second)
	if err != nil || lock == nil {
		logrus.Debugf("container %s: restart policy monitor: container busy (%v)", cc.ID, err)
		return
	}
	defer lock.Release()
	// A delete that got the lock first has removed the state dir:
	// restartMonitor then finds no monitor.json and does nothing.
	if err := e.restartMonitor(cc.StateDir, cc.ID, eff); err != nil {
		logrus.Warnf("container %s: restart policy monitor: %v", cc.ID, err)
	}
}

func (e *Engine) restartMonitor(stateDir, id string, eff *spec.Effective) error {
	b, err := os.ReadFile(filepath.Join(stateDir, monitorFile))
	if err != nil {
		return nil // no monitor was needed
	}
	var m monitor.Config
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", monitorFile, err)
	}
	// Concurrent execs: one restarts, the others find it running.
	lk, err := os.OpenFile(filepath.Join(stateDir, ".monitor.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lk.Close()
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	rec, err := container.LoadRecord(stateDir)
	if err != nil || rec == nil {
		return err
	}
	if monitorwatch.IsMonitor(rec.MonitorPid, stateDir) {
		return nil
	}
	if st, err := procstat.Read(m.InitPid); err != nil || st.Start != m.InitStart || m.InitStart == 0 || st.Exiting() {
		// The container's init is gone, or going (a delete --force
		// racing with this exec killed it and is tearing the policy
		// down): nothing to watch.
		return nil
	}
	mp, err := spawnMonitor(e.helper(), stateDir, m.Gate)
	if err != nil {
		return err
	}
	defer mp.close()
	rec.MonitorPid = mp.pid
	if err := container.SaveRecord(stateDir, rec); err != nil {
		return err
	}
	if err := mp.start(m); err != nil {
		return err
	}
	logrus.Debugf("container %s: policy monitor restarted (pid %d)", id, mp.pid)
	if m.Gate {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg := e.egressConfig(id, rec.Agent, stateDir, rec.NetNSPath, m.InitPid, eff)
		cfg.Host = mp.host
		if _, err := egress.Ensure(ctx, cfg); err != nil {
			return fmt.Errorf("egress gate: %w", err)
		}
	}
	return mp.wait()
}

// egressConfig is egress's view of one container.
func (e *Engine) egressConfig(id, agent, stateDir, netnsPath string, initPid int, eff *spec.Effective) egress.Config {
	if netnsPath == "" {
		netnsPath = fmt.Sprintf("/proc/%d/ns/net", initPid)
	}
	var dns *spec.DNSConfig
	if e.opts.Node != nil {
		dns = e.opts.Node.DNS
	}
	return egress.Config{
		ContainerID: id,
		Agent:       agent,
		StateDir:    stateDir,
		NetNSPath:   netnsPath,
		Policy:      eff,
		DNS:         dns,
		AuditPath:   filepath.Join(stateDir, audit.FileName),
		Exe:         e.helper(),
	}
}

func hasMemoryLimit(s *specs.Spec) bool {
	return s != nil && s.Linux != nil && s.Linux.Resources != nil && s.Linux.Resources.Memory != nil &&
		s.Linux.Resources.Memory.Limit != nil && *s.Linux.Resources.Memory.Limit > 0
}

// Teardown implements container.PolicyEngine. It is called for every
// container (with or without a policy) and after crashes, so each step
// checks whether it has anything to undo.
func (e *Engine) Teardown(stateDir string, rec *container.Record) error {
	id := filepath.Base(stateDir)
	// A create failing before its init started: the id-mapped rootfs may
	// still be being mounted in the background.
	e.mu.Lock()
	st := e.pending[id]
	e.mu.Unlock()
	if st != nil {
		_ = st.idmap.wait()
	}
	// The session tier's id-mapped rootfs and id slot do not depend on the
	// helpers: they are released on another goroutine while the monitor is
	// stopped and the egress filter taken down (~0.7 of the ~3.5 ms this
	// takes in a policy `run`).
	session := goStep(func() error {
		var errs []error
		if err := unmountIDMapped(idmapDir(e.opts.Root, id)); err != nil {
			errs = append(errs, err)
		}
		if err := freeSlot(e.opts.SlotDir, stateDir); err != nil {
			errs = append(errs, fmt.Errorf("session slot: %w", err))
		}
		return errors.Join(errs...)
	})
	var errs []error
	if rec != nil && rec.MonitorPid > 0 {
		if err := stopMonitor(rec.MonitorPid, stateDir); err != nil {
			errs = append(errs, err)
		}
	}
	phasemark.Mark("teardown: monitor stopped")
	if _, err := os.Stat(filepath.Join(stateDir, "egress.json")); err == nil || (rec != nil && rec.Egress) {
		// Exe: if this container's helper served a pod's gate and no other
		// container of the pod has a helper to take it over, Teardown
		// restarts it as a process of its own.
		cfg := egress.Config{ContainerID: id, StateDir: stateDir, Exe: e.helper()}
		if rec != nil {
			cfg.NetNSPath = rec.NetNSPath
		}
		if err := egress.Teardown(cfg); err != nil {
			errs = append(errs, fmt.Errorf("egress teardown: %w", err))
		}
	}
	phasemark.Mark("teardown: egress removed")
	return errors.Join(append(errs, session.wait())...)
}

// noLandlockReason says, for the policy.applied event, why a container's
// agent runs without a Landlock domain (a "landlockABI": "0" read as a
// kernel without Landlock).
func noLandlockReason(eff *spec.Effective, st *state) string {
	switch {
	case eff.Policy.Mode == spec.ModeAudit:
		return "none: audit mode"
	case len(st.degraded) > 0:
		return "none: degraded (see policy.degraded)"
	case !eff.RestrictsFiles():
		return "none needed: no filesystem rule, and the container's namespaces keep it apart"
	}
	return "none"
}

// EnsureHelpers implements container.PolicyEngine: the policy monitor
// (and the egress gate it hosts) restarted if it died while the
// container's init runs, as the next exec would.
func (e *Engine) EnsureHelpers(stateDir, id string, eff *spec.Effective) error {
	return e.restartMonitor(stateDir, id, eff)
}
