//go:build linux && cgo

/*
 * The agent's last step in C: `/proc/self/fd/E agent-exec --config-fd C
 * -- ARGS` (linux/agentexec) without starting Go. It does what
 * agentexec.Exec does, in the same order and with the same exit statuses:
 * the Landlock ruleset (as landlock.Ruleset.Apply builds it on this
 * kernel), the PATH lookup (os/exec.LookPath over os.Environ()'s PATH,
 * after Landlock), the seccomp filters (the programs the Go step would
 * load, prepared on the host), then execve with os.Environ().
 *
 * It runs only a plan the host marked complete (RecCPlan) and only when
 * this kernel's Landlock ABI is the one the plan was made for; otherwise,
 * and for --server, for a config without records or a command line the Go
 * step would refuse, the constructor returns and the Go step runs, reading
 * the same config (read with pread, so the fd's offset is untouched).
 * Once it has closed the config fd it is committed: every failure exits
 * 126 (127: the command was not found), as the Go step would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "fastexec.h"

/* Landlock's uapi, with the ABI 6 field the distribution headers lack. */
struct ll_attr {
	uint64_t handled_fs, handled_net, scoped;
};
struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
#define LL_RULE_PATH_BENEATH 1
#define LL_CREATE_RULESET_VERSION (1U << 0)

static void die(int code, const char *prefix, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
static void die(int code, const char *prefix, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dprintf(2, "%s: %s\n", prefix, msg);
	_exit(code);
}

/* goerr is strerror(e) as Go's syscall.Errno says it (lower-case first
 * letter), so that both steps report failures in the same words. */
struct goerr {
	char s[128];
};
static struct goerr goerr(int e)
{
	struct goerr g;
	snprintf(g.s, sizeof g.s, "%s", strerror(e));
	if (g.s[0] >= 'A' && g.s[0] <= 'Z' && !(g.s[1] >= 'A' && g.s[1] <= 'Z'))
		g.s[0] = (char)(g.s[0] - 'A' + 'a');
	return g;
}

static long landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	return v < 0 ? 0 : v;
}

int mxc_step_ready(const struct mxc_plan *p, const char **why)
{
	if (!p->cplan) {
		*why = "no plan for the C step";
		return -1;
	}
	if (p->landlock) {
		long k = landlock_abi();
		if (k < (long)p->ll_min_abi) {
			*why = "the kernel's Landlock ABI is below the policy's";
			return -1;
		}
		long eff = k > MXC_LL_MAX_ABI ? MXC_LL_MAX_ABI : k;
		if (p->ll_plan_abi < 1 || eff != (long)p->ll_plan_abi) {
			*why = "the plan was made for another Landlock ABI";
			return -1;
		}
	}
	return 0;
}

/* apply_landlock is landlock.Ruleset.Apply on the plan's ABI. */
static void apply_landlock(const struct mxc_plan *p, const char *prefix)
{
	if (!p->ll_apply)
		return;
	struct ll_attr attr = {.handled_fs = p->ll_handled, .scoped = p->ll_scoped};
	long rfd = syscall(SYS_landlock_create_ruleset, &attr, (size_t)p->ll_attrsize, 0);
	if (rfd < 0)
		die(126, prefix, "landlock_create_ruleset: %s", goerr(errno).s);
	for (int i = 0; i < p->nrules; i++) {
		const struct mxc_ll_rule *r = &p->rules[i];
		int pfd = mxc_open(r->path, O_PATH | O_CLOEXEC, 0);
		if (pfd < 0) {
			if (errno == ENOENT || errno == ENOTDIR || errno == EACCES)
				continue; /* nothing there to grant */
			die(126, prefix, "landlock: open %s: %s", r->path, goerr(errno).s);
		}
		struct stat st;
		if (fstat(pfd, &st) < 0)
			die(126, prefix, "landlock: stat %s: %s", r->path, goerr(errno).s);
		uint64_t access = r->access & p->ll_handled;
		if (!S_ISDIR(st.st_mode))
			access &= MXC_LL_FILE_RIGHTS;
		if (access) {
			struct ll_path_beneath pb = {.allowed_access = access, .parent_fd = pfd};
			if (syscall(SYS_landlock_add_rule, (int)rfd, LL_RULE_PATH_BENEATH, &pb, 0) < 0)
				die(126, prefix, "landlock_add_rule %s: %s", r->path, goerr(errno).s);
		}
		close(pfd);
	}
	if (syscall(SYS_landlock_restrict_self, (int)rfd, (unsigned)p->ll_flags) < 0)
		die(126, prefix, "landlock_restrict_self: %s", goerr(errno).s);
	close((int)rfd);
}

static void install_seccomp(const struct mxc_plan *p, const char *prefix)
{
	for (int i = 0; i < p->nprogs; i++) {
		struct sock_fprog fp = {.len = (unsigned short)p->progs[i].len, .filter = p->progs[i].insns};
		long r;
		if (p->progs[i].flags == 0)
			r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0);
		else
			r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->progs[i].flags, &fp);
		if (r < 0)
			die(126, prefix, "seccomp filter %d: %s", i, goerr(errno).s);
	}
}

/* The environment entry's name: its length, or -1 without '='. */
static long name_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? eq - kv : -1;
}

struct env_ix {
	const char *kv;
	long klen;
	size_t pos;
};

static int cmp_env(const void *a, const void *b)
{
	const struct env_ix *x = a, *y = b;
	long n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->kv, y->kv, (size_t)n);
	if (c)
		return c;
	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

char **mxc_go_environ(char **envp)
{
	size_t n = 0;
	while (envp && envp[n])
		n++;
	char **out = calloc(n + 1, sizeof(char *));
	struct env_ix *ix = calloc(n + 1, sizeof *ix);
	unsigned char *drop = calloc(n + 1, 1);
	if (!out || !ix || !drop) {
		free(out);
		free(ix);
		free(drop);
		return NULL;
	}
	/* syscall's copyenv: a name's first entry wins, later ones are
	 * cleared; Environ() then skips the empty strings. Sorting by (name,
	 * position) keeps it O(n log n) whatever the environment holds. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		long k = name_len(envp[i]);
		if (envp[i][0] == '\0')
			drop[i] = 1;
		else if (k >= 0)
			ix[m++] = (struct env_ix){.kv = envp[i], .klen = k, .pos = i};
	}
	qsort(ix, m, sizeof *ix, cmp_env);
	for (size_t j = 1; j < m; j++)
		if (ix[j].klen == ix[j - 1].klen && memcmp(ix[j].kv, ix[j - 1].kv, (size_t)ix[j].klen) == 0)
			drop[ix[j].pos] = 1;
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (!drop[i])
			out[w++] = envp[i];
	out[w] = NULL;
	free(ix);
	free(drop);
	return out;
}

void mxc_step_exec(const struct mxc_plan *p, char **argv, char **envp, const char *prefix)
{
	char **env = mxc_go_environ(envp);
	if (!env)
		die(126, prefix, "out of memory");
	if (p->landlock)
		apply_landlock(p, prefix);
	/* agentexec's lookPath: the last PATH entry of the environment (after
	 * os.Environ() there is at most one), else the process's own PATH,
	 * which is the same environment. */
	const char *path = "";
	for (char **e = env; *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	char *exe = NULL;
	if (mxc_lookpath_dot(argv[0], path, 1, &exe) < 0) {
		int e = errno;
		if (!strchr(argv[0], '/'))
			die(127, prefix, "exec: \"%s\": executable file not found in $PATH", argv[0]);
		/* os/exec's findExecutable: which check failed, in its words. */
		struct stat st;
		if (stat(argv[0], &st) < 0)
			die(127, prefix, "exec: \"%s\": stat %s: %s", argv[0], argv[0], goerr(errno).s);
		die(127, prefix, "exec: \"%s\": %s", argv[0], goerr(e).s);
	}
	install_seccomp(p, prefix);
	execve(exe, argv, env);
	int e = errno;
	if (e == EACCES && p->landlock && p->ll_handled)
		/* agentexec's policyExecHint, word for word. */
		die(126, prefix, "exec %s: %s (under the agent policy's filesystem rules, the agent must be able to read %s and, for a dynamic binary or a script, its loader, libraries or interpreter: list them, or directories above them, in readonlyPaths)",
		    argv[0], goerr(e).s, exe);
	die(e == ENOENT ? 127 : 126, prefix, "exec %s: %s", argv[0], goerr(e).s);
}

/* go_atoi is strconv.Atoi for fd numbers: -1 for anything it refuses. */
static long go_atoi(const char *s)
{
	size_t i = 0;
	int neg = 0;
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i = 1;
	}
	if (s[i] == '\0')
		return -1;
	unsigned long long v = 0;
	for (; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long long)(s[i] - '0');
		if (v > (unsigned long long)LONG_MAX)
			return -1; /* beyond an int: the Go step reports it */
	}
	return neg ? -(long)v : (long)v;
}

int mxc_parse_agentexec_args(int n, char **args, long *fd, int *server, int *cmd)
{
	*fd = -1;
	*server = 0;
	for (int i = 0; i < n;) {
		const char *a = args[i];
		if (!strcmp(a, "--config-fd")) {
			if (i + 1 >= n)
				return -1;
			long v = go_atoi(args[i + 1]);
			if (v < 3)
				return -1;
			*fd = v;
			i += 2;
		} else if (!strcmp(a, "--server")) {
			*server = 1;
			i++;
		} else if (!strcmp(a, "--")) {
			i++;
			if (*fd < 0 || i >= n)
				return -1;
			*cmd = i;
			return 0;
		} else {
			return -1;
		}
	}
	return -1;
}

static int debug_agentexec(void)
{
	const char *d = getenv("MXC_AGENT_EXEC_DEBUG");
	return d && d[0] == '1';
}

void mxc_agentexec_main(int argc, char **argv, char **envp)
{
	const char *prefix = "mxc-runtime agent-exec";
	const char *why = NULL;
	long fd = -1;
	int server = 0, cmd = 0;
	if (mxc_parse_agentexec_args(argc - 2, argv + 2, &fd, &server, &cmd) < 0 || server || fd > INT_MAX) {
		why = server ? "the exec server's start" : "a command line for the Go step to report on";
		goto go;
	}
	struct stat st;
	if (fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 16 || st.st_size > (off_t)MXC_REC_MAX) {
		why = "the config is not a record file";
		goto go;
	}
	size_t len = (size_t)st.st_size, got = 0;
	unsigned char *data = malloc(len);
	if (!data) {
		why = "out of memory";
		goto go;
	}
	while (got < len) {
		ssize_t r = pread((int)fd, data + got, len - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	uint32_t magic = 0;
	if (got == len)
		memcpy(&magic, data, sizeof magic);
	if (got != len || magic != MXC_REC_MAGIC_CONFIG) {
		free(data);
		why = "the config is not a record file";
		goto go;
	}
	struct mxc_plan p;
	const char *err = NULL;
	if (mxc_decode_plan(data, len, MXC_REC_MAGIC_CONFIG, &p, &err) < 0)
		die(126, prefix, "parse config: %s", err); /* ours, sealed: never guess */
	if (mxc_step_ready(&p, &why) < 0) {
		if (p.cflags & MXC_CPLAN_REQUIRE)
			die(126, prefix, "the C last step was required (MXC_AGENT_EXEC=require): %s", why);
		mxc_free_plan(&p);
		free(data);
		goto go;
	}
	close((int)fd);
	if (debug_agentexec())
		dprintf(2, "%s: C step\n", prefix);
	mxc_step_exec(&p, argv + 2 + cmd, envp, prefix);
go:
	if (debug_agentexec())
		dprintf(2, "%s: Go step: %s\n", prefix, why ? why : "?");
}
