package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/container"
)

// execFailed is runc's exit status when exec itself fails (not the process).
const execFailed = 255

var execCommand = cli.Command{
	Name:      "exec",
	Usage:     "run a new process inside a container",
	ArgsUsage: "<container-id> <command> [args...]  |  --process process.json <container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket receiving the pty master"},
		&cli.StringFlag{Name: "pidfd-socket", Hidden: true},
		&cli.StringFlag{Name: "cwd", Usage: "working directory in the container"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID]"},
		&cli.Int64SliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional gids"},
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "path to a process.json"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the process"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the process id to this file"},
		&cli.StringFlag{Name: "process-label", Usage: "SELinux label (unsupported: must be empty)"},
		&cli.StringFlag{Name: "apparmor", Usage: "AppArmor profile (unsupported: must be empty)"},
		&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs for the process"},
		&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability (bounded by the agent policy)"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N additional file descriptors to the process"},
		&cli.StringSliceFlag{Name: "cgroup", Usage: "run the process in an existing sub-cgroup: [<controller>:]<cgroup>"},
		&cli.BoolFlag{Name: "ignore-paused", Usage: "allow exec in a paused container"},
	},
	Action: func(c *cli.Context) error {
		status, err := execAction(c)
		if err != nil {
			return execError{fmt.Errorf("exec failed: %w", err)}
		}
		return exitStatus(status)
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
	if c.String("pidfd-socket") != "" {
		return -1, usageError{"--pidfd-socket is not supported by mxc-runtime"}
	}
	if c.String("process-label") != "" || c.String("apparmor") != "" {
		return -1, fmt.Errorf("--process-label and --apparmor are not supported on this host")
	}
	sub, err := subCgroups(c.StringSlice("cgroup"))
	if err != nil {
		return -1, err
	}
	rt, err := newRuntime(c)
	if err != nil {
		return -1, err
	}
	o := container.ExecOpts{
		ID:            id,
		ProcessFile:   c.String("process"),
		Args:          c.Args().Slice()[1:],
		Tty:           c.Bool("tty"),
		ConsoleSocket: c.String("console-socket"),
		Detach:        c.Bool("detach"),
		PidFile:       c.String("pid-file"),
		Cwd:           c.String("cwd"),
		Env:           c.StringSlice("env"),
		User:          c.String("user"),
		AdditionalGID: c.Int64Slice("additional-gids"),
		Caps:          c.StringSlice("cap"),
		PreserveFDs:   c.Int("preserve-fds"),
		IgnorePaused:  c.Bool("ignore-paused"),
		SubCgroups:    sub,
	}
	if c.IsSet("no-new-privs") {
		v := c.Bool("no-new-privs")
		o.NoNewPrivs = &v
	}
	return rt.Exec(o)
}

func subCgroups(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, a := range args {
		ctrls, path, ok := strings.Cut(a, ":")
		if !ok {
			if len(args) != 1 {
				return nil, fmt.Errorf("--cgroup %q: missing <controller>: prefix", a)
			}
			out[""] = a
			continue
		}
		for _, ctrl := range strings.Split(ctrls, ",") {
			if ctrl == "" {
				return nil, fmt.Errorf("--cgroup %q: empty controller", a)
			}
			if _, dup := out[ctrl]; dup {
				return nil, fmt.Errorf("--cgroup: controller %s given twice", ctrl)
			}
			out[ctrl] = path
		}
	}
	return out, nil
}

func init() { register(&execCommand) }
