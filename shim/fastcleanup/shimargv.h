/*
 * containerd's command line for a shim binary's one-shot commands, read
 * by the C code that answers them before the Go runtime starts (this
 * package's clean-up, shim/faststart's start, which imports this package
 * and declares the function itself).
 */
#ifndef MXC_SHIMARGV_H
#define MXC_SHIMARGV_H

/* mxc_shim_argv says whether argv is containerd's `verb` command line: value
 * flags in the single-dash form containerd writes, an optional -debug,
 * then verb last. The values of -id and -address are stored in *id and
 * *address (NULL when absent). */
int mxc_shim_argv(int argc, char **argv, const char *verb, const char **id, const char **address);

#endif
