package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/enforce"
	"mxc.dev/mxc/linux/sandbox"
	"mxc.dev/mxc/spec"
)

// sandboxError exits with the sandbox's setup status (125), so a caller
// tells "the sandbox failed" from the command's own exit status.
type sandboxError struct{ error }

func (e sandboxError) ExitCode() int { return sandbox.ExitSetup }
func (e sandboxError) Unwrap() error { return e.error }

var sandboxCommand = cli.Command{
	Name:  "sandbox",
	Usage: "run a host command under an agent policy (process tier, no bundle)",
	Description: `The command sees the host's filesystem read-only except the policy's
readwritePaths, with its deniedPaths masked and (when it lists paths)
everything unlisted out of reach; it gets a network namespace with loopback
only, the agent seccomp profile, no_new_privs and the policy's capability
bound. Its exit status, signals, stdio and terminal pass through.

A policy that allows some egress (allow rules, or default allow with deny
rules) gives the command a network of its own instead (root only):
slirp4netns behind the same nftables table and DNS gate as a container;
the command then runs in a child of the sandbox, which tears the network
down when it exits. --audit appends the dns.deny and net.deny events.

Exit status 125 means the sandbox itself failed (bad policy, a rule this
host cannot enforce); 126/127 that the command could not be run.`,
	ArgsUsage: "--policy FILE [--] CMD [ARGS...]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "policy", Aliases: []string{"p"}, Usage: "agent policy file (YAML or JSON, mxc.dev/v1alpha1 or MXC 1.0.0)", Required: true},
		&cli.StringFlag{Name: "audit", Usage: "append the network's audit events (dns.deny, net.deny; JSON lines) to this file"},
	},
	Action: func(c *cli.Context) error {
		code, err := sandboxAction(c)
		if err != nil {
			return sandboxError{fmt.Errorf("sandbox: %w", err)}
		}
		return exitStatus(code)
	},
}

func sandboxAction(c *cli.Context) (int, error) {
	args := c.Args().Slice()
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return sandbox.ExitSetup, usageError{"sandbox: no command given"}
	}
	data, err := os.ReadFile(c.String("policy"))
	if err != nil {
		return sandbox.ExitSetup, fmt.Errorf("--policy: %w", err)
	}
	pol, notes, err := spec.ParsePolicy(data)
	if err != nil {
		return sandbox.ExitSetup, fmt.Errorf("--policy %s: %w", c.String("policy"), err)
	}
	nc, nodeData, err := readNodeConfig(c.String("config"))
	if err != nil {
		return sandbox.ExitSetup, err
	}
	eff, err := spec.NewEffective(pol, nc, []string{"file " + c.String("policy")}, notes)
	if err != nil {
		return sandbox.ExitSetup, fmt.Errorf("--policy %s: %w", c.String("policy"), err)
	}
	pl, err := sandbox.Compile(eff, nc != nil && nc.AllowDegraded)
	if err != nil {
		return sandbox.ExitSetup, err
	}
	if !pl.Egress && os.Geteuid() == 0 && sandbox.FastMode() != "off" {
		// The next sandbox of this policy runs without starting Go (see
		// linux/sandbox's plan cache); a plan that cannot be cached only
		// costs the next call this path again.
		key, err := sandbox.PlanKey(data, nodeData)
		if err == nil {
			err = sandbox.SavePlan(key, pl)
		}
		if err != nil {
			logrus.Debugf("sandbox: plan not cached: %v", err)
		}
	}
	if pl.Egress {
		exe, err := os.Executable()
		if err != nil {
			return sandbox.ExitSetup, err
		}
		// The DNS gate runs from mxc-monitor when it is installed here.
		pl.Net.Exe = enforce.HelperExe(exe)
		if nc != nil {
			pl.Net.DNS = nc.DNS
		}
		if a := c.String("audit"); a != "" {
			if pl.Net.AuditPath, err = filepath.Abs(a); err != nil {
				return sandbox.ExitSetup, fmt.Errorf("--audit: %w", err)
			}
		}
	}
	code, err := sandbox.Run(pl, args, os.Environ())
	if err != nil {
		if code == sandbox.ExitSetup {
			return code, err
		}
		// The command could not be run (126/127): say why, keep the status.
		fmt.Fprintf(os.Stderr, "mxc-runtime sandbox: %v\n", err)
		return code, nil
	}
	return code, nil
}

// readNodeConfig is enforce.LoadNodeConfig, also returning the file's
// bytes (nil when there is none), which key the sandbox's plan cache.
func readNodeConfig(path string) (*spec.NodeConfig, []byte, error) {
	if path == "" {
		return nil, nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("node config: %w", err)
	}
	nc, err := spec.ParseNodeConfig(b)
	if err != nil {
		return nil, nil, fmt.Errorf("node config %s: %w", path, err)
	}
	return nc, b, nil
}

// sandbox-stage is the child of a non-root sandbox (see package sandbox),
// dispatched before the CLI is built.
func init() {
	if len(os.Args) > 1 && os.Args[1] == sandbox.StageVerb {
		sandbox.StageMain(os.Args[2:])
	}
	register(&sandboxCommand)
}
