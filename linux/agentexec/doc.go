// Package agentexec is the agent's last step inside the container: the
// program libcontainer execs instead of the agent's own, which applies the
// Landlock ruleset and the seccomp filters on its thread and then execs the
// real program.
//
// Why a step of its own: libcontainer's init ends with LookPath, seccomp,
// closing the fds and execve, with no hook in between, and Landlock must
// come after every mount (a Landlock-restricted thread cannot mount). So
// the policy engine rewrites the process (Wrap):
//
//	args = ["/proc/self/fd/<E>", "agent-exec", "--config-fd", "<C>", "--", <original args>...]
//
// where E and C are two memfds appended to the process's ExtraFiles (within
// PassedFilesCount, so libcontainer passes them through its fd cleanup):
//
//   - C holds this step's JSON Config (Landlock rules, seccomp profiles),
//     sealed against writes;
//   - E is a placeholder named "mxc-agent-exe". FixupInitFDs, called in
//     `mxc-runtime init` before libcontainer.Init, replaces it with an
//     O_PATH fd of /proc/self/exe, which libcontainer (exeseal) has already
//     made a sealed, read-only clone of mxc-runtime: the container can run
//     the binary but never write to the host's copy (CVE-2019-5736 class).
//     The fd is close-on-exec, so it is gone once agent-exec runs.
//
// mxc-runtime is linked statically, so it runs in any root filesystem.
//
// The same step starts a container's exec server (the exec fast path, see
// package execsrv and docs/design/exec.md): with --server (AsServer) it
// installs the seccomp filters exactly as for an agent process, hands the
// Landlock ruleset to the server as a plan instead of applying it (each
// process the server starts applies it for itself, a fresh domain per
// process as here), and execs the server. WrapExe gives a container
// without a policy the same sealed way to exec mxc-runtime.
package agentexec

// Names of the two memfds, as /proc/<pid>/fd shows them.
const (
	ExeMemfdName    = "mxc-agent-exe"
	ConfigMemfdName = "mxc-agent-config"
)

// Verb is the hidden CLI verb of the last step.
const Verb = "agent-exec"
