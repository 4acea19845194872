//go:build !linux || !cgo

// Package fastcleanup is the shim's clean-up in C; it exists only on
// Linux with cgo (see doc.go). Elsewhere importing it does nothing.
package fastcleanup
