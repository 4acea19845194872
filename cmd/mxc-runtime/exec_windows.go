package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/hcs"
)

// execFailed is runc's exit status when exec itself fails (not the process).
const execFailed = 255

var execCommand = cli.Command{
	Name:      "exec",
	Usage:     "run a new process inside a container",
	ArgsUsage: "<container-id> <command> [args...]  |  --process process.json <container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "cwd", Usage: "working directory in the container"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the process a console"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user name in the container (ContainerUser, ContainerAdministrator, ...)"},
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "path to a process.json"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the process"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the pid of the process's shim to this file"},
		&cli.StringFlag{Name: "shim-log", Usage: "log file for the process's shim (default: --log)"},
		&cli.StringFlag{Name: "console-socket", Usage: "not supported on Windows", Hidden: true},
	},
	Action: func(c *cli.Context) error {
		status, err := execAction(c)
		if err != nil {
			return execError{fmt.Errorf("exec failed: %w", err)}
		}
		if status != 0 {
			return exitStatus(status)
		}
		return nil
	},
}

// execError exits with runc's 255 so callers can tell exec failed from the
// process exiting non-zero.
type execError struct{ error }

func (e execError) ExitCode() int { return execFailed }
func (e execError) Unwrap() error { return e.error }

func execAction(c *cli.Context) (int, error) {
	if err := checkArgs(c, 1, false); err != nil {
		return -1, err
	}
	id, err := containerID(c)
	if err != nil {
		return -1, err
	}
	if err := noConsoleSocket(c); err != nil {
		return -1, err
	}
	rt, err := newRuntime(c)
	if err != nil {
		return -1, err
	}
	p, err := execProcess(c, rt, id)
	if err != nil {
		return -1, err
	}
	return rt.Exec(id, hcs.ExecOpts{
		Process: p,
		Detach:  c.Bool("detach"),
		PidFile: c.String("pid-file"),
		ShimLog: c.String("shim-log"),
		Stdio:   callerStdio(),
	})
}

// execProcess is --process's document, or the container's init process
// with the command line and flags applied (as runhcs does).
func execProcess(c *cli.Context, rt *hcs.Runtime, id string) (*specs.Process, error) {
	if path := c.String("process"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("--process %s: %w", path, err)
		}
		if len(p.Args) == 0 && p.CommandLine == "" {
			return nil, fmt.Errorf("--process %s: args must not be empty", path)
		}
		return &p, nil
	}
	if c.NArg() < 2 {
		return nil, usageError{"exec: a command is required (or --process process.json)"}
	}
	p, err := rt.InitProcess(id)
	if err != nil {
		return nil, err
	}
	p.Args = c.Args().Slice()[1:]
	if cwd := c.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	p.Env = append(p.Env, c.StringSlice("env")...)
	if c.IsSet("tty") {
		p.Terminal = c.Bool("tty")
	}
	if u := c.String("user"); u != "" {
		p.User.Username = u
	}
	return p, nil
}

func init() { register(&execCommand) }
