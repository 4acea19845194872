package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/container"
	"mxc.dev/mxc/linux/enforce"
	"mxc.dev/mxc/linux/execsrv/fastexec"
	"mxc.dev/mxc/linux/monitor"
)

// newPolicyEngine returns the engine that resolves and enforces agent
// policies: the node config is read from --config (a missing file means no
// node config: containers without io.mxc.* annotations run as plain OCI
// containers).
func newPolicyEngine(c *cli.Context, rt *container.Runtime) (container.PolicyEngine, error) {
	nc, err := enforce.LoadNodeConfig(c.String("config"))
	if err != nil {
		return nil, err
	}
	// PreMonitor: this binary links package fastexec, whose constructor
	// is the monitor's C stage; rt.Exe is this binary.
	return enforce.New(enforce.Options{Node: nc, Root: rt.Root, Exe: rt.Exe, PreMonitor: fastexec.PreMonitor()})
}

// policy-monitor is the per-container helper the engine starts (timeout,
// oom and fs.deny events). Like agent-exec it is dispatched before the CLI
// is built: it lives as long as the container and should stay small.
func init() {
	if len(os.Args) > 1 && os.Args[1] == monitor.Verb {
		os.Exit(monitor.Main(os.Args[2:]))
	}
	register(&policyMonitorCommand)
}

var policyMonitorCommand = cli.Command{
	Name:            monitor.Verb,
	Usage:           "internal: watch one agent container (timeout, oom, fs.deny)",
	ArgsUsage:       "CONFIG",
	Hidden:          true,
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		os.Exit(monitor.Main(c.Args().Slice()))
		return nil
	},
}

// policy-ensure restarts a running container's policy monitor (and the
// egress gate it hosts) when it died; the mxc shim calls it when it sees
// the monitor exit before the container does. An exec on the normal path
// does the same on its way.
var policyEnsureCommand = cli.Command{
	Name:      "policy-ensure",
	Usage:     "internal: restart a running container's policy monitor and egress gate if they died",
	ArgsUsage: "<container-id>",
	Hidden:    true,
	Action: oneID(func(c *cli.Context, id string) error {
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		return r.EnsureHelpers(id)
	}),
}

func init() { register(&policyEnsureCommand) }
