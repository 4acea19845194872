//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/reaper"
	"mxc.dev/mxc/spec"
)

// Runtime is one OCI runtime under measurement, with a state root of its own.
type Runtime struct {
	Name    string
	Bin     string
	Version string // first line of --version
	Root    string // --root
}

// IsMxc reports whether the runtime is an mxc build: "mxc", or "mxc-..."
// for a second build in an A/B run (-runtime mxc=new -runtime
// mxc-base=old). Those get mxc's policy bundles and environment.
func (r *Runtime) IsMxc() bool { return r.Name == "mxc" || strings.HasPrefix(r.Name, "mxc-") }

// Command returns the runtime's command line with its own --root.
func (r *Runtime) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.Bin, append([]string{"--root", r.Root}, args...)...)
	// MXC_CONFIG empty: no node config, so mxc runs the bundle as runc does
	// (a node default policy would make the comparison unequal).
	cmd.Env = append(os.Environ(), "MXC_CONFIG=")
	cmd.WaitDelay = time.Second
	return cmd
}

// Exec runs the runtime with stdio on /dev/null (stderr kept for errors)
// and returns how long it took.
func (r *Runtime) Exec(ctx context.Context, args ...string) (time.Duration, error) {
	return r.ExecEnv(ctx, nil, args...)
}

// ExecEnv is Exec with extra environment variables for mxc (MXC_EXEC_FAST);
// the other runtimes get the environment as always.
func (r *Runtime) ExecEnv(ctx context.Context, mxcEnv []string, args ...string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := r.Command(ctx, args...)
	if r.IsMxc() {
		cmd.Env = append(cmd.Env, mxcEnv...)
	}
	// stderr goes to a file, not a pipe: `create` hands its stdio to the
	// container, which would hold a pipe open long after the runtime exits.
	errf, err := os.CreateTemp(r.Root, ".stderr-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	cmd.Stderr = errf
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		msg, _ := os.ReadFile(errf.Name())
		return d, fmt.Errorf("%s %s: %w: %s", r.Name, strings.Join(args, " "), err, bytes.TrimSpace(msg))
	}
	return d, nil
}

// Bench holds what all scenarios share: the runtimes and the bundles.
type Bench struct {
	Opts     Options
	Runtimes []*Runtime
	Dir      string // scratch: rootfs, bundles, state roots
	Rootfs   string
	bundles  map[string]string // args key -> bundle dir
	// agentPolicy is the coding-agent example policy as its annotation.
	agentPolicy map[string]string
	started     time.Time
	loadAvg     [2]string // at start and end
	attach      string    // the cgroup attach probe (attach.go)
	fault       string    // the page fault probe (faults.go)
	tmpfs       bool      // Dir is a tmpfs of our own (-tmpfs)
	workFS      string    // file system under Opts.Work
}

// fsType names the file system under dir, as /proc/self/mounts does.
func fsType(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

// NewBench makes the scratch dir, the busybox rootfs and a state root per
// runtime.
func NewBench(o Options) (*Bench, error) {
	dir, err := os.MkdirTemp(o.Work, "mxc-bench-")
	if err != nil {
		return nil, err
	}
	// Searchable by all: a session-tier container's root (an unprivileged
	// host uid) must reach the rootfs under it.
	if err := os.Chmod(dir, 0o711); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	b := &Bench{Opts: o, Runtimes: o.Runtimes, Dir: dir, bundles: map[string]string{}, started: time.Now()}
	b.workFS = fsType(o.Work)
	if o.Tmpfs && b.workFS != "tmpfs" {
		// Runtimes keep their state under /run, which is a tmpfs on a
		// normal host; on this VM it is ext4, where each state file
		// replaced by rename also starts a writeback. Every runtime gets
		// the same tmpfs, so the comparison stays side by side.
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0711,size=4g"); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("tmpfs on %s (-tmpfs=false to bench on %s): %w", dir, b.workFS, err)
		}
		b.tmpfs = true
	}
	b.loadAvg[0] = loadAvg()
	b.attach = attachProbeText()
	fmt.Fprintf(os.Stderr, "cgroup attach on this host: %s\n", b.attach)
	b.fault = faultProbeText()
	fmt.Fprintf(os.Stderr, "page fault on this host: %s\n", b.fault)
	fail := func(err error) (*Bench, error) {
		_ = b.Close()
		return nil, err
	}
	for _, rt := range b.Runtimes {
		bin, err := exec.LookPath(rt.Bin)
		if err != nil {
			return fail(fmt.Errorf("runtime %s: %w", rt.Name, err))
		}
		rt.Bin = bin
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			return fail(fmt.Errorf("%s --version: %w", bin, err))
		}
		rt.Version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		if c := versionField(string(out), "commit:"); c != "" {
			rt.Version += " (" + c + ")"
		}
		rt.Root = filepath.Join(dir, "state-"+rt.Name)
		if err := os.MkdirAll(rt.Root, 0o700); err != nil {
			return fail(err)
		}
	}
	b.Rootfs = filepath.Join(dir, "rootfs")
	if err := makeRootfs(b.Rootfs); err != nil {
		return fail(fmt.Errorf("rootfs: %w", err))
	}
	return b, nil
}

func versionField(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Bundle returns a bundle running args, made once per distinct args. All
// bundles share one rootfs (root.path is absolute), so every runtime and
// every scenario runs the same files.
func (b *Bench) Bundle(args ...string) (string, error) {
	return b.bundle(nil, args...)
}

// AgentBundle is Bundle with the coding-agent example policy
// (examples/policies/coding-agent.yaml, -agent-policy) in io.mxc.policy:
// what mxc runs with its policy on, against runc and crun without any.
func (b *Bench) AgentBundle(args ...string) (string, error) {
	if b.agentPolicy == nil {
		data, err := os.ReadFile(b.Opts.AgentPolicy)
		if err != nil {
			return "", fmt.Errorf("agent policy: %w", err)
		}
		p, _, err := spec.ParsePolicy(data)
		if err != nil {
			return "", fmt.Errorf("agent policy %s: %w", b.Opts.AgentPolicy, err)
		}
		if b.agentPolicy, err = spec.Annotations(p); err != nil {
			return "", err
		}
	}
	return b.bundle(b.agentPolicy, args...)
}

func (b *Bench) bundle(annotations map[string]string, args ...string) (string, error) {
	key := strings.Join(args, "\x00")
	if annotations != nil {
		key = "policy\x00" + key
	}
	if d, ok := b.bundles[key]; ok {
		return d, nil
	}
	d := filepath.Join(b.Dir, fmt.Sprintf("bundle-%d", len(b.bundles)))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	sp := benchSpec(b.Rootfs, args)
	sp.Annotations = annotations
	data, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(d, "config.json"), data, 0o644); err != nil {
		return "", err
	}
	b.bundles[key] = d
	return d, nil
}

// Close force-deletes every container left in any state root, kills and
// reaps whatever was reparented to us, and removes the scratch dir.
func (b *Bench) Close() error {
	var errs []error
	for _, rt := range b.Runtimes {
		if rt.Root == "" {
			continue
		}
		ents, _ := os.ReadDir(rt.Root)
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if _, err := rt.Exec(context.Background(), "delete", "--force", e.Name()); err != nil {
				errs = append(errs, fmt.Errorf("cleanup: %w", err))
			}
		}
	}
	reaper.KillAdopted()
	if b.tmpfs {
		if err := unix.Unmount(b.Dir, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: unmount %s: %w", b.Dir, err))
		}
	}
	if b.Dir != "" {
		if err := os.RemoveAll(b.Dir); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// leftovers names containers still in a runtime's state root: a scenario
// must leave none behind.
func (rt *Runtime) leftovers() []string {
	var out []string
	ents, _ := os.ReadDir(rt.Root)
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitExit waits until pid has exited. Container init processes become our
// children once the runtime that created them exits (we are a subreaper),
// so wait4 reaps them; if pid is not our child, poll /proc instead.
func waitExit(ctx context.Context, pid int) error {
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(pid, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err == nil && wpid == pid {
			return nil
		}
		if err != syscall.ECHILD {
			return fmt.Errorf("wait4 %d: %w", pid, err)
		}
		break
	}
	deadline := time.Now().Add(cmdTimeout)
	for {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return nil
		}
		if i := bytes.LastIndexByte(data, ')'); i > 0 && i+2 < len(data) && data[i+2] == 'Z' {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("pid %d still running", pid)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// readPid reads a --pid-file.
func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// scratchDesc says where the state roots and bundles were, for the record.
func (b *Bench) scratchDesc() string {
	if b.tmpfs {
		return fmt.Sprintf("tmpfs (a private mount; %s is %s here)", b.Opts.Work, b.workFS)
	}
	return b.workFS
}
