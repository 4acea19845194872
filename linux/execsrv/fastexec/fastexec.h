//go:build linux && cgo

/*
 * The C half of mxc's exec fast path (see doc.go and docs/design/exec.md).
 *
 * Everything here runs in a C constructor, before the Go runtime of
 * mxc-runtime starts: the client (`mxc-runtime exec ID cmd...` reaching a
 * container's resident exec server) and the server itself (which never
 * starts Go at all, so it stays a few hundred KiB resident).
 */
#ifndef MXC_FASTEXEC_H
#define MXC_FASTEXEC_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * mxc_openat is openat(2) as the kernel has it. musl's open and openat
 * follow every O_CLOEXEC open with fcntl(F_SETFD, FD_CLOEXEC), for kernels
 * before 2.6.23; mxc needs far newer ones (Landlock), so that is one system
 * call per open for nothing, and the fast paths open a file per Landlock
 * rule on every exec.
 */
static inline int mxc_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

static inline int mxc_open(const char *path, int flags, mode_t mode)
{
	return mxc_openat(AT_FDCWD, path, flags, mode);
}

/* Wire format: one SOCK_SEQPACKET message per request or reply. */
#define MXC_REQ_MAGIC 0x3158434dU /* "MXC1" */
#define MXC_MSG_MAGIC 0x3258434dU /* "MXC2" */
#define MXC_REQ_VERSION 1U
/* Largest request; a bigger command line takes the normal path. */
#define MXC_REQ_MAX (192 * 1024)
#define MXC_REQ_MAX_STRINGS 65536

enum {
	MXC_MSG_STARTED = 1,  /* server: the process runs; value = its pid (container's view) */
	MXC_MSG_EXITED = 2,   /* server: value = exit status as runc reports it (128+sig) */
	MXC_MSG_FALLBACK = 3, /* server: nothing ran; take the normal path; text = why */
	MXC_MSG_SIGNAL = 4,   /* client: forward signal value to the process */
};

struct mxc_msg {
	uint32_t magic;
	uint32_t type;
	int32_t value;
	uint32_t textlen; /* followed by textlen bytes of text */
};

struct mxc_request_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t argc;
	uint32_t envc;
	uint32_t cwdlen; /* 0: the spec's cwd */
};

/* A decoded request; the strings point into the received buffer. */
struct mxc_request {
	char *cwd; /* NULL: the process's cwd from the spec */
	int argc;
	char **argv; /* NULL-terminated */
	int envc;
	char **env; /* NULL-terminated: exec --env entries */
};

/* A growable byte buffer; oom is sticky. */
struct mxc_buf {
	char *p;
	size_t len, cap;
	int oom;
};
void mxc_buf_add(struct mxc_buf *b, const void *d, size_t n);
void mxc_buf_str(struct mxc_buf *b, const char *s);
void mxc_buf_char(struct mxc_buf *b, char c);
void mxc_buf_free(struct mxc_buf *b);
/* Appends s as a JSON string literal exactly as Go's encoding/json does. */
void mxc_buf_json(struct mxc_buf *b, const char *s, size_t n);

int mxc_encode_request(const struct mxc_request *r, struct mxc_buf *out);
int mxc_decode_request(char *data, size_t len, struct mxc_request *r);
void mxc_free_request(struct mxc_request *r);

/* Go's strings.TrimSpace on s[0:n]: sets [*start, *end). */
void mxc_trim_space(const char *s, size_t n, size_t *start, size_t *end);
/* Go's path/filepath.Clean; returns a malloc'd string (NULL on OOM). */
char *mxc_clean_path(const char *p);
/* The same of p[0:n] into out, which has room for n + 2 bytes (out and p
 * must not overlap). */
void mxc_clean_into(const char *p, size_t n, char *out);

/* The command line of an eligible `exec`. */
struct mxc_cmdline {
	char *root;           /* absolute, cleaned --root */
	const char *log;      /* --log, NULL if not given */
	const char *cwd;      /* --cwd, NULL if not given or empty */
	char **env;           /* --env entries, split on ',' and trimmed as urfave/cli does */
	int envc;
	const char *id;
	char **argv; /* the command (points into the process's argv) */
	int argc;
};
/*
 * Returns 1 and fills cl when argv is `mxc-runtime [global flags] exec
 * [--env/-e X]... [--cwd D] ID CMD [ARGS...]` with only the flags the fast
 * path can honour exactly; 0 for anything else (the Go CLI handles it).
 */
int mxc_parse_cmdline(int argc, char **argv, const char *cwd, struct mxc_cmdline *cl);
void mxc_free_cmdline(struct mxc_cmdline *cl);
/* cmd/mxc-runtime's validateID. */
int mxc_valid_id(const char *id);
/* filepath.Abs(root) cleaned, malloc'd; NULL for "/" or when it cannot be made. */
char *mxc_abs_root(const char *root, const char *cwd);

/* Shared with start.c (client.c): a small file read whole (-1: cannot),
 * whether pid is alive with that start time (its state letter in *state),
 * whether a freezer file says frozen (or cannot tell). */
int mxc_read_small(const char *path, char *buf, size_t cap);
int mxc_process_is(long pid, unsigned long long start, char *state);
int mxc_frozen(const char *path);

/*
 * libcontainer's state.json as `start` and `delete` read it (state.c):
 * the init's pid and start time, the file that says whether its cgroup is
 * frozen (linux/container.FreezeFile), every cgroup path, and what makes a
 * delete more than removing those and the state dir. mxc_parse_state
 * returns 0, or -1 when the document is not in the exact form libcontainer
 * writes or has no freeze file (the Go CLI then reads it).
 */
struct mxc_state {
	long pid;
	unsigned long long start;
	char freeze[4096];
	char **cgroups; /* the values of cgroup_paths */
	int ncgroups;
	int pid_private; /* config.namespaces has a NEWPID without a path */
	int poststop;    /* config has poststop hooks */
	int intelrdt;    /* intel_rdt_path is set */
};
int mxc_parse_state(const char *data, size_t len, const char *id, struct mxc_state *st);
void mxc_free_state(struct mxc_state *st);
/* All of fd (at most 16 MiB: ENOMEM beyond), malloc'd and NUL-terminated. */
char *mxc_read_fd(int fd, size_t *len);
/* mxc_read_fd of a file opened without following a symlink. */
char *mxc_read_file(const char *path, size_t *len);
char *mxc_join3(const char *a, const char *b, const char *c);

/*
 * What `start ID` and `delete ID` share (verb.c): the state root and dir,
 * the --log file created as the Go CLI's `before` does, the container's
 * lock (tried without waiting) and its parsed state.json. mxc_verb_open
 * returns 0, or -1 with *why set when the Go CLI must run the command.
 */
struct mxc_globals;
struct mxc_verb {
	char *root, *statedir, *lock;
	int lockfd, logfd;
	struct mxc_state st;
};
int mxc_verb_open(const struct mxc_globals *g, const char *id, struct mxc_verb *v, const char **why);
void mxc_verb_close(struct mxc_verb *v);
void mxc_start_main(int argc, char **argv);
void mxc_delete_main(int argc, char **argv);

/*
 * libcontainer's prepareEnv on in[0:n] (after the UI scrub): duplicates
 * resolved with the last one winning, an empty HOME dropped. Returns the
 * number of entries written to out (room for n+2), or -1 with *err set
 * (missing '=', empty name). *home_set is 1 when a non-empty HOME is kept.
 */
int mxc_dedup_env(char **in, int n, char **out, int *home_set, const char **err);
/*
 * The home directory of uid in passwd-formatted data, as moby/sys/user's
 * LookupUid + runc's getUserHome: "/" when there is no entry or the data
 * cannot be parsed. Returns a malloc'd string (NULL on OOM).
 */
char *mxc_passwd_home(const char *data, size_t len, long uid, int readerr);

/* Go's os/exec.LookPath with PATH; 0 and *out (malloc'd) on success. */
int mxc_lookpath(const char *file, const char *path, char **out);
/*
 * The same without allocating (for a child that shares its parent's
 * memory): buf has 2 * mxc_lookpath_scratch(file, path) bytes; on success
 * (0) the result is the string at buf.
 */
size_t mxc_lookpath_scratch(const char *file, const char *path);
int mxc_lookpath_into(const char *file, const char *path, int accept_dot, char *buf, size_t half);

/* Rights that apply to a non-directory (linux/landlock's fileRights). */
#define MXC_LL_FILE_RIGHTS ((1ULL << 0) | (1ULL << 1) | (1ULL << 2) | (1ULL << 14) | (1ULL << 15))

/* The constructor's roles. */
void mxc_client(struct mxc_cmdline *cl, int mode);
void mxc_server_main(int argc, char **argv) __attribute__((noreturn));

/* premonitor.c: `policy-monitor CONFIG` with MXC_PREMON_EXE set, the
 * policy monitor's C stage; execs the Go monitor or exits. */
void mxc_premonitor_main(int argc, char **argv) __attribute__((noreturn));

/*
 * Go's flag package on argv[*i] (see cmdline.c): 0 a non-flag, 2 "--"
 * (consumed), 1 a flag with its value (=v or the next argument), -1 a
 * malformed flag or one without a value.
 */
int mxc_parse_flag(int argc, char **argv, int *i, const char **name, size_t *namelen, const char **value);

/* A flag's name (namelen bytes) equals want. */
int mxc_is_flag(const char *name, size_t namelen, const char *want);

/*
 * The global flags before the verb, as the Go CLI takes them: --root,
 * --log, --log-format (text, json or empty) and --config, the last of a
 * repeated flag winning, with counts of --log and --config. Returns the
 * index of the argument after verb, or -1 when argv asks for anything else
 * (another global flag, another verb, shell completion): the Go CLI's.
 */
struct mxc_globals {
	const char *root, *log, *logfmt, *config;
	int nlog, nconfig;
};
int mxc_parse_globals(int argc, char **argv, const char *verb, struct mxc_globals *g);

/*
 * Record files (linux/agentexec/records_linux.go): the last step's config
 * memfd and the sandbox's cached plans.
 */
#define MXC_REC_MAGIC_CONFIG 0x3141584dU  /* "MXA1" */
#define MXC_REC_MAGIC_SANDBOX 0x3153584dU /* "MXS1" */
#define MXC_REC_VERSION 1U
#define MXC_REC_MAX (16u << 20)
enum {
	MXC_REC_JSON = 1,
	MXC_REC_CPLAN = 2,
	MXC_REC_LANDLOCK = 3,
	MXC_REC_LLRULE = 4,
	MXC_REC_SECCOMP = 5,
	MXC_REC_SBKEY = 6,
	MXC_REC_SBFLAGS = 7,
	MXC_REC_SBRW = 8,
	MXC_REC_SBDENY = 9,
};
#define MXC_CPLAN_REQUIRE 1U
#define MXC_SB_HOSTNET 1U
#define MXC_LL_MAX_ABI 7      /* linux/landlock's MaxKnownABI */
#define MXC_MAX_PROGS 64      /* seccomp filters in one plan */
#define MXC_MAX_RULES 65536   /* Landlock rules in one plan */
#define MXC_MAX_SBPATHS 65536 /* readwrite or denied paths in one plan */
#define MXC_BPF_MAXINSNS 4096

struct mxc_ll_rule {
	uint64_t access;
	char *path;
};

struct mxc_prog {
	uint32_t flags;    /* seccomp(2) flags; 0: prctl(PR_SET_SECCOMP) */
	uint32_t len;      /* instructions */
	void *insns;       /* struct sock_filter[len] */
};

/* A decoded record file; everything is malloc'd but json (into the data). */
struct mxc_plan {
	uint32_t magic;
	const unsigned char *json;
	size_t json_len;
	int has_json;
	int cplan;
	uint32_t cflags;
	int landlock;
	uint32_t ll_min_abi, ll_plan_abi, ll_attrsize, ll_apply;
	uint64_t ll_handled, ll_scoped, ll_flags;
	int nrules;
	struct mxc_ll_rule *rules;
	int nprogs;
	struct mxc_prog progs[MXC_MAX_PROGS];
	int has_key;
	unsigned char key[32];
	int has_sbflags;
	uint32_t sbflags;
	uint64_t capmask;
	int nrw, ndeny;
	char **rw, **deny;
};
/* 0 on success; -1 with *err for anything but the one canonical encoding. */
int mxc_decode_plan(const unsigned char *data, size_t len, uint32_t magic, struct mxc_plan *p, const char **err);
void mxc_free_plan(struct mxc_plan *p);
/* The canonical encoding of p (tests: decode then encode is the identity). */
int mxc_encode_plan(const struct mxc_plan *p, struct mxc_buf *out);

/* The last step (laststep.c). */
/* 0: the C step can apply p exactly here; -1 (and *why): the Go step must. Changes nothing. */
int mxc_step_ready(const struct mxc_plan *p, const char **why);
/* Applies p (Landlock, the PATH lookup, seccomp) and execs argv with Go's
 * view of envp; never returns: exits 126/127 with "<prefix>: why" on stderr. */
void mxc_step_exec(const struct mxc_plan *p, char **argv, char **envp, const char *prefix) __attribute__((noreturn));
/* os.Environ() of a Go process started with envp: empty strings dropped,
 * a later duplicate of a name dropped. malloc'd, NULL-terminated. */
char **mxc_go_environ(char **envp);
/* exec.LookPath with PATH; accept_dot: a relative result is returned (the
 * Go step ignores exec.ErrDot). 0 and *out (malloc'd) on success. */
int mxc_lookpath_dot(const char *file, const char *path, int accept_dot, char **out);
/*
 * agentexec.parseArgs on args[0:n] (after the verb): 0 with *fd, *server
 * and *cmd (index of the command) on success, -1 for anything the Go step
 * would refuse.
 */
int mxc_parse_agentexec_args(int n, char **args, long *fd, int *server, int *cmd);
/* `agent-exec`: returns when the Go step must run. */
void mxc_agentexec_main(int argc, char **argv, char **envp);

/* The sandbox (sandbox.c). */
struct mxc_sbcmd {
	const char *policy;
	const char *config; /* the node config path; "" for none */
	char **argv;        /* the command */
	int argc;
};
/* 1 and c when argv is a `sandbox` command line the C path takes exactly
 * as the Go CLI would; 0 for anything else. */
int mxc_parse_sandbox_cmdline(int argc, char **argv, char **envp, struct mxc_sbcmd *c);
void mxc_sha256(const void *data, size_t n, unsigned char out[32]);
/* The plan cache key (linux/sandbox PlanKey); node NULL: no node config. */
void mxc_sandbox_key(const unsigned char *pol, size_t pn, const unsigned char *node, size_t nn, const char *exe_id, unsigned char key[32]);
/* "dev:ino:size:mtime:ctime" of st, as linux/sandbox's binaryIdentity. */
void mxc_exe_identity(const struct stat *st, char *buf, size_t cap);
/* os.Getwd with envp's PWD: 1 and *out (malloc'd, or NULL when Go's Getwd
 * fails), or 0 when only Go's slow path could tell. */
int mxc_go_getwd(char **envp, char **out);
/* `sandbox`: returns when the Go path must run. */
void mxc_sandbox_main(int argc, char **argv, char **envp);

enum { MXC_MODE_OFF = 0, MXC_MODE_AUTO = 1, MXC_MODE_REQUIRE = 2 };
/* The mode an environment variable asks for: "0", off, false or no: off;
 * "require": required; unset or anything else: auto. */
int mxc_env_mode(const char *name);
/* Whether <name>_DEBUG=1: say on stderr which path a command took. */
int mxc_env_debug(const char *name);
/*
 * A command the fast path of verb (switched by the variable name) hands to
 * the Go CLI, for reason why: in mode require it fails instead (exit 255);
 * with <name>_DEBUG=1 the reason is said on stderr. Returns otherwise.
 */
void mxc_hand_over(const char *verb, const char *name, int mode, const char *why);

/* The Go CLI's default --root. */
#define MXC_DEFAULT_ROOT "/run/mxc"

#endif
