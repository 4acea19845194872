//go:build linux && cgo

/*
 * The constructor: it runs in every mxc-runtime process before the Go
 * runtime starts (as libcontainer's nsenter does) and returns at once
 * unless the process is an exec server, the policy monitor's C stage
 * (premonitor.c), an `exec` the fast path can
 * serve, the agent's last step (laststep.c), a `sandbox` with a cached
 * plan (sandbox.c), a `start` of a created container (start.c) or a
 * `delete` of a stopped one (delete.c).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fastexec.h"
#include "ctorargs.h"

int mxc_env_mode(const char *name)
{
	const char *m = getenv(name);
	if (!m || !m[0])
		return MXC_MODE_AUTO;
	if (!strcmp(m, "0") || !strcmp(m, "off") || !strcmp(m, "false") || !strcmp(m, "no"))
		return MXC_MODE_OFF;
	if (!strcmp(m, "require"))
		return MXC_MODE_REQUIRE;
	return MXC_MODE_AUTO;
}

int mxc_env_debug(const char *name)
{
	char var[64];
	if ((size_t)snprintf(var, sizeof var, "%s_DEBUG", name) >= sizeof var)
		return 0;
	const char *d = getenv(var);
	return d && d[0] == '1';
}

void mxc_hand_over(const char *verb, const char *name, int mode, const char *why)
{
	if (!why)
		why = "unknown";
	if (mode == MXC_MODE_REQUIRE) {
		fprintf(stderr, "mxc-runtime: %s failed: fast path required (%s=require): %s\n", verb, name, why);
		_exit(255);
	}
	if (mxc_env_debug(name))
		fprintf(stderr, "mxc-runtime: %s: normal path: %s\n", verb, why);
}

__attribute__((constructor)) static void mxc_fastexec_entry(int cargc, char **cargv, char **cenvp)
{
	int argc;
	char **argv, **envp;
	if (!mxc_ctor_args(cargc, cargv, cenvp, &argc, &argv, &envp) || argc < 3)
		return;
	if (!strcmp(argv[1], "exec-server") && !strcmp(argv[2], "serve"))
		mxc_server_main(argc, argv);
	/* The policy monitor's C stage (premonitor.c): started by the runtime
	 * with MXC_PREMON_EXE; without it, `policy-monitor` is the Go one. */
	if (argc == 3 && !strcmp(argv[1], "policy-monitor") && getenv("MXC_PREMON_EXE"))
		mxc_premonitor_main(argc, argv);
	/* The agent's last step (linux/agentexec): returns for the Go step. */
	if (!strcmp(argv[1], "agent-exec")) {
		mxc_agentexec_main(argc, argv, envp);
		return;
	}
	/* `sandbox` (after the global flags; mxc_sandbox_main parses the
	 * command line and returns at once if it is not one): returns for the
	 * Go path. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "sandbox")) {
			mxc_sandbox_main(argc, argv, envp);
			break;
		}
	}
	/* `start ID` and `delete ID` (start.c, delete.c; each parses the
	 * command line and returns at once if it is not one): return for the
	 * Go CLI. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "start")) {
			mxc_start_main(argc, argv);
			break;
		}
		if (!strcmp(argv[i], "delete")) {
			mxc_delete_main(argc, argv);
			break;
		}
	}
	/* Cheap test first: most invocations are not `exec`. */
	int seen = 0;
	for (int i = 1; i < argc && !seen; i++)
		seen = !strcmp(argv[i], "exec");
	if (!seen)
		return;
	int mode = mxc_env_mode("MXC_EXEC_FAST");
	if (mode == MXC_MODE_OFF)
		return;
	char cwd[PATH_MAX];
	const char *wd = getcwd(cwd, sizeof cwd);
	struct mxc_cmdline cl;
	if (!mxc_parse_cmdline(argc, argv, wd, &cl))
		return;
	mxc_client(&cl, mode); /* returns only when the normal path must run */
	mxc_free_cmdline(&cl);
}
