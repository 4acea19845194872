//go:build !linux

// Command egress benchmarks the Linux egress filter; it only runs on Linux.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/egress: the egress filter is Linux-only")
	os.Exit(1)
}
