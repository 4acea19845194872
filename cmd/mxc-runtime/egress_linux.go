package main

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/egress"
)

// egressGateCommand is the per-network-namespace DNS gate that
// egress.Setup starts detached; it is not meant to be run by hand.
var egressGateCommand = cli.Command{
	Name:   egress.GateVerb,
	Usage:  "run the egress DNS gate of one network namespace (internal)",
	Hidden: true,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "gate config written by egress.Setup", Required: true},
		&cli.IntFlag{Name: "ready-fd", Value: -1, Usage: "fd to report readiness on"},
		&cli.IntFlag{Name: "lifeline-fd", Value: -1, Usage: "fd whose EOF ends the gate"},
	},
	Action: func(c *cli.Context) error {
		opt := egress.GateOptions{ConfigPath: c.String("config")}
		if fd := c.Int("ready-fd"); fd >= 0 {
			opt.Ready = os.NewFile(uintptr(fd), "ready")
		}
		if fd := c.Int("lifeline-fd"); fd >= 0 {
			opt.Lifeline = os.NewFile(uintptr(fd), "lifeline")
		}
		// SIGTERM (Teardown) ends the gate cleanly.
		ctx, stop := signal.NotifyContext(c.Context, unix.SIGTERM, unix.SIGINT)
		defer stop()
		return egress.RunGate(ctx, opt)
	},
}

func init() { register(&egressGateCommand) }
