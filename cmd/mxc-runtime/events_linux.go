package main

import (
	"context"
	"os"
	"os/signal"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var eventsCommand = cli.Command{
	Name:      "events",
	Usage:     "print container events: stats, OOM, and with --audit the agent policy's audit events",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "stats interval"},
		&cli.BoolFlag{Name: "stats", Usage: "print the container's stats once and exit"},
		&cli.BoolFlag{Name: "audit", Usage: "print the audit events (exec, fs.deny, net.deny, dns.deny, oom, timeout) and follow new ones"},
		&cli.BoolFlag{Name: "no-follow", Usage: "with --audit: print the events so far and exit"},
	},
	Action: oneID(func(c *cli.Context, id string) error {
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
		defer stop()
		if c.Bool("audit") {
			return rt.AuditEvents(ctx, id, !c.Bool("no-follow"), c.App.Writer)
		}
		return rt.Events(ctx, id, c.Duration("interval"), c.Bool("stats"), c.App.Writer)
	}),
}

func init() { register(&eventsCommand) }
