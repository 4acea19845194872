package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/egress"
)

// egressGateCommand is the per-network-namespace DNS gate that
// egress.Setup starts detached (when no policy monitor hosts it); it is
// not meant to be run by hand. Like policy-monitor it is dispatched before
// the CLI is built: it starts on the path of every create that filters
// egress, and lives as long as the container.
var egressGateCommand = cli.Command{
	Name:            egress.GateVerb,
	Usage:           "run the egress DNS gate of one network namespace (internal)",
	ArgsUsage:       "--cmd-fd N --ready-fd N [--lifeline-fd N] | --config PATH [--ready-fd N]",
	Hidden:          true,
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		os.Exit(egress.GateMain(c.Args().Slice()))
		return nil
	},
}

func init() {
	if len(os.Args) > 1 && os.Args[1] == egress.GateVerb {
		os.Exit(egress.GateMain(os.Args[2:]))
	}
	register(&egressGateCommand)
}
