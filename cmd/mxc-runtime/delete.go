package main

import "github.com/urfave/cli/v2"

var deleteCommand = cli.Command{
	Name:      "delete",
	Usage:     "delete a container and everything it holds (cgroups, egress filter, helpers, state)",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill the container if it still runs, and remove an interrupted create"},
	},
	Action: oneID(func(c *cli.Context, id string) error {
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		return rt.Delete(id, c.Bool("force"))
	}),
}

func init() { register(&deleteCommand) }
