//go:build linux && cgo && seccomp

package agentexec

// The C last step loads seccomp filters as ready cBPF programs. For them
// to be exactly what the Go step loads, they are made by the same code:
//
//   - the agent profile: linux/seccomp's precompiled program where it has
//     one (what seccomp.InstallAgent loads), else the profile compiled as
//     below (what InstallAgent's fallback, libcontainer's InitSeccomp,
//     loads);
//   - a spec profile: libcontainer v1.5.3's InitSeccomp up to the load,
//     with its own unexported helpers (linked by name: getAction, setFlag,
//     matchCall, and patchbpf's enosysPatchFilter and filterFlags), so that
//     the -ENOSYS stub, the binary-tree optimisation and the filter flags
//     are libcontainer's. The differential tests (linux/execsrv/fastexec
//     TestLastStepMatchesGo, integration/enforce TestLastStepCMatchesGo)
//     read the filters a process really holds back through ptrace and
//     compare them with the Go step's.
//
// The names are pinned by the runc version in go.mod: a runc update that
// renames them fails the link, one that changes them fails those tests.

// A cgo file: the body-less declarations below need a package that is
// not compiled as "complete" Go.

import "C"

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/opencontainers/runc/libcontainer/configs"
	_ "github.com/opencontainers/runc/libcontainer/seccomp/patchbpf" // linked by name below
	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/seccomp"
)

//go:linkname lcGetAction github.com/opencontainers/runc/libcontainer/seccomp.getAction
func lcGetAction(act configs.Action, errnoRet *uint) (libseccomp.ScmpAction, error)

//go:linkname lcSetFlag github.com/opencontainers/runc/libcontainer/seccomp.setFlag
func lcSetFlag(filter *libseccomp.ScmpFilter, flag specs.LinuxSeccompFlag) error

//go:linkname lcMatchCall github.com/opencontainers/runc/libcontainer/seccomp.matchCall
func lcMatchCall(filter *libseccomp.ScmpFilter, call *configs.Syscall, defAct libseccomp.ScmpAction) error

//go:linkname lcEnosysPatchFilter github.com/opencontainers/runc/libcontainer/seccomp/patchbpf.enosysPatchFilter
func lcEnosysPatchFilter(config *configs.Seccomp, filter *libseccomp.ScmpFilter) ([]unix.SockFilter, error)

//go:linkname lcFilterFlags github.com/opencontainers/runc/libcontainer/seccomp/patchbpf.filterFlags
func lcFilterFlags(config *configs.Seccomp, filter *libseccomp.ScmpFilter) (flags uint, noNewPrivs bool, err error)

// agentPrecompiled is linux/seccomp's table of precompiled agent programs
// (base64 of little-endian sock_filter), empty where it has none.
//
//go:linkname agentPrecompiled mxc.dev/mxc/linux/seccomp.precompiled
var agentPrecompiled map[string]string

const seccompFilterFlagNewListener = 1 << 3 // SECCOMP_FILTER_FLAG_NEW_LISTENER

// agentProgram is the program seccomp.InstallAgent(o) loads.
func agentProgram(o seccomp.Options) (Program, error) {
	key := fmt.Sprintf("ptrace=%t,audit=%t", o.AllowPtrace, o.AuditOnly)
	if b64, ok := agentPrecompiled[key]; ok {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) == 0 || len(raw)%8 != 0 {
			return Program{}, errors.New("corrupt precompiled agent program")
		}
		prog := make([]unix.SockFilter, len(raw)/8)
		for i := range prog {
			b := raw[i*8:]
			prog[i] = unix.SockFilter{
				Code: uint16(b[0]) | uint16(b[1])<<8, Jt: b[2], Jf: b[3],
				K: uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24,
			}
		}
		return Program{Insns: sockFilterBytes(prog)}, nil
	}
	return compileProfile(seccomp.AgentProfile(o))
}

// compileProfile is libcontainer's InitSeccomp(config) without the load:
// the program and the flags PatchAndLoad would hand to the kernel.
func compileProfile(config *configs.Seccomp) (Program, error) {
	if config == nil {
		return Program{}, errors.New("nil seccomp config")
	}
	defaultAction, err := lcGetAction(config.DefaultAction, config.DefaultErrnoRet)
	if err != nil {
		return Program{}, errors.New("invalid default action")
	}
	for _, call := range config.Syscalls {
		if call != nil && call.Action == configs.Notify {
			return Program{}, errors.New("SCMP_ACT_NOTIFY")
		}
	}
	if defaultAction == libseccomp.ActNotify {
		return Program{}, errors.New("SCMP_ACT_NOTIFY")
	}
	filter, err := libseccomp.NewFilter(defaultAction)
	if err != nil {
		return Program{}, fmt.Errorf("error creating filter: %w", err)
	}
	defer filter.Release()
	for _, arch := range config.Architectures {
		scmpArch, err := libseccomp.GetArchFromString(arch)
		if err != nil {
			return Program{}, fmt.Errorf("error validating Seccomp architecture: %w", err)
		}
		if err := filter.AddArch(scmpArch); err != nil {
			return Program{}, fmt.Errorf("error adding architecture to seccomp filter: %w", err)
		}
	}
	for _, flag := range config.Flags {
		if err := lcSetFlag(filter, flag); err != nil {
			return Program{}, err
		}
	}
	if len(config.Syscalls) > 32 {
		_ = filter.SetOptimize(2) // as InitSeccomp: not fatal
	}
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return Program{}, fmt.Errorf("error setting no new privileges: %w", err)
	}
	for _, call := range config.Syscalls {
		if call == nil {
			return Program{}, errors.New("encountered nil syscall while initializing Seccomp")
		}
		if err := lcMatchCall(filter, call, defaultAction); err != nil {
			return Program{}, err
		}
	}
	prog, err := lcEnosysPatchFilter(config, filter)
	if err != nil {
		return Program{}, fmt.Errorf("error patching filter: %w", err)
	}
	flags, nnp, err := lcFilterFlags(config, filter)
	if err != nil {
		return Program{}, err
	}
	if nnp || flags&seccompFilterFlagNewListener != 0 || flags > 0xffffffff || len(prog) == 0 {
		return Program{}, errors.New("a filter the C step cannot load as the Go step would")
	}
	return Program{Flags: uint32(flags), Insns: sockFilterBytes(prog)}, nil
}
