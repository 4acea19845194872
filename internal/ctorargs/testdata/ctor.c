/* A constructor that prints what mxc_ctor_args finds: ctorargs_test.go
 * builds it with gcc (glibc) and musl-gcc and compares with what it ran. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctorargs.h"

#ifdef SETENV_FIRST
/* An earlier constructor that moves environ to the heap. */
__attribute__((constructor(101))) static void early(void)
{
	setenv("MXC_CTORARGS_EARLY", "1", 1);
}
#endif

__attribute__((constructor(200))) static void ctor(int cargc, char **cargv, char **cenvp)
{
	int argc;
	char **argv, **envp;
	if (!mxc_ctor_args(cargc, cargv, cenvp, &argc, &argv, &envp)) {
		printf("unknown\n");
		fflush(stdout);
		_exit(0);
	}
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("arg=%s\n", argv[i]);
	if (argv[argc] != NULL)
		printf("argv not NULL-terminated\n");
	int n = 0;
	while (envp[n])
		n++;
	printf("envc=%d\n", n);
	if (n > 0)
		printf("env0=%s\n", envp[0]);
	/* Static glibc's exit() does not flush stdio from a constructor. */
	fflush(stdout);
	_exit(0);
}

int main(void)
{
	printf("main ran\n");
	return 1;
}
