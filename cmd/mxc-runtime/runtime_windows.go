package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/hcs"
)

// newRuntime builds the Windows (HCS) driver from the global flags.
func newRuntime(c *cli.Context) (*hcs.Runtime, error) {
	root, err := filepath.Abs(c.String("root"))
	if err != nil {
		return nil, err
	}
	if filepath.Dir(root) == root {
		return nil, errors.New("--root must not be a drive root")
	}
	// --config defaults to the Linux path; on Windows the node config lives
	// under ProgramData unless the user names one.
	cfg, explicit := c.String("config"), c.IsSet("config")
	if !explicit {
		cfg = hcs.DefaultConfigPath()
	}
	logFile := c.String("log")
	if logFile != "" {
		if logFile, err = filepath.Abs(logFile); err != nil {
			return nil, err
		}
	}
	return &hcs.Runtime{
		Root: root, ConfigPath: cfg, ConfigExplicit: explicit,
		LogFile: logFile, LogFormat: c.String("log-format"), Debug: c.Bool("debug"),
	}, nil
}

// callerStdio is the verb's own stdio, handed to the container process.
func callerStdio() hcs.Stdio { return hcs.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr} }

// noConsoleSocket refuses runc's --console-socket: Windows has no AF_UNIX
// pty hand-off; a terminal process gets a console through HCS instead.
func noConsoleSocket(c *cli.Context) error {
	if c.String("console-socket") != "" {
		return usageError{"--console-socket is not supported on Windows (process.terminal gets an HCS console on the caller's stdio)"}
	}
	return nil
}

func killContainer(c *cli.Context, id, sig string, all bool) error {
	rt, err := newRuntime(c)
	if err != nil {
		return err
	}
	return rt.Kill(id, sig, all)
}

// listContainers returns the table rows and the value `list --format json` prints.
func listContainers(c *cli.Context) ([]listRow, any, error) {
	rt, err := newRuntime(c)
	if err != nil {
		return nil, nil, err
	}
	list, err := rt.List()
	if err != nil {
		return nil, nil, err
	}
	rows := make([]listRow, 0, len(list))
	for _, s := range list {
		rows = append(rows, listRow{ID: s.ID, Pid: s.Pid, Status: s.Status, Bundle: s.Bundle, Created: s.Created, Owner: s.Owner})
	}
	return rows, list, nil
}
