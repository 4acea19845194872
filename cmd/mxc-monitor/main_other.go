//go:build !linux

// mxc-monitor exists on Linux only: on Windows the HCS driver has no
// per-container helper process.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "mxc-monitor: Linux only")
	os.Exit(2)
}
