package main

import "github.com/urfave/cli/v2"

var startCommand = cli.Command{
	Name:      "start",
	Usage:     "start the process of a created container",
	ArgsUsage: "<container-id>",
	Action: oneID(func(c *cli.Context, id string) error {
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		return rt.Start(id)
	}),
}

func init() { register(&startCommand) }
