package main

import (
	"github.com/urfave/cli/v2"
)

var runCommand = cli.Command{
	Name:      "run",
	Usage:     "create and start a container; in the foreground, exit with its status",
	ArgsUsage: "<container-id>",
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the container's process"},
		&cli.BoolFlag{Name: "keep", Usage: "do not delete the container after it exits"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "disable the use of the subreaper used to reap reparented processes"},
	}, createFlags...),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, true); err != nil {
			return err
		}
		opts, rt, err := createOpts(c)
		if err != nil {
			return err
		}
		opts.Detach = c.Bool("detach")
		opts.Keep = c.Bool("keep")
		opts.NoSubreaper = c.Bool("no-subreaper")
		status, err := rt.Run(opts)
		if err != nil {
			return err
		}
		if status != 0 {
			return exitStatus(status)
		}
		return nil
	},
}

func init() { register(&runCommand) }
