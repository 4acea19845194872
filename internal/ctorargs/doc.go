// Package ctorargs holds ctorargs.h, which mxc's C constructors (the exec
// fast path, the shim's start and clean-up) include to get the process's
// argc, argv and envp under glibc and under musl alike. It has no Go code;
// the packages that include the header add it to their cgo include path.
package ctorargs
