// Package jsonwarm takes encoding/json's first-use cost for a type off the
// caller's path.
//
// The first time a process encodes or decodes a type, encoding/json walks
// the whole type graph by reflection and caches a table per struct type.
// For the OCI spec and libcontainer's config and state (hundreds of
// struct types between them) that is 3-4 ms of CPU in every mxc-runtime
// process that creates a container, measured with perf (docs/benchmarks.md),
// spent on the main goroutine right when the spec is read and when the
// config goes to the container's init. mxc-runtime is a short-lived
// process on a machine whose other core is mostly idle during a create, so
// building the tables in a background goroutine at start-up hides most of
// that time. Nothing is lost if the caller gets there first: the caches are
// per type and safe for concurrent use, and whichever goroutine builds a
// table first stores it.
package jsonwarm

import "encoding/json"

// Start builds encoding/json's tables for the types of vs (pointers to
// zero values), in order, in one background goroutine. Encoding a value
// builds the encoder of every type reachable from it, and with those the
// field tables the decoder uses too.
func Start(vs ...any) {
	if len(vs) == 0 {
		return
	}
	go Warm(vs...)
}

// Warm is Start on the caller's goroutine.
func Warm(vs ...any) {
	for _, v := range vs {
		_, _ = json.Marshal(v)
	}
}
