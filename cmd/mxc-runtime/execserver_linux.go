package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/execsrv"
)

// exec-server manages a container's resident exec server, the other end
// of the exec fast path (see package execsrv, docs/design/exec.md). A
// foreground `exec` starts it by itself (MXC_EXEC_FAST decides for which
// containers); these subcommands exist for operators, tests and the
// benchmark. `exec-server serve`, the server itself, never reaches Go: the
// binary's C constructor runs it.
var execServerCommand = cli.Command{
	Name:   execsrv.ServerVerb,
	Usage:  "internal: start, stop or show a container's resident exec server (the exec fast path)",
	Hidden: true,
	Subcommands: []*cli.Command{
		{
			Name:      "start",
			Usage:     "start the exec server of a running container and wait until it is ready",
			ArgsUsage: "<container-id>",
			Action: func(c *cli.Context) error {
				rt, id, err := execServerArgs(c)
				if err != nil {
					return err
				}
				return rt.StartExecServer(id)
			},
		},
		{
			Name:      "stop",
			Usage:     "stop the exec server of a container (later execs take the normal path until one starts it again)",
			ArgsUsage: "<container-id>",
			Action: func(c *cli.Context) error {
				rt, id, err := execServerArgs(c)
				if err != nil {
					return err
				}
				return rt.StopExecServer(id)
			},
		},
		{
			Name:      "status",
			Usage:     "print the exec server's state as JSON",
			ArgsUsage: "<container-id>",
			Action: func(c *cli.Context) error {
				rt, id, err := execServerArgs(c)
				if err != nil {
					return err
				}
				pid, reason, err := rt.ExecServerStatus(id)
				if err != nil {
					return err
				}
				out := map[string]any{"running": pid > 0}
				if pid > 0 {
					out["pid"] = pid
				}
				if reason != "" {
					out["unavailable"] = reason
				}
				return json.NewEncoder(os.Stdout).Encode(out)
			},
		},
		{
			Name:   execsrv.ServeArg,
			Usage:  "the exec server itself (run inside the container by `start`)",
			Hidden: true,
			Action: func(*cli.Context) error {
				return fmt.Errorf("%s %s runs only inside a container, started by `%s start`", execsrv.ServerVerb, execsrv.ServeArg, execsrv.ServerVerb)
			},
		},
	},
}

func execServerArgs(c *cli.Context) (rt interface {
	StartExecServer(string) error
	StopExecServer(string) error
	ExecServerStatus(string) (int, string, error)
}, id string, err error) {
	if err := checkArgs(c, 1, true); err != nil {
		return nil, "", err
	}
	if id, err = containerID(c); err != nil {
		return nil, "", err
	}
	r, err := newRuntime(c)
	if err != nil {
		return nil, "", err
	}
	return r, id, nil
}

func init() { register(&execServerCommand) }
