//go:build linux && cgo

/*
 * Recognises the `exec` command lines the fast path can honour exactly,
 * parsing them the way urfave/cli v2 (Go's flag package underneath) does:
 * flags stop at the first non-flag argument or "--"; "-x" and "--x" are the
 * same flag; a value is "=v" or the next argument; slice flags split their
 * value on ',' and trim each piece. Anything the fast path does not know
 * (another flag, a bool flag, help, shell completion) returns 0, and the Go
 * CLI handles the command line as always.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fastexec.h"

/*
 * parse_flag looks at args[*i]. It returns 0 for a non-flag (parsing
 * stops there), 2 for "--" (consumed; parsing stops), 1 for a flag whose
 * name and value are set (the value may be the next argument), and -1 for
 * anything Go's flag package would reject.
 */
int mxc_parse_flag(int argc, char **argv, int *i, const char **name, size_t *namelen, const char **value)
{
	const char *s = argv[*i];
	size_t n = strlen(s);
	if (n < 2 || s[0] != '-')
		return 0;
	size_t minus = 1;
	if (s[1] == '-') {
		minus = 2;
		if (n == 2) {
			(*i)++;
			return 2;
		}
	}
	const char *nm = s + minus;
	if (nm[0] == '\0' || nm[0] == '-' || nm[0] == '=')
		return -1;
	(*i)++;
	const char *eq = strchr(nm + 1, '=');
	*name = nm;
	if (eq) {
		*namelen = (size_t)(eq - nm);
		*value = eq + 1;
		return 1;
	}
	*namelen = strlen(nm);
	if (*i >= argc)
		return -1; /* flag needs an argument */
	*value = argv[(*i)++];
	return 1;
}

int mxc_is_flag(const char *name, size_t n, const char *want) { return strlen(want) == n && memcmp(name, want, n) == 0; }
#define is mxc_is_flag

int mxc_parse_globals(int argc, char **argv, const char *verb, struct mxc_globals *g)
{
	memset(g, 0, sizeof *g);
	g->logfmt = "text";
	/* urfave/cli treats a last argument of --generate-bash-completion as
	 * a completion request (EnableBashCompletion). */
	if (argc < 2 || strcmp(argv[argc - 1], "--generate-bash-completion") == 0)
		return -1;
	int i = 1;
	while (i < argc) {
		const char *name = NULL, *value = NULL;
		size_t nl = 0;
		int r = mxc_parse_flag(argc, argv, &i, &name, &nl, &value);
		if (r == 0)
			break;
		if (r != 1)
			return -1; /* "--" before the verb, or a malformed flag */
		if (is(name, nl, "root")) {
			g->root = value;
		} else if (is(name, nl, "log")) {
			g->log = value;
			g->nlog++;
		} else if (is(name, nl, "log-format")) {
			g->logfmt = value;
		} else if (is(name, nl, "config")) {
			g->config = value;
			g->nconfig++;
		} else {
			return -1; /* --debug, --systemd-cgroup, ...: the Go CLI's */
		}
	}
	if (i >= argc || strcmp(argv[i], verb) != 0)
		return -1;
	if (strcmp(g->logfmt, "text") != 0 && strcmp(g->logfmt, "json") != 0 && g->logfmt[0] != '\0')
		return -1;
	return i + 1;
}

static int add_env(struct mxc_cmdline *cl, const char *value)
{
	/* urfave/cli's StringSlice.Set: split on ',', TrimSpace each piece. */
	const char *p = value;
	for (;;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		size_t s, e;
		mxc_trim_space(p, len, &s, &e);
		char **env = realloc(cl->env, sizeof(char *) * (size_t)(cl->envc + 2));
		if (!env)
			return -1;
		cl->env = env;
		char *piece = strndup(p + s, e - s);
		if (!piece)
			return -1;
		cl->env[cl->envc++] = piece;
		cl->env[cl->envc] = NULL;
		if (!c)
			return 0;
		p = c + 1;
	}
}

/* valid_id is cmd/mxc-runtime's validateID. */
int mxc_valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	if (strpbrk(id, "/\\") || strstr(id, ".."))
		return 0;
	return 1;
}

int mxc_parse_cmdline(int argc, char **argv, const char *cwd, struct mxc_cmdline *cl)
{
	memset(cl, 0, sizeof *cl);
	struct mxc_globals g;
	int i = mxc_parse_globals(argc, argv, "exec", &g);
	if (i < 0)
		goto no;
	/* --config: the node config is read at create; exec does not use it */
	const char *root = g.root ? g.root : MXC_DEFAULT_ROOT;
	cl->log = g.log;
	if (cl->log && cl->log[0] == '\0')
		cl->log = NULL; /* --log "" logs to stderr, as without the flag */
	int long_env = 0, short_env = 0;
	while (i < argc) {
		const char *name = NULL, *value = NULL;
		size_t nl = 0;
		int r = mxc_parse_flag(argc, argv, &i, &name, &nl, &value);
		if (r == 0 || r == 2)
			break;
		if (r < 0)
			goto no;
		if (is(name, nl, "env") || is(name, nl, "e")) {
			/* urfave/cli refuses "two forms of the same flag". */
			if (is(name, nl, "e"))
				short_env = 1;
			else
				long_env = 1;
			if (short_env && long_env)
				goto no;
			if (add_env(cl, value) < 0)
				goto no;
		} else if (is(name, nl, "cwd")) {
			cl->cwd = value[0] ? value : NULL;
		} else {
			goto no;
		}
	}
	/* <container-id> <command> [args...] */
	if (argc - i < 2)
		goto no;
	cl->id = argv[i];
	cl->argv = argv + i + 1;
	cl->argc = argc - i - 1;
	if (!mxc_valid_id(cl->id))
		goto no;
	/* What ValidateProcess would refuse is for the Go CLI to report. */
	if (cl->cwd && cl->cwd[0] != '/')
		goto no;
	for (int k = 0; k < cl->envc; k++)
		if (!strchr(cl->env[k], '='))
			goto no;
	cl->root = mxc_abs_root(root, cwd);
	if (!cl->root)
		goto no;
	return 1;
no:
	mxc_free_cmdline(cl);
	return 0;
}

char *mxc_abs_root(const char *root, const char *cwd)
{
	/* filepath.Abs(--root) */
	char *abs;
	if (root[0] == '/') {
		abs = mxc_clean_path(root);
	} else {
		if (!cwd)
			return NULL;
		size_t a = strlen(cwd), b = strlen(root);
		char *j = malloc(a + b + 2);
		if (!j)
			return NULL;
		memcpy(j, cwd, a);
		j[a] = '/';
		memcpy(j + a + 1, root, b + 1);
		abs = mxc_clean_path(j);
		free(j);
	}
	if (abs && strcmp(abs, "/") == 0) {
		free(abs);
		abs = NULL;
	}
	return abs;
}

void mxc_free_cmdline(struct mxc_cmdline *cl)
{
	for (int k = 0; k < cl->envc; k++)
		free(cl->env[k]);
	free(cl->env);
	free(cl->root);
	memset(cl, 0, sizeof *cl);
}
