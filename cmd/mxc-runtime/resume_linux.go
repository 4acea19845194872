package main

import "github.com/urfave/cli/v2"

var resumeCommand = cli.Command{
	Name:      "resume",
	Usage:     "resume the processes of a paused container",
	ArgsUsage: "<container-id>",
	Action: oneID(func(c *cli.Context, id string) error {
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		return rt.Resume(id)
	}),
}

func init() { register(&resumeCommand) }
