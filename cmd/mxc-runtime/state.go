package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"
)

var stateCommand = cli.Command{
	Name:      "state",
	Usage:     "print the OCI state of a container",
	ArgsUsage: "<container-id>",
	Action: oneID(func(c *cli.Context, id string) error {
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		st, err := rt.State(id)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, string(b))
		return nil
	}),
}

func init() { register(&stateCommand) }
