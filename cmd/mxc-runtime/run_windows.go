package main

import "github.com/urfave/cli/v2"

var runCommand = cli.Command{
	Name:      "run",
	Usage:     "create and start a container, wait for it and delete it",
	ArgsUsage: "<container-id>",
	Flags: append(append([]cli.Flag(nil), createFlags...),
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the container's process"},
		&cli.BoolFlag{Name: "keep", Usage: "do not delete the container after it exits"},
	),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, true); err != nil {
			return err
		}
		id, opts, rt, err := createOpts(c)
		if err != nil {
			return err
		}
		code, err := rt.Run(id, opts, c.Bool("detach"), c.Bool("keep"))
		if err != nil {
			return err
		}
		if code != 0 {
			return exitStatus(code)
		}
		return nil
	},
}

func init() { register(&runCommand) }
