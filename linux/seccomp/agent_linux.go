//go:build linux

package seccomp

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InstallAgent loads the agent profile on the calling thread. On the
// architectures it was precompiled for it loads the cBPF program directly
// (generated from AgentProfile with libseccomp; precompiled_test.go checks
// it is current), which spares every agent process libseccomp's ~1 ms of
// compilation; elsewhere it compiles through libcontainer.
func InstallAgent(o Options) error {
	if prog, ok := precompiled[precompiledKey(o)]; ok && runtime.GOARCH == precompiledArch {
		return loadBPF(prog)
	}
	return Install(AgentProfile(o))
}

func precompiledKey(o Options) string {
	return fmt.Sprintf("ptrace=%t,audit=%t", o.AllowPtrace, o.AuditOnly)
}

func loadBPF(b64 string) error {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw)%8 != 0 || len(raw) == 0 {
		return fmt.Errorf("seccomp: corrupt precompiled program")
	}
	prog := make([]unix.SockFilter, len(raw)/8)
	for i := range prog {
		b := raw[i*8:]
		prog[i] = unix.SockFilter{
			Code: uint16(b[0]) | uint16(b[1])<<8,
			Jt:   b[2],
			Jf:   b[3],
			K:    uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24,
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("seccomp: load the agent filter: %w", err)
	}
	runtime.KeepAlive(prog)
	return nil
}
