package main

import "github.com/urfave/cli/v2"

var killCommand = cli.Command{
	Name:      "kill",
	Usage:     "send a signal (default SIGTERM) to the container's init, or with --all to all its processes",
	ArgsUsage: "<container-id> [signal]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "send the signal to all processes of the container"},
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
		return killContainer(c, id, sig, c.Bool("all"))
	},
}

func init() { register(&killCommand) }
