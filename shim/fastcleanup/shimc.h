/*
 * The C shared by the shim binary's code that runs before the Go runtime:
 * this package's clean-up and shim/faststart's start (which imports this
 * package and declares these functions itself).
 */
#ifndef MXC_SHIMC_H
#define MXC_SHIMC_H

#include <stddef.h>

/* mxc_shim_argv says whether argv is containerd's `verb` command line: value
 * flags in the single-dash form containerd writes, an optional -debug,
 * then verb last. The values of -id and -address are stored in *id and
 * *address (NULL when absent). */
int mxc_shim_argv(int argc, char **argv, const char *verb, const char **id, const char **address);

/* mxc_shim_write_all writes n bytes of p to fd, through EINTR and short
 * writes: 0 done, -1 otherwise (errno set). */
int mxc_shim_write_all(int fd, const char *p, size_t n);

#endif
