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

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* Rights that apply to a non-directory (linux/landlock's fileRights). */
#define MXC_LL_FILE_RIGHTS ((1ULL << 0) | (1ULL << 1) | (1ULL << 2) | (1ULL << 14) | (1ULL << 15))

/* The constructor's two roles. */
void mxc_client(struct mxc_cmdline *cl, int mode);
void mxc_server_main(int argc, char **argv) __attribute__((noreturn));

enum { MXC_MODE_OFF = 0, MXC_MODE_AUTO = 1, MXC_MODE_REQUIRE = 2 };

#endif
