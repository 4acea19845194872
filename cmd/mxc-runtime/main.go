// Command mxc-runtime is an OCI runtime for AI agents: runc-compatible on the
// command line, enforcing an agent policy carried in io.mxc.* annotations.
//
// Each verb lives in its own file and registers itself with register(); OS
// specific verbs sit in _linux.go / _windows.go files. Behaviour lives in the
// packages under spec/, linux/ and hcs/; this package only parses flags.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

// Set by the Makefile (-ldflags -X).
var (
	version   = "0.1.0-dev"
	gitCommit = ""
)

// DefaultConfigPath is the node config; --config and MXC_CONFIG override it.
const DefaultConfigPath = "/etc/mxc/config.yaml"

var commands []*cli.Command

// noHelpArgument keeps urfave/cli v2 from reading a first argument "help"
// or "h" of a verb without subcommands as its help subcommand: `create
// --bundle B help` must create the container "help" (exiting 0 after
// printing the help would tell containerd the create succeeded), and
// `sandbox -- help` must run the command `help`. runc's urfave/cli v1 adds
// no such subcommand; `--help` / `-h` still print the verb's help.
func noHelpArgument(cmds []*cli.Command) {
	for _, c := range cmds {
		if len(c.Subcommands) == 0 {
			c.HideHelpCommand = true
		}
		noHelpArgument(c.Subcommands)
	}
}

// register adds a verb; called from init() of each verb's file.
func register(c *cli.Command) { commands = append(commands, c) }

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	noHelpArgument(commands)
	app := &cli.App{
		Name:    "mxc-runtime",
		Usage:   "OCI runtime for AI agents, enforcing an agent policy with the kernel",
		Version: version,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug", Usage: "enable debug logging"},
			&cli.StringFlag{Name: "log", Usage: "log file (default stderr)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.StringFlag{Name: "root", Value: defaultRoot, Usage: "root directory for container state (should be on tmpfs)"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "use systemd to manage cgroups (cgroupsPath slice:prefix:name)"},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "ignore cgroup permission errors: true, false or auto (accepted for runc compatibility)"},
			&cli.StringFlag{Name: "config", Value: DefaultConfigPath, EnvVars: []string{"MXC_CONFIG"}, Usage: "node config (default policy, ceiling)"},
		},
		Commands:             commands,
		Before:               before,
		EnableBashCompletion: true,
		// runc prints errors itself; so do we (see fatal), with runc's exit codes.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "mxc-runtime version %s\n", c.App.Version)
		if gitCommit != "" {
			fmt.Fprintf(c.App.Writer, "commit: %s\n", gitCommit)
		}
		fmt.Fprintf(c.App.Writer, "spec: %s\n", specs.Version)
		fmt.Fprintf(c.App.Writer, "go: %s\n", runtime.Version())
		printVersionExtra(c)
	}
	return app
}

func main() {
	app := newApp()
	if err := app.Run(os.Args); err != nil {
		fatal(err)
	}
}

// usageError marks errors about the command line (runc exits 1 for them too,
// but prints the usage hint).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func checkArgs(c *cli.Context, n int, exact bool) error {
	got := c.NArg()
	switch {
	case exact && got != n:
		return usageError{fmt.Sprintf("%s: %q requires exactly %d argument(s)", c.App.Name, c.Command.Name, n)}
	case !exact && got < n:
		return usageError{fmt.Sprintf("%s: %q requires a minimum of %d argument(s)", c.App.Name, c.Command.Name, n)}
	}
	return nil
}

// containerID returns the first argument, validated.
func containerID(c *cli.Context) (string, error) {
	id := c.Args().First()
	if id == "" {
		return "", usageError{"container id cannot be empty"}
	}
	if err := validateID(id); err != nil {
		return "", err
	}
	return id, nil
}

func validateID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\\\x00") || strings.Contains(id, "..") {
		return fmt.Errorf("invalid container id %q: must not be empty or contain '/', '\\\\' or '..'", id)
	}
	if len(id) > 1024 {
		return fmt.Errorf("invalid container id: longer than 1024 characters")
	}
	return nil
}
