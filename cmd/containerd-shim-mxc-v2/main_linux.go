// Command containerd-shim-mxc-v2 is the containerd shim for mxc
// (runtime_type "io.containerd.mxc.v2"); the logic lives in package shim.
package main

import (
	"mxc.dev/mxc/shim"
	// The clean-up containerd runs after every shim's exit, answered in C
	// before the Go runtime starts when the shim already deleted the task.
	_ "mxc.dev/mxc/shim/fastcleanup"
	// A task's start handed to a spare shim, also before the Go runtime.
	_ "mxc.dev/mxc/shim/faststart"
)

func main() { shim.Run() }
