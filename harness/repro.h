/*
 * lockstep-repro: native reproducer for lockstep's perf_mmap() accounting
 * scenarios. The contract is harness/PROTOCOL.md; the scripts come from
 * src/scenario/ops.ts (toScript). Build: make -C harness.
 *
 * Process layout:
 *   controller (root)  reads the whole script, validates it, then runs one
 *                      begin..end block at a time; owns the sysctls, CPU
 *                      hotplug and all output.
 *   worker             one per block, forked from the controller, runs as the
 *                      block's uid with a few capabilities; executes the
 *                      perf ops sent to it over a pipe and replies per op.
 *   helper             one per `ballast` op, same uid; charges the per-user
 *                      counter, reports once, then waits to be killed at end.
 *
 * Everything talks over pipes with fixed-size structs (well under PIPE_BUF,
 * so each message is one atomic write) because all processes are forks of
 * one binary.
 *
 * Compilation units (this header holds what they share):
 *   main.c        arguments, reading the script, main()
 *   parse.c       op-script parsing into blocks (struct item) of ops
 *   controller.c  signals, children, blocks: run_op/run_block, hello/done
 *   worker.c      the worker: perf open/map, its ops, worker_main
 *   aux.c         AUX-area ops (aux_ring, aux_map, aux_unmap): parsing and worker side
 *   helpers.c     ballast and hand-off helpers, helper_main
 *   privs.c       a child's drop to the block's uid, capabilities and rlimits
 *   out.c         the JSON line writer and error lines
 *   io.c          file, sysfs and /proc helpers
 *   compat.h      kernel ABI numbers older headers lack
 */
#ifndef LOCKSTEP_REPRO_H
#define LOCKSTEP_REPRO_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ID_MAX 64
#include "lockstep-limits.h" /* MAX_BALLAST_BUFS, shared with the scenario schema */
#define MSG_MAX 200
/* children (worker + helpers) of one block; kill_helper indexes are below it */
#define MAX_CHILDREN 4096

/* ------------------------------------------------------------------ */
/* Script model                                                        */

enum op_kind {
	OP_SYSCTL, OP_RLIMIT, OP_BALLAST_PERF, OP_BALLAST_URING, OP_MAP,
	OP_REMAP, OP_UNMAP, OP_PROBE, OP_CPU, OP_HANG, OP_SYSRQ,
	OP_BALLAST_BPF, OP_EXIT, OP_BALLAST_SECRET, OP_URING, OP_UNMAP_PART,
	OP_MAP_OUTPUT, OP_AUX_RING, OP_AUX_MAP, OP_AUX_UNMAP,
	OP_HANDOFF, OP_KILL_HELPER, OP_CAP_IPC_LOCK,
};

/* the op word of each kind, as result lines name it (parse.c) */
extern const char *const op_names[];

struct op {
	enum op_kind kind;
	int line;
	char name[ID_MAX + 1];   /* buffer name, sysctl file name or sysrq key */
	char to[ID_MAX + 1];     /* map_output: the buffer whose ring buffer the new event writes to */
	long long a, b;          /* op-specific numbers; -1 means "inf" for rlimit */
	int nbufs;               /* ballast perf: data pages per buffer */
	long long *bufs;
};

/* One begin..end block, or (stray) an error line outside any block. */
struct item {
	bool stray;
	int line;
	char id[ID_MAX + 1];
	long long uid, cpus, mlock_kb, paranoid, rlimit_kb /* -1 = inf */, cap_ipc_lock;
	struct op *ops;
	int nops, cap;
	int err_line;            /* > 0: the block is invalid and will be skipped */
	char err[MSG_MAX];
};

/* ------------------------------------------------------------------ */
/* Controller <-> worker / helper messages                             */

struct req {
	enum op_kind kind;
	char name[ID_MAX + 1];
	char to[ID_MAX + 1];
	long long a, b;
};

struct rep {
	int ok;
	int err;                 /* errno value, 0 if none */
	long long headroom;      /* probe */
	int spilled;             /* probe */
	long long mapped;        /* ballast */
	char msg[MSG_MAX];
};

_Static_assert(sizeof(struct rep) < PIPE_BUF && sizeof(struct req) < PIPE_BUF,
	       "pipe messages must be atomic");

/* ------------------------------------------------------------------ */
/* Worker buffers (worker.c, aux.c)                                     */

struct wbuf {
	char name[ID_MAX + 1];
	int fd;
	int cpu;
	size_t size;
	void **maps;
	int nmaps;
	void **aux_maps;         /* aux_map: live AUX mappings (aux.c) */
	int naux;
	size_t aux_size;
};

/* ------------------------------------------------------------------ */
/* JSON output line (out.c)                                             */

struct line {
	char b[4096];
	size_t n;
};

/* ------------------------------------------------------------------ */
/* Globals                                                             */

/* main.c: from the arguments */
extern int g_op_timeout;          /* seconds per worker/helper op (--op-timeout) */
extern bool g_allow_uid0;         /* --allow-uid-0: blocks may run as root (a guest) */
extern pid_t g_controller;        /* the controller's pid: children check their parent */
extern long g_page;               /* PAGE_SIZE in bytes */
/* out.c */
extern int g_out;                 /* where the JSON lines go (--out, default stdout) */
extern int g_errors;              /* error lines emitted: decides the exit status */
/* controller.c */
extern volatile sig_atomic_t g_sig;  /* termination signal seen, 0 if none */
extern sigset_t g_waitmask;       /* mask used inside ppoll: termination signals unblocked */
extern const int term_sigs[3];    /* SIGINT, SIGTERM, SIGHUP */
/* worker.c: child side, the worker's (or a handoff helper's) end of the fd-passing socket */
extern int g_pass_fd;

/* ------------------------------------------------------------------ */
/* out.c: JSON lines, one write(2) each                                 */

/* Symbolic errno name ("EPERM"), "" for 0, "E<n>" when glibc has none. */
const char *errname(int e);
void l_open(struct line *l, const char *ev);
void l_str(struct line *l, const char *k, const char *v);
void l_int(struct line *l, const char *k, long long v);
/* a kB figure, null when negative (unavailable) */
void l_kb(struct line *l, const char *k, long long v);
void l_bool(struct line *l, const char *k, bool v);
/* closes the object and writes the line to g_out in one write(2) */
void l_emit(struct line *l);
/* an `error` line; scenario NULL, i < 0 and line_no <= 0 leave those keys out; counts g_errors */
void emit_error(const char *scenario, int i, int line_no, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ */
/* io.c: files, sysfs and /proc                                        */

ssize_t write_all(int fd, const void *p, size_t n);
/* blocking read of exactly n bytes; 0 on EOF before anything, -1 on error */
ssize_t read_full(int fd, void *p, size_t n);
/* a decimal number from a file (sysctl, sysfs); -1 with errno on failure */
int read_ll(const char *path, long long *v);
int write_str(const char *path, const char *s);
int write_ll(const char *path, long long v);
/* write v unless cur already equals it (read-only /proc/sys in containers) */
int set_ll(const char *path, long long cur, long long v);
/* number of online CPUs; their ids into ids[0..max) when ids is given */
int online_cpus(int *ids, int max);
/* VmPin / VmLck in kB of pid; -1 each when unreadable */
void vm_status(pid_t pid, long long *pin, long long *lck);
/* this process's VmPin in kB, -1 when unreadable */
long long self_vmpin(void);

/* ------------------------------------------------------------------ */
/* parse.c: the op script                                              */

/* [A-Za-z0-9_.-]{1,64} */
bool is_ident(const char *s);
/* decimal integer, no '+' or leading zeros, within [lo, hi] */
bool parse_num(const char *s, long long lo, long long hi, long long *out);
/* formats the one-token message into err (MSG_MAX bytes); returns -1 */
int perr(char *err, const char *fmt, const char *tok);
/* splits text (modified in place) into blocks and stray errors; returns their count */
int parse_script(char *text, size_t len, struct item **items);

/* ------------------------------------------------------------------ */
/* aux.c: the lockstep_aux PMU's ops                                    */

/* the PMU's dynamic type, or -1 (errno set) when the kernel has none */
int aux_pmu_type(void);
bool is_aux_op(const char *w);
int parse_aux_op(struct op *op, char **t, int nt, char *err);
/* true (reason in why) when b has AUX ops and the kernel has no lockstep_aux PMU */
bool aux_skip_reason(const struct item *b, char *why, size_t len);
void w_aux_ring(const struct req *q, struct rep *r);
void w_aux_map(const struct req *q, struct rep *r);
void w_aux_unmap(const struct req *q, struct rep *r);

/* ------------------------------------------------------------------ */
/* privs.c: a child's credentials                                      */

uint64_t capmask(int cap);
/* become uid with capabilities want (minus idle in the effective set) and the given RLIMIT_MEMLOCK */
int drop_privs(uid_t uid, uint64_t want, uint64_t idle, long long memlock_kb, bool memlock_clamp, char *msg);
/* close every fd above 2 but the three given */
void close_fds_except(int keep1, int keep2, int keep3);

/* ------------------------------------------------------------------ */
/* worker.c: the worker process                                        */

/* a disabled PERF_COUNT_SW_DUMMY event on cpu; fd or -1 (errno) */
int perf_open(int cpu);
/* mmap of 1 + data_pages pages of fd; MAP_FAILED (errno) on failure */
void *perf_map(int fd, long long data_pages);
struct wbuf *wbuf_find(const char *name);
/* marks the reply failed with err and msg (msg may be NULL) */
void fail(struct rep *r, int err, const char *msg);
void map_new(const struct req *q, struct rep *r, int fd);
void __attribute__((noreturn)) worker_main(const struct item *b, int req_fd, int rep_fd);

/* ------------------------------------------------------------------ */
/* helpers.c: ballast and hand-off helpers                             */

void __attribute__((noreturn)) helper_main(const struct item *b, const struct op *op, int rep_fd);

/* ------------------------------------------------------------------ */
/* controller.c                                                        */

/* the pending termination signal (also noticed while blocked), 0 if none */
int sig_check(void);
void on_signal(int s);
/* error line, the active block undone, exit 128 + sig (no `done`) */
void __attribute__((noreturn)) terminate(int sig);
void run_block(const struct item *b);
void emit_hello(void);
void emit_done(void);

#endif
