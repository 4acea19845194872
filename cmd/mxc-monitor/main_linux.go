// mxc-monitor is the process each policy container keeps beside it: the
// policy monitor (timeout, oom and fs.deny events), which also hosts the
// container's egress DNS gate, and the gate on its own (a pod's, or a
// sandbox's). mxc-runtime starts it from the directory it runs from; it
// does the same work as mxc-runtime's hidden verbs of the same names, in a
// binary without libcontainer and the CLI: half the size, so half as much
// binary resident for every container's life (docs/network.md, "Memory").
package main

import (
	"fmt"
	"os"

	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/linux/monitor"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case monitor.Verb:
		os.Exit(monitor.Main(os.Args[2:]))
	case egress.GateVerb:
		os.Exit(egress.GateMain(os.Args[2:]))
	case "--version", "-v":
		fmt.Printf("mxc-monitor version %s\ncommit: %s\n", version, gitCommit)
		os.Exit(0)
	default:
		usage()
	}
}

// Set with -ldflags -X, as mxc-runtime's.
var (
	version   = "dev"
	gitCommit = ""
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s %s CONFIG | %s ARGS... (started by mxc-runtime; not meant to be run by hand)\n", os.Args[0], monitor.Verb, egress.GateVerb)
	os.Exit(2)
}
