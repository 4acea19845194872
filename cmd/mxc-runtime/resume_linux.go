package main

import "github.com/urfave/cli/v2"

var resumeCommand = cli.Command{
	Name:      "resume",
	Usage:     "resume the processes of a paused container",
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
		return rt.Resume(id)
	},
}

func init() { register(&resumeCommand) }
