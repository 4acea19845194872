package main

import (
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/hcs"
)

// createFlags are runc's create flags that mean something on Windows, plus
// runhcs's --shim-log.
var createFlags = []cli.Flag{
	&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "path to the OCI bundle"},
	&cli.StringFlag{Name: "pid-file", Usage: "write the pid of the container's shim (which waits on its init process) to this file"},
	&cli.StringFlag{Name: "shim-log", Usage: "log file for the container's shim (default: --log)"},
	&cli.StringFlag{Name: "console-socket", Usage: "not supported on Windows", Hidden: true},
}

var createCommand = cli.Command{
	Name:      "create",
	Usage:     "create a container (its process waits for `start`)",
	ArgsUsage: "<container-id>",
	Flags:     createFlags,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, true); err != nil {
			return err
		}
		id, opts, rt, err := createOpts(c)
		if err != nil {
			return err
		}
		return rt.Create(id, opts)
	},
}

func createOpts(c *cli.Context) (string, hcs.CreateOpts, *hcs.Runtime, error) {
	id, err := containerID(c)
	if err != nil {
		return "", hcs.CreateOpts{}, nil, err
	}
	if err := noConsoleSocket(c); err != nil {
		return "", hcs.CreateOpts{}, nil, err
	}
	rt, err := newRuntime(c)
	if err != nil {
		return "", hcs.CreateOpts{}, nil, err
	}
	return id, hcs.CreateOpts{
		Bundle:  c.String("bundle"),
		PidFile: c.String("pid-file"),
		ShimLog: c.String("shim-log"),
		Stdio:   callerStdio(),
	}, rt, nil
}

func init() { register(&createCommand) }
