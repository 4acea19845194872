package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// Checkpoint/restore would let an agent's memory leave the policy's
// boundary (and come back on another node under another policy); mxc does
// not support them, and says so instead of pretending.
var errNoCRIU = errors.New("checkpoint/restore is not supported by mxc-runtime")

var checkpointCommand = cli.Command{
	Name: "checkpoint", Usage: "not supported by mxc-runtime", ArgsUsage: "<container-id>",
	SkipFlagParsing: true,
	Action:          func(*cli.Context) error { return errNoCRIU },
}

var restoreCommand = cli.Command{
	Name: "restore", Usage: "not supported by mxc-runtime", ArgsUsage: "<container-id>",
	SkipFlagParsing: true,
	Action:          func(*cli.Context) error { return errNoCRIU },
}

func init() { register(&checkpointCommand); register(&restoreCommand) }
