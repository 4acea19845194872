//go:build !linux || !cgo

// Package faststart hands the shim's start to a spare, in C; it exists
// only on Linux with cgo (see doc.go). Elsewhere importing it does nothing.
package faststart
