// Command containerd-shim-mxc-v2 is the containerd shim for mxc
// (runtime_type "io.containerd.mxc.v2"); the logic lives in package shim.
package main

import "mxc.dev/mxc/shim"

func main() { shim.Run() }
