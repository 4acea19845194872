package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/hcs"
)

// shimCommand is the per-process shim create and exec launch (as runhcs's
// `shim`): it holds the process's stdio and waits on it. Not for users.
var shimCommand = cli.Command{
	Name:      "shim",
	Usage:     "internal: hold a container process's stdio and wait on it",
	ArgsUsage: "<container-id>",
	Hidden:    true,
	Flags: []cli.Flag{
		&cli.Uint64Flag{Name: "stdin", Hidden: true},
		&cli.Uint64Flag{Name: "stdout", Hidden: true},
		&cli.Uint64Flag{Name: "stderr", Hidden: true},
		&cli.BoolFlag{Name: "exec", Hidden: true},
	},
	Action: oneID(func(c *cli.Context, id string) error {
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		handle := func(name string) *os.File {
			if h := c.Uint64(name); h != 0 {
				return os.NewFile(uintptr(h), name)
			}
			return nil
		}
		// stdout is the channel back to the verb that launched the shim;
		// stdin carries exec's process spec.
		code, err := rt.Shim(hcs.ShimOpts{
			ID:      id,
			Exec:    c.Bool("exec"),
			Stdio:   hcs.Stdio{Stdin: handle("stdin"), Stdout: handle("stdout"), Stderr: handle("stderr")},
			Control: os.Stdout,
			Data:    os.Stdin,
		})
		if err != nil {
			return err
		}
		if code < 0 {
			code = 255 // exit status unknown
		}
		if code != 0 {
			return exitStatus(code)
		}
		return nil
	}),
}

func init() { register(&shimCommand) }
