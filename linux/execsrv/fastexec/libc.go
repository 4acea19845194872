//go:build linux && cgo

package fastexec

/*
static const char *mxc_libc(void)
{
#ifdef __GLIBC__
	return "glibc";
#else
	return "musl";
#endif
}
*/
import "C"

// Libc names the C library this binary was linked with: "musl" (`make
// build`) or "glibc" (`make build LIBC=glibc`, or a plain `go build`).
// `mxc-runtime features` reports it as io.mxc.libc.
func Libc() string { return C.GoString(C.mxc_libc()) }

// PreMonitor reports that the binary's constructor has the policy
// monitor's C stage (premonitor.c).
func PreMonitor() bool { return true }
