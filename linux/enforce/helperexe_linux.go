package enforce

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/sirupsen/logrus"
)

// HelperName is the helpers' own binary (cmd/mxc-monitor), installed next
// to mxc-runtime.
const HelperName = "mxc-monitor"

// HelperExe returns the binary the engine starts the policy monitor and
// egress gates from: HelperName in runtimeExe's directory when it is
// there and as trustworthy as runtimeExe (a regular executable file with
// the same owner, writable by nobody else), else runtimeExe, which has the
// same verbs. mxc-monitor is half mxc-runtime's size, and every policy
// container keeps one such process for its life.
func HelperExe(runtimeExe string) string {
	if runtimeExe == "" || os.Getenv("MXC_HELPER_EXE") == "runtime" {
		return runtimeExe
	}
	p := filepath.Join(filepath.Dir(runtimeExe), HelperName)
	fi, err := os.Stat(p)
	if err != nil {
		return runtimeExe
	}
	rt, err := os.Stat(runtimeExe)
	if err != nil {
		return runtimeExe
	}
	st, ok1 := fi.Sys().(*syscall.Stat_t)
	rst, ok2 := rt.Sys().(*syscall.Stat_t)
	switch {
	case !ok1 || !ok2:
		return runtimeExe
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o100 == 0:
		return runtimeExe
	case fi.Mode().Perm()&0o022 != 0 || st.Uid != rst.Uid:
		logrus.Warnf("%s: not used (writable by others than its owner, or not owned as %s is); the helpers run from %s", p, runtimeExe, runtimeExe)
		return runtimeExe
	}
	return p
}
