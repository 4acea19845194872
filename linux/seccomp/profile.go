//go:build linux

package seccomp

import (
	"runtime"

	"github.com/opencontainers/runc/libcontainer/configs"
	lcseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// Options shape the agent profile.
type Options struct {
	// AllowPtrace keeps ptrace and process_vm_readv/writev.
	AllowPtrace bool
	// AuditOnly logs the denied syscalls instead of failing them (policy
	// mode: audit).
	AuditOnly bool
}

// Denied lists the syscalls the agent profile refuses outright (EPERM),
// grouped by why.
var Denied = map[string][]string{
	// Mount topology: masks and read-only binds must stay in place.
	"mount": {"mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
		"move_mount", "open_tree", "open_tree_attr", "mount_setattr"},
	// Kernel attack surface an agent never needs.
	"kernel": {"bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load",
		"init_module", "finit_module", "delete_module"},
	// Kernel keyrings are not namespaced.
	"keyring": {"keyctl", "add_key", "request_key"},
	// Reaches files by handle, past every path rule.
	"handle": {"open_by_handle_at"},
	// io_uring runs file and network operations outside the syscall filter.
	"io_uring": {"io_uring_setup", "io_uring_enter", "io_uring_register"},
}

// Ptrace lists what AllowPtrace keeps.
var Ptrace = []string{"ptrace", "process_vm_readv", "process_vm_writev"}

func errnoRet(e unix.Errno) *uint {
	v := uint(e)
	return &v
}

// arches are the syscall ABIs a process of this architecture can use, in
// libcontainer's naming.
func arches() []string {
	var out []string
	for _, a := range scmpArches() {
		if n, err := lcseccomp.ConvertStringToArch(a); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func scmpArches() []string {
	switch runtime.GOARCH {
	case "amd64":
		return []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}
	case "arm64":
		return []string{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}
	case "386":
		return []string{"SCMP_ARCH_X86"}
	case "arm":
		return []string{"SCMP_ARCH_ARM"}
	case "riscv64":
		return []string{"SCMP_ARCH_RISCV64"}
	case "ppc64le":
		return []string{"SCMP_ARCH_PPC64LE"}
	case "s390x":
		return []string{"SCMP_ARCH_S390X", "SCMP_ARCH_S390"}
	}
	return nil
}

// AgentProfile returns the agent's deny-list profile: everything is
// allowed except the syscalls in Denied, ptrace (unless allowed), new user
// namespaces through clone/unshare, and clone3 (ENOSYS: its flags sit in
// memory a filter cannot read, and libc falls back to clone on ENOSYS).
func AgentProfile(o Options) *configs.Seccomp {
	deny, errno := configs.Errno, errnoRet(unix.EPERM)
	if o.AuditOnly {
		deny, errno = configs.Log, nil
	}
	p := &configs.Seccomp{DefaultAction: configs.Allow, Architectures: arches()}
	add := func(name string, args ...*configs.Arg) {
		p.Syscalls = append(p.Syscalls, &configs.Syscall{Name: name, Action: deny, ErrnoRet: errno, Args: args})
	}
	for _, group := range []string{"mount", "kernel", "keyring", "handle", "io_uring"} {
		for _, name := range Denied[group] {
			add(name)
		}
	}
	if !o.AllowPtrace {
		for _, name := range Ptrace {
			add(name)
		}
	}
	newUser := &configs.Arg{Index: 0, Value: unix.CLONE_NEWUSER, ValueTwo: unix.CLONE_NEWUSER, Op: configs.MaskEqualTo}
	add("unshare", newUser)
	if runtime.GOARCH == "s390x" {
		// s390's clone takes the stack first and the flags second.
		add("clone", &configs.Arg{Index: 1, Value: unix.CLONE_NEWUSER, ValueTwo: unix.CLONE_NEWUSER, Op: configs.MaskEqualTo})
	} else {
		add("clone", newUser)
	}
	if o.AuditOnly {
		add("clone3")
	} else {
		p.Syscalls = append(p.Syscalls, &configs.Syscall{Name: "clone3", Action: configs.Errno, ErrnoRet: errnoRet(unix.ENOSYS)})
	}
	return p
}
