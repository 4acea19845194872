package egress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/phasemark"
	"mxc.dev/mxc/internal/procstat"
	"mxc.dev/mxc/spec"
)

// Config is what the runtime hands to Setup, Teardown and Ensure for one
// container.
type Config struct {
	// ContainerID names the container (audit events, the namespace's refs).
	ContainerID string
	// Agent is the policy's identity.agent, stamped on audit events.
	Agent string
	// StateDir is the container's state directory; egress keeps
	// egress.json there (which namespace and gate the container joined).
	// The runtime removes the directory at delete.
	StateDir string
	// NetNSPath is the container's network namespace, e.g.
	// /proc/<init pid>/ns/net or /run/netns/<name>.
	NetNSPath string
	// Policy is the container's resolved policy; nil means no policy
	// applies and Setup does nothing.
	Policy *spec.Effective
	// DNS is the node's gate settings (upstreams, TTL clamp); may be nil.
	DNS *spec.DNSConfig
	// AuditPath is the container's audit log (audit.jsonl).
	AuditPath string
	// Exe is the binary with the egress-gate verb (mxc-monitor, or
	// mxc-runtime); the gate runs as `Exe egress-gate`.
	Exe string

	// RunDir holds the per-namespace gate state (pid file, config, log,
	// refs), shared by the containers of a pod. Default DefaultRunDir.
	RunDir string
	// ResolvConf is read for upstreams when DNS names none. Default
	// /etc/resolv.conf.
	ResolvConf string
	// HostNetNSPath is the namespace the gate runs in and reaches its
	// upstreams from. Default: the caller's.
	HostNetNSPath string
	// HostAddrs are the host's addresses as seen from the namespace, which
	// ingress.hostLoopback governs (the sandbox's gateway). Containers
	// leave it empty: the host's loopback is not reachable from their
	// namespace in the first place.
	HostAddrs []netip.Addr

	// Host, when set, is a process of the caller's (the container's policy
	// monitor) that serves the gate in-process instead of a separate
	// `Exe egress-gate`; see GateHost. Setup and Ensure close its pipes.
	Host *GateHost
	// Launch, when set (and Host is not), starts the process that serves
	// the gate from sockets Setup made (l.Sockets; nil when the process
	// is to watch a pod's gate instead) and returns its pid: see
	// Adoption. Setup closes its copies of the sockets afterwards; when
	// Setup fails after Launch, the caller ends the process.
	Launch func(l *GateLaunch) (pid int, err error)

	// lifeline, when set, is handed to the gate, which exits when its
	// other end closes (the sandbox's owner died).
	lifeline *os.File
	// keepTable: Teardown leaves the table to the namespace, which is
	// about to go (a sandbox's): removing base chains makes the kernel
	// wait for a grace period, milliseconds for nothing.
	keepTable bool
}

// DefaultRunDir is Config.RunDir's default.
const DefaultRunDir = "/run/mxc-egress"

// stateFile is the container's record of what Setup did, written before
// anything else so that Teardown can undo a Setup that crashed halfway.
const stateFile = "egress.json"

type containerState struct {
	Key       string `json:"key"`
	NetNSPath string `json:"netnsPath"`
	RunDir    string `json:"runDir"`
}

// NetCaps are the capabilities an agent must not hold while a network
// policy applies: with them it could rewrite the table (NET_ADMIN) or send
// packets past it (NET_RAW: packet sockets bypass netfilter's output hook).
var NetCaps = []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}

// Enforces reports whether the policy has network rules to enforce, that
// is whether the container needs a network namespace of its own, a table
// and a gate. A nil policy enforces nothing.
func Enforces(eff *spec.Effective) (bool, error) {
	if eff == nil {
		return false, nil
	}
	pl, err := compile(&eff.Policy, nil)
	if err != nil {
		return false, err
	}
	return pl.enforces(), nil
}

// Check refuses, at create time, an OCI spec on which the policy's network
// rules cannot be enforced: one that shares the host's network namespace
// (no "network" entry in linux.namespaces), or one whose process keeps
// CAP_NET_ADMIN or CAP_NET_RAW. It also validates the network section.
func Check(s *specs.Spec, eff *spec.Effective) error {
	enforces, err := Enforces(eff)
	if err != nil {
		return err
	}
	if !enforces {
		return nil
	}
	hasNetNS := false
	if s != nil && s.Linux != nil {
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				hasNetNS = true
			}
		}
	}
	if !hasNetNS {
		return errors.New("network policy: the container shares the host's network namespace (linux.namespaces has no \"network\" entry); " +
			"egress rules are enforced inside the container's own namespace, so a host-network container cannot have them")
	}
	if s.Process != nil && s.Process.Capabilities != nil {
		c := s.Process.Capabilities
		for _, set := range []struct {
			name string
			caps []string
		}{{"bounding", c.Bounding}, {"effective", c.Effective}, {"permitted", c.Permitted}, {"inheritable", c.Inheritable}, {"ambient", c.Ambient}} {
			for _, cp := range set.caps {
				for _, bad := range NetCaps {
					if strings.EqualFold(cp, bad) {
						return fmt.Errorf("network policy: process.capabilities.%s keeps %s, which would let the agent bypass the egress filter", set.name, bad)
					}
				}
			}
		}
	}
	return nil
}

func (cfg *Config) runDir() string {
	if cfg.RunDir != "" {
		return cfg.RunDir
	}
	return DefaultRunDir
}

// upstreams returns the gate's resolvers: the node config's, else the
// nameservers of the host's resolv.conf.
func (cfg *Config) upstreams() ([]string, error) {
	if cfg.DNS != nil && len(cfg.DNS.Upstreams) > 0 {
		var out []string
		for i, u := range cfg.DNS.Upstreams {
			n, err := normalizeUpstream(u)
			if err != nil {
				return nil, fmt.Errorf("dns.upstreams[%d]: %w", i, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	path := cfg.ResolvConf
	if path == "" {
		path = "/etc/resolv.conf"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("egress gate upstreams: %w (set dns.upstreams in the node config)", err)
	}
	ups := parseResolvConf(b)
	if len(ups) == 0 {
		return nil, fmt.Errorf("egress gate upstreams: no nameserver in %s (set dns.upstreams in the node config)", path)
	}
	return ups, nil
}

func (cfg *Config) validate() error {
	switch {
	case cfg.ContainerID == "" || strings.ContainsAny(cfg.ContainerID, "/\x00") || cfg.ContainerID == "." || cfg.ContainerID == "..":
		return fmt.Errorf("egress: invalid container id %q", cfg.ContainerID)
	case cfg.StateDir == "":
		return errors.New("egress: StateDir is required")
	case cfg.NetNSPath == "":
		return errors.New("egress: NetNSPath is required")
	case cfg.Exe == "":
		return errors.New("egress: Exe (mxc-monitor or mxc-runtime) is required")
	}
	return nil
}

// networkDigest identifies what the namespace's table and gate enforce:
// containers sharing a namespace must agree on it.
func networkDigest(gc *gateConfig) string {
	b, _ := json.Marshal(struct {
		Mode      spec.Mode
		Network   *spec.Network
		HostAddrs []netip.Addr
		Upstreams []string
		Min, Max  uint32
	}{gc.Mode, gc.Network, gc.HostAddrs, gc.Upstreams, gc.MinTTL, gc.MaxTTL})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Setup enforces cfg.Policy's network rules in the namespace at
// cfg.NetNSPath: it installs the nftables table and starts the namespace's
// DNS gate (or joins the running one when another container of the same
// pod already did, if their network rules agree). It returns once the gate
// serves. On error nothing is left behind.
func Setup(ctx context.Context, cfg Config) (err error) {
	if cfg.Host != nil {
		// Whatever happens, the host hears from us (or sees EOF: nothing
		// to do) and Setup does not keep its pipes.
		defer cfg.Host.close()
	}
	if cfg.Policy == nil {
		return nil
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	pl, err := compile(&cfg.Policy.Policy, cfg.HostAddrs)
	if err != nil {
		return fmt.Errorf("egress policy: %w", err)
	}
	if !pl.enforces() {
		return nil
	}
	gc := gateConfig{Mode: pl.mode, Network: cfg.Policy.Policy.Network, HostAddrs: cfg.HostAddrs, Port: GatePort}
	var minT, maxT uint32
	if cfg.DNS != nil {
		minT, maxT = cfg.DNS.MinTTL, cfg.DNS.MaxTTL
	}
	if gc.MinTTL, gc.MaxTTL, err = ttlBounds(minT, maxT); err != nil {
		return err
	}
	if pl.resolves() {
		if gc.Upstreams, err = cfg.upstreams(); err != nil {
			return err
		}
	}

	phasemark.Mark("egress: compiled")
	nsfd, key, err := openNetNS(cfg.NetNSPath)
	if err != nil {
		return err
	}
	defer unix.Close(nsfd)
	gc.Key, gc.NetNSPath = key.String(), cfg.NetNSPath

	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("egress state: %w", err)
	}
	st := containerState{Key: gc.Key, NetNSPath: cfg.NetNSPath, RunDir: cfg.runDir()}
	if err := writeJSON(filepath.Join(cfg.StateDir, stateFile), st); err != nil {
		return fmt.Errorf("egress state: %w", err)
	}
	defer func() {
		if err != nil {
			if terr := Teardown(cfg); terr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup: %w", terr))
			}
		}
	}()

	unlock, err := lockRunDir(st.RunDir)
	if err != nil {
		return err
	}
	defer unlock()
	phasemark.Mark("egress: run dir locked")

	gd := gateDir(st.RunDir, gc.Key)
	gc.RefsDir = filepath.Join(gd, "refs")
	myRef := ref{Container: cfg.ContainerID, Agent: cfg.Agent, AuditPath: cfg.AuditPath, NetNSPath: cfg.NetNSPath, Keeper: cfg.Host != nil || cfg.Launch != nil}

	// Another container of the pod already set the namespace up. Refs of
	// containers whose namespace is gone are stale (their runtime was killed
	// before Teardown, and a namespace inode number is reused later): they
	// must not make this namespace look shared.
	pruneStaleRefs(gd, gc.Key)
	if old, ok := readGateConfig(gd); ok {
		if refs, _ := os.ReadDir(filepath.Join(gd, "refs")); len(refs) > 0 {
			if networkDigest(&old) != networkDigest(&gc) {
				return fmt.Errorf("network namespace %s is shared with containers whose network policy differs; "+
					"containers sharing a network namespace must share one network policy", cfg.NetNSPath)
			}
			if err := writeJSON(filepath.Join(gd, "refs", cfg.ContainerID), myRef); err != nil {
				return fmt.Errorf("egress ref: %w", err)
			}
			if p, err := readPidFile(filepath.Join(gd, "gate.pid")); err == nil && procstat.Alive(p.Pid, p.Start) {
				_ = kill(p.Pid, unix.SIGHUP) // open this container's audit log too
				if cfg.Host != nil {
					// Our helper stands by to take the gate over.
					return cfg.Host.tell(hostInstruction{Op: opWatch, GateDir: gd, Container: cfg.ContainerID, NetNSPath: cfg.NetNSPath})
				}
				if cfg.Launch != nil {
					_, err := cfg.Launch(&GateLaunch{Adoption: Adoption{Op: opWatch, GateDir: gd, Container: cfg.ContainerID, NetNSPath: cfg.NetNSPath}})
					return err
				}
				return nil
			}
			// The pod's gate died: restart it, keeping the table (and the
			// addresses it still holds) unless it is gone.
			old.NetNSPath = cfg.NetNSPath
			if err := writeJSON(filepath.Join(gd, "gate.json"), old); err != nil {
				return fmt.Errorf("egress gate config: %w", err)
			}
			return startWithTable(ctx, cfg, gd, nsfd, pl, false)
		}
	}
	// Fresh, or leftovers of a crashed Setup: start over.
	if err := stopGateDir(gd); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(gd, "refs"), 0o700); err != nil {
		return fmt.Errorf("egress gate dir: %w", err)
	}
	if err := writeJSON(filepath.Join(gd, "gate.json"), gc); err != nil {
		return fmt.Errorf("egress gate config: %w", err)
	}
	if err := writeJSON(filepath.Join(gd, "refs", cfg.ContainerID), myRef); err != nil {
		return fmt.Errorf("egress ref: %w", err)
	}
	return startWithTable(ctx, cfg, gd, nsfd, pl, true)
}

// startWithTable gets the gate's host going, installs the table (always
// when fresh, else only if it vanished) and then has the host serve: the
// host's start-up and the table's programming overlap.
func startWithTable(ctx context.Context, cfg Config, gd string, nsfd int, pl *plan, fresh bool) (err error) {
	if fresh {
		// Before the host prepares its listeners on the namespace's
		// loopback: a namespace set up while the container's init starts
		// (docs/design/enforcement.md, "The init's hello") has lo down,
		// and 127.0.0.1 cannot be bound until it is up.
		phasemark.Mark("egress: gate dir written")
		if err := loopbackUp(nsfd); err != nil {
			return fmt.Errorf("network namespace %s: %w", cfg.NetNSPath, err)
		}
		phasemark.Mark("egress: lo up")
	}
	if cfg.Host == nil && cfg.Launch != nil {
		return startAdopted(cfg, gd, nsfd, pl, fresh)
	}
	h, own, err := startHost(cfg, gd)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && own {
			killHost(h)
		}
	}()
	if err := instructServe(cfg, gd, h); err != nil {
		if own {
			_, err = serveOwn(ctx, h, gd) // collects why it died
		}
		return err
	}
	if err := ensureTable(cfg, nsfd, pl, fresh); err != nil {
		return err
	}
	return launchGate(ctx, cfg, gd, h, own)
}

// ensureTable installs the table: always in a fresh namespace, else only
// if it vanished.
func ensureTable(cfg Config, nsfd int, pl *plan, fresh bool) error {
	// The kernel's hooks kept registered (see HookHolderPath), so that this
	// table's registration patches no kernel text.
	holdHooks(pl)
	if !fresh {
		exists, err := tableExists(nsfd)
		if err != nil || exists {
			return err
		}
	}
	if err := applyTable(nsfd, buildTable(pl)); err != nil {
		return fmt.Errorf("network namespace %s: %w", cfg.NetNSPath, err)
	}
	return nil
}

// startAdopted binds the gate's sockets, installs the table (always when
// fresh, else only if it vanished), has cfg.Launch start the process that
// serves them and records its pid. There is nothing to wait for: the
// sockets are bound, and what comes before the process reads them waits
// in them.
func startAdopted(cfg Config, gd string, nsfd int, pl *plan, fresh bool) error {
	gc, ok := readGateConfig(gd)
	if !ok {
		return fmt.Errorf("egress gate config in %s missing", gd)
	}
	if gc.Port == 0 {
		gc.Port = GatePort
	}
	phasemark.Mark("egress: gate config read")
	socks, err := openGateSockets(nsfd, gc.Port)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", cfg.NetNSPath, err)
	}
	defer socks.Close()
	phasemark.Mark("egress: sockets bound")
	if err := ensureTable(cfg, nsfd, pl, fresh); err != nil {
		return err
	}
	phasemark.Mark("egress: table applied")
	pid, err := cfg.Launch(&GateLaunch{
		Adoption: Adoption{Op: opServe, GateDir: gd, Container: cfg.ContainerID, NetNSPath: cfg.NetNSPath},
		Sockets:  socks,
	})
	if err != nil {
		return err
	}
	st, err := procstat.Read(pid)
	if err == nil {
		err = writePidFile(filepath.Join(gd, "gate.pid"), pidFile{Pid: pid, Start: st.Start})
	}
	if err != nil {
		return fmt.Errorf("egress gate pid file: %w", err)
	}
	return nil
}

// startHost returns the process that is to serve the gate of gd:
// cfg.Host, else a gate process of its own, spawned now so that it starts
// up while the caller programs the table. own tells which.
func startHost(cfg Config, gd string) (h *GateHost, own bool, err error) {
	if cfg.Host != nil {
		return cfg.Host, false, nil
	}
	h, err = spawnHost(cfg.Exe, gd, cfg.HostNetNSPath, cfg.lifeline)
	return h, true, err
}

// instructServe tells h to prepare the gate of gd (its sockets, while the
// caller programs the table); launchGate then has it serve.
func instructServe(cfg Config, gd string, h *GateHost) error {
	return h.instruct(hostInstruction{Op: opServe, GateDir: gd, Container: cfg.ContainerID, NetNSPath: cfg.NetNSPath})
}

// launchGate has h, instructed to serve, serve the gate of gd and records
// its pid.
func launchGate(ctx context.Context, cfg Config, gd string, h *GateHost, own bool) error {
	var p pidFile
	var err error
	if own {
		p, err = serveOwn(ctx, h, gd)
	} else {
		p, err = h.serve(ctx)
	}
	if err != nil {
		return err
	}
	if err := writePidFile(filepath.Join(gd, "gate.pid"), p); err != nil {
		_ = stopProcess(p, time.Second)
		return fmt.Errorf("egress gate pid file: %w", err)
	}
	return nil
}

// Teardown undoes Setup for one container: it drops the container's claim
// on the namespace's gate and, when it was the last, stops the gate,
// removes the table (if the namespace outlives its processes, e.g. a
// bind-mounted pod namespace) and the gate's files. It is idempotent and
// safe after a Setup that failed or crashed at any point.
func Teardown(cfg Config) error {
	if cfg.StateDir == "" || cfg.ContainerID == "" {
		return errors.New("egress teardown: ContainerID and StateDir are required")
	}
	sp := filepath.Join(cfg.StateDir, stateFile)
	var st containerState
	b, err := os.ReadFile(sp)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("egress state %s: %w", sp, err)
		}
	case errors.Is(err, os.ErrNotExist):
		// Setup never recorded anything: find the gate by namespace, if
		// the namespace is still there, else there is nothing of ours.
		if cfg.NetNSPath == "" {
			return nil
		}
		fd, key, err := openNetNS(cfg.NetNSPath)
		if err != nil {
			return nil
		}
		unix.Close(fd)
		st = containerState{Key: key.String(), NetNSPath: cfg.NetNSPath, RunDir: cfg.runDir()}
		if _, err := os.Stat(filepath.Join(gateDir(st.RunDir, st.Key), "refs", cfg.ContainerID)); err != nil {
			return nil
		}
	default:
		return fmt.Errorf("egress state: %w", err)
	}
	if st.Key == "" || strings.ContainsAny(st.Key, "/.") {
		return fmt.Errorf("egress state %s: bad namespace key %q", sp, st.Key)
	}

	unlock, err := lockRunDir(st.RunDir)
	if err != nil {
		return err
	}
	defer unlock()
	gd := gateDir(st.RunDir, st.Key)
	if err := os.Remove(filepath.Join(gd, "refs", cfg.ContainerID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("egress ref: %w", err)
	}
	if left := readRefs(gd); len(left) > 0 {
		if p, err := readPidFile(filepath.Join(gd, "gate.pid")); err == nil && procstat.Alive(p.Pid, p.Start) {
			_ = kill(p.Pid, unix.SIGHUP) // forget this container's audit log
		} else if err := relaunchFor(cfg, gd, left); err != nil {
			return err
		}
	} else {
		var errs []error
		if err := stopGateDir(gd); err != nil {
			errs = append(errs, err)
		}
		// The table goes with the namespace when its last process exits;
		// a namespace that persists (bind mount) keeps it until removed here.
		if cfg.keepTable {
			// the namespace's holder releases it right after
		} else if fd, key, err := openNetNS(st.NetNSPath); err == nil {
			if key.String() == st.Key {
				if err := deleteTable(fd); err != nil {
					errs = append(errs, err)
				}
			}
			unix.Close(fd)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	if err := os.Remove(sp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("egress state: %w", err)
	}
	return nil
}

// pruneStaleRefs removes the refs of gd whose namespace path no longer
// names the namespace keyed key (the container, and with it the namespace
// it held, is gone).
func pruneStaleRefs(gd, key string) {
	ents, _ := os.ReadDir(filepath.Join(gd, "refs"))
	for _, e := range ents {
		p := filepath.Join(gd, "refs", e.Name())
		var r ref
		b, err := os.ReadFile(p)
		if err != nil || json.Unmarshal(b, &r) != nil || r.NetNSPath == "" {
			continue // unreadable or from an older version: leave it be
		}
		fd, k, err := openNetNS(r.NetNSPath)
		if err == nil {
			unix.Close(fd)
		}
		if err != nil || k.String() != key {
			_ = os.Remove(p)
		}
	}
}

// readRefs returns the refs of the containers using a namespace.
func readRefs(gd string) []ref {
	ents, _ := os.ReadDir(filepath.Join(gd, "refs"))
	var out []ref
	for _, e := range ents {
		var r ref
		if b, err := os.ReadFile(filepath.Join(gd, "refs", e.Name())); err == nil && json.Unmarshal(b, &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// relaunchFor restarts a pod's dead gate when a container leaves the
// namespace (its helper may have been the gate's host) and no remaining
// container has a keeper that takes it over by itself. Without cfg.Exe it
// leaves the namespace closed (no DNS).
func relaunchFor(cfg Config, gd string, left []ref) error {
	for _, r := range left {
		if r.Keeper {
			return nil // its keeper takes the gate over
		}
	}
	if cfg.Exe == "" {
		return nil
	}
	gc, ok := readGateConfig(gd)
	if !ok {
		return nil
	}
	for _, r := range left {
		if r.NetNSPath == "" {
			continue
		}
		fd, key, err := openNetNS(r.NetNSPath)
		if err != nil {
			continue
		}
		unix.Close(fd)
		if key.String() != gc.Key {
			continue
		}
		gc.NetNSPath = r.NetNSPath
		if err := writeJSON(filepath.Join(gd, "gate.json"), gc); err != nil {
			return fmt.Errorf("egress gate config: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), gateStartTimeout)
		defer cancel()
		c := cfg
		c.Host, c.lifeline, c.NetNSPath = nil, nil, r.NetNSPath
		h, _, err := startHost(c, gd)
		if err != nil {
			return err
		}
		if err := instructServe(c, gd, h); err != nil {
			killHost(h)
			return err
		}
		return launchGate(ctx, c, gd, h, true)
	}
	return nil
}

// Ensure restarts the namespace's gate if it died (the table stays in
// place meanwhile, so the namespace fails closed: no DNS, no new
// addresses, learnt ones expire). It re-installs the table if it is
// missing. It reports whether it restarted anything. cfg.NetNSPath must
// still name the namespace (the container runs).
func Ensure(ctx context.Context, cfg Config) (restarted bool, err error) {
	if cfg.Host != nil {
		defer cfg.Host.close()
	}
	if cfg.Policy == nil {
		return false, nil
	}
	if err := cfg.validate(); err != nil {
		return false, err
	}
	b, err := os.ReadFile(filepath.Join(cfg.StateDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // Setup found nothing to enforce
	} else if err != nil {
		return false, fmt.Errorf("egress state: %w", err)
	}
	var st containerState
	if err := json.Unmarshal(b, &st); err != nil {
		return false, fmt.Errorf("egress state: %w", err)
	}
	unlock, err := lockRunDir(st.RunDir)
	if err != nil {
		return false, err
	}
	defer unlock()
	gd := gateDir(st.RunDir, st.Key)
	if p, err := readPidFile(filepath.Join(gd, "gate.pid")); err == nil && procstat.Alive(p.Pid, p.Start) {
		if cfg.Host != nil && p.Pid != cfg.Host.Pid {
			return false, cfg.Host.tell(hostInstruction{Op: opWatch, GateDir: gd, Container: cfg.ContainerID, NetNSPath: cfg.NetNSPath})
		}
		return false, nil
	}
	if cfg.Host != nil {
		// The new host is this container's keeper from now on.
		r := ref{Container: cfg.ContainerID, Agent: cfg.Agent, AuditPath: cfg.AuditPath, NetNSPath: cfg.NetNSPath, Keeper: true}
		if _, err := os.Stat(filepath.Join(gd, "refs", cfg.ContainerID)); err == nil {
			if old, err := os.ReadFile(filepath.Join(gd, "refs", cfg.ContainerID)); err == nil {
				var o ref
				if json.Unmarshal(old, &o) == nil && r.AuditPath == "" {
					r.Agent, r.AuditPath = o.Agent, o.AuditPath
				}
			}
			if err := writeJSON(filepath.Join(gd, "refs", cfg.ContainerID), r); err != nil {
				return false, fmt.Errorf("egress ref: %w", err)
			}
		}
	}
	gc, ok := readGateConfig(gd)
	if !ok {
		return false, fmt.Errorf("egress gate config missing in %s", gd)
	}
	nsfd, key, err := openNetNS(cfg.NetNSPath)
	if err != nil {
		return false, err
	}
	defer unix.Close(nsfd)
	if key.String() != st.Key {
		return false, fmt.Errorf("network namespace %s is not the one Setup saw", cfg.NetNSPath)
	}
	pl, err := compile(gc.policy(), gc.HostAddrs)
	if err != nil {
		return false, err
	}
	gc.NetNSPath = cfg.NetNSPath
	if err := writeJSON(filepath.Join(gd, "gate.json"), gc); err != nil {
		return false, err
	}
	if err := startWithTable(ctx, cfg, gd, nsfd, pl, false); err != nil {
		return false, err
	}
	return true, nil
}

// GateDir returns the directory of the gate serving the namespace at
// netnsPath (its gate.pid, gate.json, gate.log and refs/), for tools and
// tests.
func GateDir(runDir, netnsPath string) (string, error) {
	if runDir == "" {
		runDir = DefaultRunDir
	}
	fd, key, err := openNetNS(netnsPath)
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return gateDir(runDir, key.String()), nil
}

// GatePID returns the pid of the gate serving the namespace, or 0.
func GatePID(runDir, netnsPath string) int {
	gd, err := GateDir(runDir, netnsPath)
	if err != nil {
		return 0
	}
	p, err := readPidFile(filepath.Join(gd, "gate.pid"))
	if err != nil || !procstat.Alive(p.Pid, p.Start) {
		return 0
	}
	return p.Pid
}

func gateDir(runDir, key string) string { return filepath.Join(runDir, "ns-"+key) }

func readGateConfig(gd string) (gateConfig, bool) {
	var gc gateConfig
	b, err := os.ReadFile(filepath.Join(gd, "gate.json"))
	if err != nil || json.Unmarshal(b, &gc) != nil {
		return gateConfig{}, false
	}
	return gc, true
}

// stopGateDir stops the gate recorded in gd (if any) and removes gd.
func stopGateDir(gd string) error {
	if p, err := readPidFile(filepath.Join(gd, "gate.pid")); err == nil {
		if err := stopProcess(p, 3*time.Second); err != nil {
			return fmt.Errorf("stop egress gate: %w", err)
		}
	}
	if err := os.RemoveAll(gd); err != nil {
		return fmt.Errorf("remove egress gate dir: %w", err)
	}
	return nil
}

// lockRunDir serialises Setup, Teardown and Ensure across processes.
func lockRunDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("egress run dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("egress lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("egress lock: %w", err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
