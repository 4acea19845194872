//go:build linux && !amd64

package seccomp

// No programs are precompiled for this architecture: InstallAgent compiles.
const precompiledArch = ""

var precompiled = map[string]string{}
