//go:build linux && cgo

package fastexec

// #include <stdlib.h>
// #include "fastexec.h"
//
// static char **mxc_alloc_argv(int n) { return calloc((size_t)n + 1, sizeof(char *)); }
// static void mxc_set_arg(char **a, int i, char *s) { a[i] = s; }
// static char *mxc_get_arg(char **a, int i) { return a[i]; }
import "C"

import (
	"unsafe"
)

// This file exposes the C logic to the package's tests (cgo is not
// allowed in _test.go files). Nothing else calls it.

type cArgv struct {
	p    **C.char
	strs []*C.char
}

func newCArgv(args []string) *cArgv {
	a := &cArgv{p: C.mxc_alloc_argv(C.int(len(args)))}
	for i, s := range args {
		cs := C.CString(s)
		a.strs = append(a.strs, cs)
		C.mxc_set_arg(a.p, C.int(i), cs)
	}
	return a
}

func (a *cArgv) free() {
	for _, s := range a.strs {
		C.free(unsafe.Pointer(s))
	}
	C.free(unsafe.Pointer(a.p))
}

func goStrings(p **C.char, n int) []string {
	out := []string{}
	for i := 0; i < n; i++ {
		out = append(out, C.GoString(C.mxc_get_arg(p, C.int(i))))
	}
	return out
}

// cmdline is what mxc_parse_cmdline extracts.
type cmdline struct {
	Root, Log, Cwd, ID string
	Env, Argv          []string
}

func parseCommandLine(args []string, cwd string) (*cmdline, bool) {
	a := newCArgv(args)
	defer a.free()
	var ccwd *C.char
	if cwd != "" {
		ccwd = C.CString(cwd)
		defer C.free(unsafe.Pointer(ccwd))
	}
	var cl C.struct_mxc_cmdline
	if C.mxc_parse_cmdline(C.int(len(args)), a.p, ccwd, &cl) == 0 {
		return nil, false
	}
	defer C.mxc_free_cmdline(&cl)
	out := &cmdline{Root: C.GoString(cl.root), ID: C.GoString(cl.id)}
	if cl.log != nil {
		out.Log = C.GoString(cl.log)
	}
	if cl.cwd != nil {
		out.Cwd = C.GoString(cl.cwd)
	}
	out.Env = goStrings(cl.env, int(cl.envc))
	out.Argv = goStrings(cl.argv, int(cl.argc))
	return out, true
}

func encodeRequest(cwd string, argv, env []string) ([]byte, bool) {
	av, ev := newCArgv(argv), newCArgv(env)
	defer av.free()
	defer ev.free()
	r := C.struct_mxc_request{argc: C.int(len(argv)), argv: av.p, envc: C.int(len(env)), env: ev.p}
	if cwd != "" {
		r.cwd = C.CString(cwd)
		defer C.free(unsafe.Pointer(r.cwd))
	}
	var b C.struct_mxc_buf
	defer C.mxc_buf_free(&b)
	if C.mxc_encode_request(&r, &b) < 0 {
		return nil, false
	}
	return C.GoBytes(unsafe.Pointer(b.p), C.int(b.len)), true
}

type request struct {
	Cwd       string
	Argv, Env []string
}

func decodeRequest(data []byte) (*request, bool) {
	buf := C.CBytes(append(data, 0)) // never empty, for malloc
	defer C.free(buf)
	var r C.struct_mxc_request
	if C.mxc_decode_request((*C.char)(buf), C.size_t(len(data)), &r) < 0 {
		return nil, false
	}
	defer C.mxc_free_request(&r)
	out := &request{Argv: goStrings(r.argv, int(r.argc)), Env: goStrings(r.env, int(r.envc))}
	if r.cwd != nil {
		out.Cwd = C.GoString(r.cwd)
	}
	return out, true
}

func jsonString(s string) string {
	cs := C.CBytes(append([]byte(s), 0))
	defer C.free(cs)
	var b C.struct_mxc_buf
	defer C.mxc_buf_free(&b)
	C.mxc_buf_json(&b, (*C.char)(cs), C.size_t(len(s)))
	return C.GoStringN(b.p, C.int(b.len))
}

func trimSpace(s string) string {
	cs := C.CBytes(append([]byte(s), 0))
	defer C.free(cs)
	var st, en C.size_t
	C.mxc_trim_space((*C.char)(cs), C.size_t(len(s)), &st, &en)
	return s[st:en]
}

func cleanPath(s string) string {
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	out := C.mxc_clean_path(cs)
	defer C.free(unsafe.Pointer(out))
	return C.GoString(out)
}

func dedupEnv(env []string) (out []string, homeSet bool, errMsg string) {
	in := newCArgv(env)
	defer in.free()
	res := C.mxc_alloc_argv(C.int(len(env) + 2))
	defer C.free(unsafe.Pointer(res))
	var hs C.int
	var cerr *C.char
	n := C.mxc_dedup_env(in.p, C.int(len(env)), res, &hs, &cerr)
	if n < 0 {
		return nil, false, C.GoString(cerr)
	}
	return goStrings(res, int(n)), hs != 0, ""
}

func passwdHome(data string, uid int64, readErr bool) string {
	cs := C.CBytes(append([]byte(data), 0))
	defer C.free(cs)
	re := C.int(0)
	if readErr {
		re = 1
	}
	h := C.mxc_passwd_home((*C.char)(cs), C.size_t(len(data)), C.long(uid), re)
	defer C.free(unsafe.Pointer(h))
	return C.GoString(h)
}

const fileRights = uint64(C.MXC_LL_FILE_RIGHTS)

// parsedState is what mxc_parse_state reads from a state.json.
type parsedState struct {
	Pid        int
	Start      uint64
	Freeze     string
	Cgroups    []string
	PidPrivate bool
	Poststop   bool
	IntelRdt   bool
}

func parseState(data []byte, id string) (parsedState, bool) {
	cdata := C.CBytes(append(append([]byte{}, data...), 0))
	defer C.free(cdata)
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var st C.struct_mxc_state
	if C.mxc_parse_state((*C.char)(cdata), C.size_t(len(data)), cid, &st) != 0 {
		return parsedState{}, false
	}
	defer C.mxc_free_state(&st)
	p := parsedState{
		Pid: int(st.pid), Start: uint64(st.start), Freeze: C.GoString(&st.freeze[0]),
		Cgroups: goStrings(st.cgroups, int(st.ncgroups)), PidPrivate: st.pid_private != 0,
		Poststop: st.poststop != 0, IntelRdt: st.intelrdt != 0,
	}
	return p, true
}
