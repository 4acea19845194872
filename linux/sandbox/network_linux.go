//go:build linux

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/procstat"
	"mxc.dev/mxc/linux/egress"
)

// DefaultStateRoot holds the state of networked sandboxes while they run
// (NetOptions.StateRoot's default): one directory per sandbox, named
// "<pid>-<start time>" after the sandbox process.
const DefaultStateRoot = "/run/mxc-sandbox"

// netSetupTimeout bounds slirp4netns's and the gate's start.
const netSetupTimeout = 30 * time.Second

// runNetworked runs the command in a child inside egress.NewSandbox's
// network namespace (slirp4netns, the table, the DNS gate), then tears the
// network down. The sandbox process stays as the command's supervisor:
// it holds the namespace, slirp4netns's exit fd and the gate's lifeline,
// so whatever way it ends, they end too.
func runNetworked(pl *Plan, args, env []string) (code int, err error) {
	if os.Geteuid() != 0 {
		return ExitSetup, errors.New("network.egress: a sandbox whose policy allows egress needs root (its own network namespace with slirp4netns, nftables and the DNS gate); run it as root or run the agent in a container")
	}
	if pl.Net.Policy == nil || pl.Net.Exe == "" {
		return ExitSetup, errors.New("internal: networked sandbox without policy or executable")
	}
	root := pl.Net.StateRoot
	if root == "" {
		root = DefaultStateRoot
	}
	sweepStale(root)
	self, err := procIdentity(os.Getpid())
	if err != nil {
		return ExitSetup, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return ExitSetup, fmt.Errorf("sandbox state: %w", err)
	}
	stateDir := filepath.Join(root, self)
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		return ExitSetup, fmt.Errorf("sandbox state: %w", err)
	}
	removeState := func() { _ = os.RemoveAll(stateDir) }
	defer removeState()

	agent := ""
	if id := pl.Net.Policy.Policy.Identity; id != nil {
		agent = id.Agent
	}
	ctx, cancel := context.WithTimeout(context.Background(), netSetupTimeout)
	defer cancel()
	sb, err := egress.NewSandbox(ctx, egress.Config{
		ContainerID:   "sandbox-" + strconv.Itoa(os.Getpid()),
		Agent:         agent,
		StateDir:      stateDir,
		Policy:        pl.Net.Policy,
		DNS:           pl.Net.DNS,
		AuditPath:     pl.Net.AuditPath,
		Exe:           pl.Net.Exe,
		RunDir:        pl.Net.RunDir,
		HostNetNSPath: pl.Net.HostNetNSPath,
	})
	if err != nil {
		return ExitSetup, fmt.Errorf("sandbox network: %w", err)
	}
	closed := false
	closeNet := func() {
		if !closed {
			closed = true
			if cerr := sb.Close(); cerr != nil {
				fmt.Fprintf(os.Stderr, "mxc-runtime sandbox: network teardown: %v\n", cerr)
			}
		}
	}
	defer closeNet()

	data, err := json.Marshal(pl)
	if err != nil {
		return ExitSetup, err
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return ExitSetup, err
	}
	defer rd.Close()
	cmd := stageCommand(rd, args, env)
	// A mount namespace of its own (the stage sets up the read-only view
	// there); the network namespace is the sandbox's, entered by the
	// thread that forks the child (Sandbox.Start).
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
	// Before a fatal signal of the command is passed on (re-raised, which
	// runs no defers): the network and the state go first.
	cleanup := func() { closeNet(); removeState() }
	return supervise(cmd, wr, data, func() error { return sb.Start(cmd) }, cleanup, "start the sandboxed command")
}

// procIdentity is "<pid>-<start time>": a pid alone may be reused.
func procIdentity(pid int) (string, error) {
	st, err := procstat.Read(pid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d-%d", pid, st.Start), nil
}

// sweepStale removes the state of networked sandboxes whose process is
// gone without cleaning up (killed by SIGKILL): their gate and slirp4netns
// ended with them; only the directory is left.
func sweepStale(root string) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, _, ok := strings.Cut(e.Name(), "-")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(pid)
		if err != nil || n <= 0 {
			continue
		}
		if id, err := procIdentity(n); err == nil && id == e.Name() {
			continue // still running
		}
		_ = os.RemoveAll(filepath.Join(root, e.Name()))
	}
}
