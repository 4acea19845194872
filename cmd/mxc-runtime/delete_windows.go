package main

import "github.com/urfave/cli/v2"

var deleteCommand = cli.Command{
	Name:      "delete",
	Usage:     "delete a stopped container and everything it holds",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "terminate the container if it still runs, and remove an interrupted create"},
	},
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
		return rt.Delete(id, c.Bool("force"))
	},
}

func init() { register(&deleteCommand) }
