package main

import "github.com/urfave/cli/v2"

var killCommand = cli.Command{
	Name:      "kill",
	Usage:     "stop a container: KILL terminates its init (with --all, the whole container); TERM and INT shut it down gracefully",
	ArgsUsage: "<container-id> [signal]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "terminate all processes of the container"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, false); err != nil {
			return err
		}
		if c.NArg() > 2 {
			return usageError{"kill: requires a maximum of 2 arguments"}
		}
		id, err := containerID(c)
		if err != nil {
			return err
		}
		sig := c.Args().Get(1)
		if sig == "" {
			sig = "SIGTERM"
		}
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		return rt.Kill(id, sig, c.Bool("all"))
	},
}

func init() { register(&killCommand) }
