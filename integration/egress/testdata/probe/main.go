//go:build linux

// Command probe is the lab's client (integration/egress/lab) as a static
// binary that the runtime tests copy into container root filesystems: the
// agent's view of the network, from inside the container.
package main

import (
	"os"

	"mxc.dev/mxc/integration/egress/lab"
)

func main() { os.Exit(lab.ClientMain(os.Args[1:])) }
