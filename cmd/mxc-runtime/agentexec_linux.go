package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/agentexec"
)

// agent-exec is the agent's last step inside the container (see package
// agentexec): libcontainer execs it instead of the agent's program.
//
// It is dispatched from init(), before the CLI is built, because it runs
// for every process an agent container starts: skipping flag parsing and
// command setup keeps it cheap. The registered command only documents it.
func init() {
	if len(os.Args) > 1 && os.Args[1] == agentexec.Verb {
		agentexec.Main(os.Args[2:])
	}
	register(&agentExecCommand)
}

var agentExecCommand = cli.Command{
	Name:            agentexec.Verb,
	Usage:           "internal: apply the agent's Landlock and seccomp rules, then exec the program",
	ArgsUsage:       "--config-fd N -- CMD [ARGS...]",
	Hidden:          true,
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		agentexec.Main(c.Args().Slice())
		return nil
	},
}
