package main

// The exec fast path's C half: a constructor that runs before the Go
// runtime and either serves `exec` through the container's exec server or
// is that server (see package fastexec). Like nsenter, it must be linked
// into the binary that runs containers.
import _ "mxc.dev/mxc/linux/execsrv/fastexec"
