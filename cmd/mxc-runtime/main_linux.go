package main

import (
	"os"

	_ "github.com/opencontainers/cgroups/devices" // device cgroup rules (v1 and v2 eBPF)
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // cgo: namespace setup before the Go runtime starts
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/internal/argv"
	"mxc.dev/mxc/internal/jsonwarm"
	"mxc.dev/mxc/internal/phasemark"
	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/linux/cgwarm"
	"mxc.dev/mxc/linux/inithello"
	"mxc.dev/mxc/linux/initmount"
	"mxc.dev/mxc/spec"
)

const defaultRoot = "/run/mxc"

func init() {
	// `mxc-runtime init` is libcontainer's container init, started by
	// libcontainer itself after nsenter's constructor joined the namespaces.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// mxc (issue 4, enforcement helper): swap the agent-exec placeholder fd
		// for the sealed /proc/self/exe before libcontainer closes fds and execs.
		if e := agentexec.FixupInitFDs(); e >= 0 {
			// The runtime may wait for this to program the container's
			// network namespace during the init's set-up (package
			// inithello): the hello socket sits right after agentexec's
			// two memfds, when the policy needs one (Send claims it
			// only if it is: internal/initfd).
			inithello.Send(e + 2)
		}
		// The runtime may ask for the cgroup v1 mounts during the hook
		// phase (package initmount): its socket is the last ExtraFile.
		initmount.Serve()
		libcontainer.Init()
	}
	// create and run: let the kernel's cgroup attach wait elapse while the
	// runtime starts up (see package cgwarm).
	phasemark.Mark("runtime: Go started")
	verb := argv.Verb(os.Args)
	cgwarm.Start(verb)
	warmJSON(verb)
}

// warmJSON builds encoding/json's tables for the types the verb is about
// to read or write while the runtime starts up (see package jsonwarm):
// create and run decode the spec and the policy, then encode
// libcontainer's config for the init and its state; the verbs that act on
// an existing container decode that state first.
func warmJSON(verb string) {
	if os.Getenv("MXC_JSON_WARM") == "0" {
		return
	}
	switch verb {
	case "create", "run":
		jsonwarm.Start(&specs.Spec{}, &libcontainer.State{}, &spec.AgentPolicy{})
	case "start", "exec", "kill", "delete", "state", "pause", "resume", "ps", "events", "update":
		jsonwarm.Start(&libcontainer.State{})
	}
}

func beforeOS(*cli.Context) error { return nil }

func printVersionExtra(*cli.Context) {}
