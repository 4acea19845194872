package main

import (
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/container"
)

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
		raw := c.Args().Get(1)
		if raw == "" {
			raw = "SIGTERM"
		}
		sig, err := container.ParseSignal(raw)
		if err != nil {
			return err
		}
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		return rt.Kill(id, sig, c.Bool("all"))
	},
}

func init() { register(&killCommand) }
