package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/container"
)

var stateCommand = cli.Command{
	Name:      "state",
	Usage:     "print the OCI state of a container",
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
		st, err := rt.State(id)
		if err != nil {
			return err
		}
		b, err := container.MarshalState(st)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, string(b))
		return nil
	},
}

func init() { register(&stateCommand) }
