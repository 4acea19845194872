//go:build !linux

// Command containerd-shim-mxc-v2 is Linux-only: on Windows containerd runs
// containers through hcsshim's containerd-shim-runhcs-v1 (see docs).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "containerd-shim-mxc-v2: Linux only")
	os.Exit(1)
}
