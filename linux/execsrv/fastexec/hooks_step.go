//go:build linux && cgo

package fastexec

// #include <stdlib.h>
// #include <string.h>
// #include "fastexec.h"
//
// static char *mxc_step_arg(char **a, int i) { return a[i]; }
import "C"

import (
	"unsafe"
)

// This file exposes the C last step's and sandbox's logic to the
// package's tests (cgo is not allowed in _test.go files).

// decodePlan decodes a record file with C; on success it returns C's
// canonical re-encoding of what it decoded.
func decodePlan(data []byte, magic uint32) ([]byte, string, bool) {
	buf := C.CBytes(append(append([]byte{}, data...), 0))
	defer C.free(buf)
	var p C.struct_mxc_plan
	var cerr *C.char
	if C.mxc_decode_plan((*C.uchar)(buf), C.size_t(len(data)), C.uint32_t(magic), &p, &cerr) < 0 {
		return nil, C.GoString(cerr), false
	}
	defer C.mxc_free_plan(&p)
	var b C.struct_mxc_buf
	defer C.mxc_buf_free(&b)
	if C.mxc_encode_plan(&p, &b) < 0 {
		return nil, "encode", false
	}
	return C.GoBytes(unsafe.Pointer(b.p), C.int(b.len)), "", true
}

func sha256C(data []byte) [32]byte {
	buf := C.CBytes(append(append([]byte{}, data...), 0))
	defer C.free(buf)
	var out [32]byte
	C.mxc_sha256(buf, C.size_t(len(data)), (*C.uchar)(unsafe.Pointer(&out[0])))
	return out
}

func sandboxKeyC(policy, node []byte, exeID string) [32]byte {
	pb := C.CBytes(append(append([]byte{}, policy...), 0))
	defer C.free(pb)
	var nb unsafe.Pointer
	if node != nil {
		nb = C.CBytes(append(append([]byte{}, node...), 0))
		defer C.free(nb)
	}
	id := C.CString(exeID)
	defer C.free(unsafe.Pointer(id))
	var out [32]byte
	C.mxc_sandbox_key((*C.uchar)(pb), C.size_t(len(policy)), (*C.uchar)(nb), C.size_t(len(node)), id, (*C.uchar)(unsafe.Pointer(&out[0])))
	return out
}

func exeIdentityC(path string) string {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var st C.struct_stat
	if C.stat(cp, &st) < 0 {
		return ""
	}
	var buf [256]C.char
	C.mxc_exe_identity(&st, &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}

func goEnvironC(env []string) []string {
	a := newCArgv(env)
	defer a.free()
	out := C.mxc_go_environ(a.p)
	if out == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(out))
	res := []string{}
	for i := 0; C.mxc_step_arg(out, C.int(i)) != nil; i++ {
		res = append(res, C.GoString(C.mxc_step_arg(out, C.int(i))))
	}
	return res
}

func lookPathC(file, path string, acceptDot bool) (string, bool) {
	cf, cp, dot, free := lookPathArgs(file, path, acceptDot)
	defer free()
	var out *C.char
	if C.mxc_lookpath_dot(cf, cp, dot, &out) < 0 {
		return "", false
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoString(out), true
}

// lookPathArgs converts the lookup's arguments for C; free releases them.
func lookPathArgs(file, path string, acceptDot bool) (cf, cp *C.char, dot C.int, free func()) {
	cf, cp = C.CString(file), C.CString(path)
	if acceptDot {
		dot = 1
	}
	return cf, cp, dot, func() {
		C.free(unsafe.Pointer(cf))
		C.free(unsafe.Pointer(cp))
	}
}

// lookPathIntoC is lookPathC through mxc_lookpath_into (the exec
// server's child, which must not allocate) with a scratch buffer of exactly
// the size it asks for, followed by canary bytes that must stay intact.
func lookPathIntoC(file, path string, acceptDot bool) (string, bool, bool) {
	cf, cp, dot, free := lookPathArgs(file, path, acceptDot)
	defer free()
	half := C.mxc_lookpath_scratch(cf, cp)
	const canary = 64
	buf := (*C.char)(C.malloc(2*half + canary))
	defer C.free(unsafe.Pointer(buf))
	tail := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(buf), 2*half)), canary)
	for i := range tail {
		tail[i] = 0xa5
	}
	ok := C.mxc_lookpath_into(cf, cp, dot, buf, half) == 0
	intact := true
	for _, b := range tail {
		intact = intact && b == 0xa5
	}
	if !ok {
		return "", false, intact
	}
	return C.GoString(buf), true, intact
}

// parseAgentExecArgsC returns the fd, --server and the command.
func parseAgentExecArgsC(args []string) (int64, bool, []string, bool) {
	a := newCArgv(args)
	defer a.free()
	var fd C.long
	var server, cmd C.int
	if C.mxc_parse_agentexec_args(C.int(len(args)), a.p, &fd, &server, &cmd) < 0 {
		return 0, false, nil, false
	}
	return int64(fd), server != 0, append([]string{}, args[int(cmd):]...), true
}

type sandboxCmdline struct {
	Policy, Config string
	Argv           []string
}

func parseSandboxCmdlineC(args, env []string) (*sandboxCmdline, bool) {
	a, e := newCArgv(args), newCArgv(env)
	defer a.free()
	defer e.free()
	var c C.struct_mxc_sbcmd
	if C.mxc_parse_sandbox_cmdline(C.int(len(args)), a.p, e.p, &c) == 0 {
		return nil, false
	}
	return &sandboxCmdline{Policy: C.GoString(c.policy), Config: C.GoString(c.config), Argv: goStrings(c.argv, int(c.argc))}, true
}

// goGetwdC returns the directory (empty: Go's Getwd fails) and whether C
// could tell.
func goGetwdC(env []string) (string, bool) {
	e := newCArgv(env)
	defer e.free()
	var out *C.char
	if C.mxc_go_getwd(e.p, &out) == 0 {
		return "", false
	}
	if out == nil {
		return "", true
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoString(out), true
}

const (
	cMaxKnownABI = int(C.MXC_LL_MAX_ABI)
	cMagicConfig = uint32(C.MXC_REC_MAGIC_CONFIG)
	cMagicSB     = uint32(C.MXC_REC_MAGIC_SANDBOX)
)
