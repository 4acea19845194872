//go:build linux && !(cgo && seccomp)

package agentexec

import (
	"errors"

	"github.com/opencontainers/runc/libcontainer/configs"

	"mxc.dev/mxc/linux/seccomp"
)

// Without libseccomp in the binary no program is compiled here: a
// configuration with seccomp filters is left to the Go step (which then
// reports that this binary cannot install them).
var errNoLibseccomp = errors.New("built without libseccomp")

func agentProgram(seccomp.Options) (Program, error) { return Program{}, errNoLibseccomp }

func compileProfile(*configs.Seccomp) (Program, error) { return Program{}, errNoLibseccomp }
