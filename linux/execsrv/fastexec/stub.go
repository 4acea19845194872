//go:build !linux || !cgo

// Package fastexec is the C half of mxc's exec fast path; it exists only
// on Linux with cgo (see doc.go). Elsewhere importing it does nothing.
package fastexec

// Libc is "" without cgo: no C library is linked in.
func Libc() string { return "" }

// PreMonitor is false without cgo: no C stage of the policy monitor.
func PreMonitor() bool { return false }
