//go:build linux && cgo

// Package fastcleanup is the containerd shim's clean-up (`shim delete`)
// in C, for the case the shim has already dealt with: a constructor that
// runs before the Go runtime and answers from the task's bundle, so that
// the shim binary's ~3 ms Go start-up is not paid on every container
// removal.
//
// containerd runs `containerd-shim-mxc-v2 ... delete` after every shim
// exits, with the task's bundle as the working directory, and waits for
// it before `ctr run --rm`, a CRI container removal or a task deletion
// returns (core/runtime/v2: shim.Delete waits for the ttrpc client's
// close callback, which runs the binary's delete). When the shim's own
// delete of the task succeeded, it left the DeleteResponse it answered
// with, protobuf-encoded, in the bundle's marker file (package shim,
// DeletedMarker): the container and every piece of host state keyed by
// its id are gone, and the clean-up's answer is that response. This
// constructor writes it to stdout and exits.
//
// It hands over to the Go shim (mxcManager.Stop, which reads the same
// marker or runs the runtime's delete) whenever anything differs from
// the case above: a command line of another shape, no marker, an empty
// marker (written by an older shim), an id that is not one path
// component, or a mount left at or below the bundle's rootfs (which the
// Go path unmounts). MXC_SHIM_FAST_CLEANUP=0 turns it off;
// =require makes a hand-over an error (tests); MXC_SHIM_FAST_CLEANUP_DEBUG=1
// says on stderr why it handed over.
//
// The shim is built with cgo for this (and the netgo and osusergo tags,
// without which cgo would bring the C resolver's start-up cost into every
// shim process).
package fastcleanup

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter -std=gnu11 -I${SRCDIR}/../../internal/ctorargs
import "C"
