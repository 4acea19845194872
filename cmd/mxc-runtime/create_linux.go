package main

import (
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/container"
)

var createFlags = []cli.Flag{
	&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "path to the OCI bundle"},
	&cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket receiving the pty master when process.terminal is true"},
	&cli.StringFlag{Name: "pidfd-socket", Usage: "accepted for runc compatibility; not supported", Hidden: true},
	&cli.StringFlag{Name: "pid-file", Usage: "write the container's init pid to this file"},
	&cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot_root (for ramdisk rootfs)"},
	&cli.BoolFlag{Name: "no-new-keyring", Usage: "do not create a new session keyring"},
	&cli.IntFlag{Name: "preserve-fds", Usage: "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N)"},
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
		opts, rt, err := createOpts(c)
		if err != nil {
			return err
		}
		return rt.Create(opts)
	},
}

func createOpts(c *cli.Context) (container.CreateOpts, *container.Runtime, error) {
	id, err := containerID(c)
	if err != nil {
		return container.CreateOpts{}, nil, err
	}
	if c.String("pidfd-socket") != "" {
		return container.CreateOpts{}, nil, usageError{"--pidfd-socket is not supported by mxc-runtime"}
	}
	rt, err := newRuntime(c)
	if err != nil {
		return container.CreateOpts{}, nil, err
	}
	return container.CreateOpts{
		ID:            id,
		Bundle:        c.String("bundle"),
		ConsoleSocket: c.String("console-socket"),
		PidFile:       c.String("pid-file"),
		NoPivot:       c.Bool("no-pivot"),
		NoNewKeyring:  c.Bool("no-new-keyring"),
		PreserveFDs:   c.Int("preserve-fds"),
	}, rt, nil
}

func init() { register(&createCommand) }
