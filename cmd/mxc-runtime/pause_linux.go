package main

import "github.com/urfave/cli/v2"

var pauseCommand = cli.Command{
	Name:      "pause",
	Usage:     "suspend all processes of a container (cgroup freezer)",
	ArgsUsage: "<container-id>",
	Action: oneID(func(c *cli.Context, id string) error {
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		return rt.Pause(id)
	}),
}

func init() { register(&pauseCommand) }
