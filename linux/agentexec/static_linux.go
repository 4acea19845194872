//go:build linux

package agentexec

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"sync"
)

// CheckStatic refuses a dynamically linked mxc-runtime for the paths that
// run it inside a container: the agent's last step (every process of a
// container with a policy) and the exec server. Both exec a sealed copy of
// this binary after pivot_root, where the program interpreter it names
// resolves in the container's rootfs, which need not have it (nor
// libseccomp): the exec would fail there with a bare ENOENT ("exec
// /proc/self/fd/3: no such file or directory") from the container's init.
// Refusing at create, with the reason, is the clear version of that
// failure; `make build` links statically.
func CheckStatic() error { return staticErr() }

var staticErr = sync.OnceValue(func() error {
	path, _ := os.Readlink("/proc/self/exe")
	if path == "" {
		path = "/proc/self/exe"
	}
	interp, err := interpreterOf("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("mxc-runtime %s: read its ELF headers: %w", path, err)
	}
	if interp != "" {
		return fmt.Errorf("mxc-runtime %s is dynamically linked (program interpreter %s): "+
			"the agent policy's last step and the exec server run it inside the container, whose rootfs need not "+
			"have that interpreter and the libraries; install a static build (`make build` links statically)", path, interp)
	}
	return nil
})

// interpreterOf returns the PT_INTERP path of the ELF file at path, "" for
// a statically linked one.
func interpreterOf(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p.Open(), 4096))
		if err != nil {
			return "", err
		}
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	return "", nil
}
