//go:build linux

package main

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// The cost of a page fault. It differs by an order of magnitude between
// the kinds of VM these benchmarks run on: ~1-3 us with hardware-assisted
// paging, ~10 us (25 with the unmap) under a hypervisor that shadows the
// guest's page tables (PVM: each fault and each page-table update is a
// trip through the host). A Go program takes several hundred faults to
// start, a fork copies and write-protects page tables, so on the second
// kind every runtime's figures grow, and the ones with more processes,
// more threads and more freshly touched memory grow most
// (docs/benchmarks.md, "Page faults"). faultProbe measures it so that a
// run says which kind of machine it ran on.

// faultProbePages is how many fresh anonymous pages one sample touches.
const faultProbePages = 1024

// faultProbe touches faultProbePages fresh pages of an anonymous mapping,
// n times, and returns the median time per page.
func faultProbe(n int) (time.Duration, error) {
	page := unix.Getpagesize()
	size := faultProbePages * page
	var samples []time.Duration
	for i := 0; i < n; i++ {
		m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return 0, fmt.Errorf("fault probe: %w", err)
		}
		t0 := time.Now()
		for off := 0; off < size; off += page {
			m[off] = 1
		}
		d := time.Since(t0)
		if err := unix.Munmap(m); err != nil {
			return 0, fmt.Errorf("fault probe: %w", err)
		}
		samples = append(samples, d/faultProbePages)
	}
	return Summarize(samples).Median, nil
}

// faultProbeText is the probe's line for the run's description.
func faultProbeText() string {
	d, err := faultProbe(5)
	if err != nil {
		return fmt.Sprintf("not measured (%v)", err)
	}
	return fmt.Sprintf("%.1f µs (median of 5 x %d first writes to fresh anonymous pages)", float64(d.Nanoseconds())/1000, faultProbePages)
}
