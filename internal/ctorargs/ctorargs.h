/*
 * ctorargs.h: the process's argc, argv and envp for an ELF constructor.
 *
 * mxc's C fast paths run as constructors, before the Go runtime starts.
 * glibc passes (argc, argv, envp) to constructors, an extension; musl calls
 * them with no arguments, so a constructor built against musl finds them
 * where the kernel put them: on the initial stack, argc, then argv and its
 * NULL, then envp, which musl has stored in environ before any constructor
 * runs. argv is found by walking down from envp to the word that equals
 * the number of pointers passed (argc: a small number, never an address).
 *
 * That is only sound while environ is still the kernel's array, so the walk
 * first checks that environ lies on this thread's stack a little above the
 * caller's frame (a constructor that ran earlier and called setenv would
 * have moved it to the heap) and that the word below it is argv's NULL.
 * When a check fails the caller gets 0 and leaves the work to Go, which
 * does the same things on its normal path.
 */
#ifndef MXC_CTORARGS_H
#define MXC_CTORARGS_H

#include <stdint.h>

extern char **environ;

/* The initial stack holds at most ARG_MAX of strings above the arrays; the
 * arrays themselves sit just above the start-up frames. */
#define MXC_CTORARGS_MAX_DISTANCE (1L << 20)
#define MXC_CTORARGS_MAX_ARGC 65536L

/*
 * mxc_ctor_args fills *argc, *argv and *envp from the constructor's own
 * arguments (glibc) or the initial stack (other C libraries). It returns 1
 * when they are known, 0 when the constructor must leave the work to Go.
 */
__attribute__((noinline, unused)) static int mxc_ctor_args(int cargc, char **cargv, char **cenvp, int *argc, char ***argv, char ***envp)
{
#ifdef __GLIBC__
	if (!cargv)
		return 0;
	*argc = cargc;
	*argv = cargv;
	*envp = cenvp;
	return 1;
#else
	(void)cargc;
	(void)cargv;
	(void)cenvp;
	char here;
	char **env = environ;
	uintptr_t e = (uintptr_t)env, h = (uintptr_t)&here;
	if (!env || e <= h || e - h > (uintptr_t)MXC_CTORARGS_MAX_DISTANCE || env[-1] != 0)
		return 0;
	for (long k = 0; k <= MXC_CTORARGS_MAX_ARGC; k++) {
		char **slot = env - 2 - k;
		if ((uintptr_t)slot <= h)
			return 0;
		if ((long)(intptr_t)*slot == k) {
			*argc = (int)k;
			*argv = env - 1 - k;
			*envp = env;
			return 1;
		}
	}
	return 0;
#endif
}

#endif
