//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Scenario is one row of the table: an operation timed on every runtime.
// Later rows (policy on, shim path, density) are added by appending to
// scenarios; a runtime that cannot do a scenario returns ErrUnsupported from
// Setup and shows as "n/a".
type Scenario struct {
	Key   string // stable id: -only, history rows
	Title string // row label
	What  string // what exactly is timed (for the doc)
	// Setup runs once per runtime before the timed loop; its result is
	// handed to Once and Teardown. Optional.
	Setup func(ctx context.Context, b *Bench, rt *Runtime) (any, error)
	// Once performs and times one iteration. i is unique per runtime.
	Once func(ctx context.Context, b *Bench, rt *Runtime, state any, i int) (time.Duration, error)
	// Teardown undoes Setup. Optional.
	Teardown func(ctx context.Context, b *Bench, rt *Runtime, state any) error
	// Enabled says whether the scenario can run in this bench (the shim
	// row needs a containerd). Nil means always.
	Enabled func(b *Bench) bool
}

// ErrUnsupported marks a scenario a runtime cannot run.
var ErrUnsupported = errors.New("unsupported by this runtime")

var scenarios = []*Scenario{
	{
		Key:   "run",
		Title: "run /bin/true",
		What:  "`run` in the foreground until /bin/true exits; the runtime deletes the container itself (as `runc run` does); a `delete` is added to the time if it did not",
		Once:  onceRun,
	},
	{
		Key:   "lifecycle",
		Title: "create+start+delete",
		What:  "`create`, `start`, wait until /bin/true has exited (wait4 on the init pid: the benchmark is its subreaper), `delete`",
		Once:  onceLifecycle,
	},
	{
		Key:      "exec",
		Title:    "exec /bin/true",
		What:     "`exec` of /bin/true in the foreground into a running container (one `sleep` container per runtime, made before timing); mxc through its normal path (MXC_EXEC_FAST=0)",
		Setup:    setupSleeper,
		Once:     onceExec,
		Teardown: teardownSleeper,
	},
	{
		Key:      "exec-fast",
		Title:    "exec /bin/true, mxc fast path",
		What:     "as `exec /bin/true`, mxc through the container's exec server (started before timing with `exec-server start`; MXC_EXEC_FAST=require, so a fallback would fail the run)",
		Setup:    setupFastSleeper,
		Once:     onceExecFast,
		Teardown: teardownSleeper,
	},
	{
		Key:      "exec-policy",
		Title:    "exec /bin/true, mxc with coding-agent policy, fast path",
		What:     "as `exec /bin/true, mxc fast path`, mxc's container under examples/policies/coding-agent.yaml (session tier, Landlock, seccomp, egress filter); runc and crun without any policy",
		Setup:    setupAgentSleeper,
		Once:     onceExecFast,
		Teardown: teardownSleeper,
	},
	{
		Key:   "run-policy",
		Title: "run /bin/true, mxc with coding-agent policy",
		What:  "as `run /bin/true`, mxc's bundle under examples/policies/coding-agent.yaml (session tier, Landlock, seccomp, egress filter with its DNS gate, monitor); runc and crun without any policy",
		Once:  onceRunPolicy,
	},
}

// fastEnv makes mxc take the exec fast path or fail.
var fastEnv = []string{"MXC_EXEC_FAST=require"}

// normalEnv makes mxc take the normal exec path.
var normalEnv = []string{"MXC_EXEC_FAST=0"}

// containerID is unique per runtime too: the default cgroup path derives
// from the id, and containers of different runtimes alive at the same time
// (the exec targets) must not share a cgroup.
func containerID(rt *Runtime, key string, i int) string {
	return fmt.Sprintf("mxcb-%s-%s-%d", rt.Name, key, i)
}

func onceRun(ctx context.Context, b *Bench, rt *Runtime, _ any, i int) (time.Duration, error) {
	bundle, err := b.Bundle("/bin/true")
	if err != nil {
		return 0, err
	}
	return runOnce(ctx, rt, bundle, containerID(rt, "run", i))
}

// onceRunPolicy runs mxc under the agent policy, the others without.
func onceRunPolicy(ctx context.Context, b *Bench, rt *Runtime, _ any, i int) (time.Duration, error) {
	bundle, err := b.Bundle("/bin/true")
	if rt.IsMxc() {
		bundle, err = b.AgentBundle("/bin/true")
	}
	if err != nil {
		return 0, err
	}
	return runOnce(ctx, rt, bundle, containerID(rt, "run-policy", i))
}

func runOnce(ctx context.Context, rt *Runtime, bundle, id string) (time.Duration, error) {
	d, err := rt.Exec(ctx, "run", "--bundle", bundle, id)
	if err != nil {
		return 0, err
	}
	// A runtime that keeps the container after a foreground run pays for
	// the delete here, so every runtime is timed for the same end state.
	if _, serr := os.Stat(filepath.Join(rt.Root, id)); serr == nil {
		dd, err := rt.Exec(ctx, "delete", "--force", id)
		if err != nil {
			return 0, err
		}
		d += dd
	}
	return d, nil
}

func onceLifecycle(ctx context.Context, b *Bench, rt *Runtime, _ any, i int) (time.Duration, error) {
	bundle, err := b.Bundle("/bin/true")
	if err != nil {
		return 0, err
	}
	id := containerID(rt, "lifecycle", i)
	pidFile := filepath.Join(b.Dir, "pid-"+rt.Name+"-"+id)
	defer os.Remove(pidFile)
	start := time.Now()
	if _, err := rt.Exec(ctx, "create", "--bundle", bundle, "--pid-file", pidFile, id); err != nil {
		return 0, err
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return 0, fmt.Errorf("%s: pid file: %w", rt.Name, err)
	}
	if _, err := rt.Exec(ctx, "start", id); err != nil {
		return 0, err
	}
	if err := waitExit(ctx, pid); err != nil {
		return 0, err
	}
	if _, err := rt.Exec(ctx, "delete", id); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

type sleeper struct {
	id  string
	pid int
}

func setupSleeper(ctx context.Context, b *Bench, rt *Runtime) (any, error) {
	bundle, err := b.Bundle("/bin/sleep", "100000")
	if err != nil {
		return nil, err
	}
	return startSleeper(ctx, b, rt, bundle, "exec-target")
}

// setupFastSleeper is setupSleeper with mxc's exec server started.
func setupFastSleeper(ctx context.Context, b *Bench, rt *Runtime) (any, error) {
	bundle, err := b.Bundle("/bin/sleep", "100000")
	if err != nil {
		return nil, err
	}
	return startServed(ctx, b, rt, bundle, "exec-fast-target")
}

// setupAgentSleeper is setupFastSleeper with mxc's container under the
// agent policy (runc and crun: none).
func setupAgentSleeper(ctx context.Context, b *Bench, rt *Runtime) (any, error) {
	bundle, err := b.Bundle("/bin/sleep", "100000")
	if rt.IsMxc() {
		bundle, err = b.AgentBundle("/bin/sleep", "100000")
	}
	if err != nil {
		return nil, err
	}
	return startServed(ctx, b, rt, bundle, "exec-policy-target")
}

func startServed(ctx context.Context, b *Bench, rt *Runtime, bundle, name string) (any, error) {
	st, err := startSleeper(ctx, b, rt, bundle, name)
	if err != nil || !rt.IsMxc() {
		return st, err
	}
	if _, err := rt.Exec(ctx, "exec-server", "start", st.(*sleeper).id); err != nil {
		_ = teardownSleeper(ctx, b, rt, st)
		return nil, err
	}
	return st, nil
}

func startSleeper(ctx context.Context, b *Bench, rt *Runtime, bundle, name string) (any, error) {
	s := &sleeper{id: containerID(rt, name, 0)}
	pidFile := filepath.Join(b.Dir, "pid-"+rt.Name+"-"+s.id)
	defer os.Remove(pidFile)
	if _, err := rt.Exec(ctx, "create", "--bundle", bundle, "--pid-file", pidFile, s.id); err != nil {
		return nil, err
	}
	var err error
	if s.pid, err = readPid(pidFile); err != nil {
		return nil, err
	}
	if _, err := rt.Exec(ctx, "start", s.id); err != nil {
		return nil, err
	}
	return s, nil
}

func onceExec(ctx context.Context, _ *Bench, rt *Runtime, state any, _ int) (time.Duration, error) {
	return rt.ExecEnv(ctx, normalEnv, "exec", state.(*sleeper).id, "/bin/true")
}

func onceExecFast(ctx context.Context, _ *Bench, rt *Runtime, state any, _ int) (time.Duration, error) {
	return rt.ExecEnv(ctx, fastEnv, "exec", state.(*sleeper).id, "/bin/true")
}

func teardownSleeper(ctx context.Context, _ *Bench, rt *Runtime, state any) error {
	s := state.(*sleeper)
	if _, err := rt.Exec(ctx, "kill", s.id, "KILL"); err != nil {
		return err
	}
	if err := waitExit(ctx, s.pid); err != nil {
		return err
	}
	_, err := rt.Exec(ctx, "delete", s.id)
	return err
}
