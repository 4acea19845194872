//go:build linux && cgo && seccomp

package seccomp

import (
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// compileBPF turns a deny-list profile (default allow, errno or log rules,
// masked-equal argument conditions) into its cBPF program with libseccomp,
// without loading it. It is what the precompiled agent programs are made
// from (see precompiled_test.go).
func compileBPF(p *configs.Seccomp) ([]byte, error) {
	if p.DefaultAction != configs.Allow {
		return nil, fmt.Errorf("compileBPF: only default-allow profiles")
	}
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	for _, a := range p.Architectures {
		arch, err := libseccomp.GetArchFromString(a)
		if err != nil {
			return nil, err
		}
		if err := f.AddArch(arch); err != nil {
			return nil, err
		}
	}
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, err
	}
	for _, sc := range p.Syscalls {
		nr, err := libseccomp.GetSyscallFromName(sc.Name)
		if err != nil {
			continue // unknown to this libseccomp: as libcontainer does
		}
		var act libseccomp.ScmpAction
		switch sc.Action {
		case configs.Errno:
			act = libseccomp.ActErrno.SetReturnCode(int16(*sc.ErrnoRet))
		case configs.Log:
			act = libseccomp.ActLog
		default:
			return nil, fmt.Errorf("compileBPF: action %v", sc.Action)
		}
		var conds []libseccomp.ScmpCondition
		for _, a := range sc.Args {
			if a.Op != configs.MaskEqualTo {
				return nil, fmt.Errorf("compileBPF: operator %v", a.Op)
			}
			c, err := libseccomp.MakeCondition(a.Index, libseccomp.CompareMaskedEqual, a.Value, a.ValueTwo)
			if err != nil {
				return nil, err
			}
			conds = append(conds, c)
		}
		if len(conds) == 0 {
			err = f.AddRule(nr, act)
		} else {
			err = f.AddRuleConditional(nr, act, conds)
		}
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", sc.Name, err)
		}
	}
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	mf := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer mf.Close()
	if err := f.ExportBPF(mf); err != nil {
		return nil, err
	}
	if _, err := mf.Seek(0, 0); err != nil {
		return nil, err
	}
	return io.ReadAll(mf)
}
