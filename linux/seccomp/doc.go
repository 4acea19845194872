// Package seccomp holds mxc's agent seccomp profile and installs it, stacked
// with the container's own profile, on the calling thread right before the
// agent's exec.
//
// Merge rule: the agent profile and the OCI spec's profile are installed as
// two filters. The kernel runs every filter of a task on every syscall and
// takes the most restrictive verdict (KILL > TRAP > ERRNO > NOTIFY > TRACE >
// LOG > ALLOW), so "the stricter wins" holds syscall by syscall and argument
// by argument, with no rewriting of either profile.
package seccomp
