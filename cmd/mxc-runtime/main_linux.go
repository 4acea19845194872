package main

import (
	"os"

	_ "github.com/opencontainers/cgroups/devices" // device cgroup rules (v1 and v2 eBPF)
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // cgo: namespace setup before the Go runtime starts
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/linux/cgwarm"
)

const defaultRoot = "/run/mxc"

func init() {
	// `mxc-runtime init` is libcontainer's container init, started by
	// libcontainer itself after nsenter's constructor joined the namespaces.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// mxc (issue 4, enforcement helper): swap the agent-exec placeholder fd
		// for the sealed /proc/self/exe before libcontainer closes fds and execs.
		agentexec.FixupInitFDs()
		libcontainer.Init()
	}
	// create and run: let the kernel's cgroup attach wait elapse while the
	// runtime starts up (see package cgwarm).
	cgwarm.Start(os.Args)
}

func beforeOS(*cli.Context) error { return nil }

func printVersionExtra(*cli.Context) {}
