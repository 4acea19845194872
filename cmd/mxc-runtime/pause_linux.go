package main

import "github.com/urfave/cli/v2"

var pauseCommand = cli.Command{
	Name:      "pause",
	Usage:     "suspend all processes of a container (cgroup freezer)",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, true); err != nil {
			return err
		}
		id, err := containerID(c)
		if err != nil {
			return err
		}
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		return rt.Pause(id)
	},
}

func init() { register(&pauseCommand) }
