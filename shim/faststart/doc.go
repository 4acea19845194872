//go:build linux && cgo

// Package faststart hands containerd's `containerd-shim-mxc-v2 ... start`
// to a spare shim (package shim, spare_linux.go) from a constructor that
// runs before the Go runtime: neither the start process's nor the
// long-running shim's Go start-up (~3 ms each here) is then on the path
// of a task's creation.
//
// The constructor recognises containerd's start command line, connects to
// the spare of that containerd (SpareDir, named by a hash of the -address),
// sends it the command line, environment, working directory, the
// start binary's identity and the bootstrap parameters read from stdin,
// and writes the spare's answer (the BootstrapResult) to stdout. When the
// spare took the start and is no longer a spare, it spawns the next one.
//
// It hands over to the Go start whenever nothing was done: no spare, a
// spare that declines (another shim binary, SCHED_CORE, parameters of an
// older containerd, MXC_SHIM_SPARE=0 in the environment the spare got), a
// spare that closed without reading. The bytes read from stdin are then
// given back to the Go start on a memfd at fd 0. MXC_SHIM_SPARE=0 turns it
// off; MXC_SHIM_SPARE_DEBUG=/path appends to that file why it handed over
// (not stderr: containerd reads the start's stderr with its stdout as the
// answer).
//
// In a spare (the binary run with -mxc-spare), the constructor holds fds 3
// and 4 on /dev/null so that the Go runtime leaves them free for the
// task's sockets, where the runc shim code looks for them.
package faststart

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter -std=gnu11 -I${SRCDIR}/../../internal/ctorargs
// #include <stdlib.h>
// int mxc_spare_path(const char *address, char *out, size_t size);
import "C"

import (
	"unsafe"

	// containerd's command line is read by its C (mxc_shim_argv).
	_ "mxc.dev/mxc/shim/fastcleanup"
)

// sparePath is the C side's spare socket for address (for the test that
// it is package shim's SparePath).
func sparePath(address string) string {
	ca := C.CString(address)
	defer C.free(unsafe.Pointer(ca))
	var out [256]C.char
	if C.mxc_spare_path(ca, &out[0], C.size_t(len(out))) != 0 {
		return ""
	}
	return C.GoString(&out[0])
}
