//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// ShimOptions point the shim scenario at a containerd that bench/run.sh
// started (its own root, state and socket) with mxc's shim on its PATH and
// the busybox image imported. Without an address the scenario is left out.
type ShimOptions struct {
	Ctr       string // ctr binary of that containerd
	Address   string // its socket
	Namespace string
	Image     string
}

// shimScenario times the path a containerd user takes: `ctr run --rm` of
// /bin/true, which creates the container and its snapshot, starts a shim,
// has the shim create and start the task through the runtime, waits for the
// exit, deletes the task (the shim runs the runtime's delete and exits) and
// removes the container and snapshot. mxc runs through its own shim
// (io.containerd.mxc.v2) with its defaults; runc through containerd's runc
// v2 shim (io.containerd.runc.v2) of the same containerd release, whose code
// mxc's shim reuses. crun 1.8.1 refuses the spec containerd 2.x writes
// (ociVersion 1.3: "unknown version specified"), so it has no shim figure.
var shimScenario = &Scenario{
	Key:   "shim",
	Title: "ctr run --rm /bin/true (containerd shim)",
	What: "`ctr run --rm` of /bin/true on the busybox image through containerd " +
		"v2.4.2 (built from its module and started privately by bench/run.sh): mxc " +
		"through containerd-shim-mxc-v2 (io.containerd.mxc.v2, its defaults), runc " +
		"through the same release's containerd-shim-runc-v2 (io.containerd.runc.v2, " +
		"`--runc-binary`); no policy. crun 1.8.1 refuses containerd 2.x's spec " +
		"(ociVersion 1.3), so n/a",
	Enabled:  func(b *Bench) bool { return b.Opts.Shim.Address != "" },
	Setup:    setupShim,
	Once:     onceShim,
	Teardown: teardownShim,
}

func init() { scenarios = append(scenarios, shimScenario) }

// ctr runs ctr against the bench's containerd and returns its combined
// output.
func (b *Bench) ctr(ctx context.Context, args ...string) (time.Duration, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	o := b.Opts.Shim
	cmd := exec.CommandContext(ctx, o.Ctr, append([]string{"--address", o.Address, "--namespace", o.Namespace}, args...)...)
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, out.Bytes(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return d, out.Bytes(), nil
}

func setupShim(_ context.Context, _ *Bench, rt *Runtime) (any, error) {
	if rt.Name == "crun" {
		return nil, ErrUnsupported
	}
	return nil, nil
}

func onceShim(ctx context.Context, b *Bench, rt *Runtime, _ any, i int) (time.Duration, error) {
	args := []string{"run", "--rm"}
	if rt.Name == "mxc" {
		args = append(args, "--runtime", "io.containerd.mxc.v2")
	} else {
		args = append(args, "--runtime", "io.containerd.runc.v2", "--runc-binary", rt.Bin)
	}
	args = append(args, b.Opts.Shim.Image, containerID(rt, "shim", i), "/bin/true")
	d, _, err := b.ctr(ctx, args...)
	return d, err
}

// teardownShim checks that every run removed its container and task.
func teardownShim(ctx context.Context, b *Bench, rt *Runtime, _ any) error {
	var left []string
	for _, what := range []string{"containers", "tasks"} {
		_, out, err := b.ctr(ctx, what, "ls", "--quiet")
		if err != nil {
			return err
		}
		for _, id := range strings.Fields(string(out)) {
			if strings.Contains(id, "-"+rt.Name+"-shim-") {
				left = append(left, what+" "+id)
			}
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("%s left behind: %s", rt.Name, strings.Join(left, ", "))
	}
	return nil
}
