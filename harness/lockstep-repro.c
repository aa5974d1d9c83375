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
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/perf_event.h>

#if defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#define HAVE_IO_URING_H 1
#endif
#endif
#ifndef HAVE_IO_URING_H
/* Only setup's params (all zero in, ignored out) and the register opcode are needed. */
struct io_uring_params { uint8_t raw[120]; };
#define IORING_REGISTER_BUFFERS 0
#endif

/* Syscall numbers are the same on every arch for these (unified table since 5.1). */
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef SYS_bpf
#if defined(__x86_64__)
#define SYS_bpf 321
#elif defined(__aarch64__)
#define SYS_bpf 280 /* asm-generic/unistd.h */
#else
#error "SYS_bpf: add this arch's number"
#endif
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define PROTO_VERSION 1
/* RLIMIT_MEMLOCK of every helper in every runtime (src/model HELPER_RLIMIT_MEMLOCK_KB) */
#define HELPER_MEMLOCK_KB 8192
#define ID_MAX 64
#define PROBE_CAP (1LL << 18)   /* pages: the probe stops (spilled=false) at this headroom */
#include "lockstep-limits.h" /* MAX_BALLAST_BUFS, shared with the scenario schema */
#define MAX_SCRIPT_BYTES (16u << 20)
#define MSG_MAX 200

/* ------------------------------------------------------------------ */
/* Script model                                                        */

enum op_kind {
	OP_SYSCTL, OP_RLIMIT, OP_BALLAST_PERF, OP_BALLAST_URING, OP_MAP,
	OP_REMAP, OP_UNMAP, OP_PROBE, OP_CPU, OP_HANG, OP_SYSRQ,
	OP_BALLAST_BPF, OP_EXIT, OP_BALLAST_SECRET, OP_URING, OP_UNMAP_PART,
	OP_MAP_OUTPUT, OP_AUX_RING, OP_AUX_MAP, OP_AUX_UNMAP,
	OP_HANDOFF, OP_KILL_HELPER, OP_CAP_IPC_LOCK,
};

static const char *const op_names[] = {
	[OP_SYSCTL] = "sysctl", [OP_RLIMIT] = "rlimit",
	[OP_BALLAST_PERF] = "ballast", [OP_BALLAST_URING] = "ballast",
	[OP_MAP] = "map", [OP_REMAP] = "remap", [OP_UNMAP] = "unmap",
	[OP_PROBE] = "probe", [OP_CPU] = "cpu", [OP_HANG] = "hang",
	[OP_SYSRQ] = "sysrq", [OP_BALLAST_BPF] = "ballast", [OP_EXIT] = "exit",
	[OP_BALLAST_SECRET] = "ballast", [OP_URING] = "uring",
	[OP_UNMAP_PART] = "unmap_part", [OP_MAP_OUTPUT] = "map_output",
	[OP_AUX_RING] = "aux_ring", [OP_AUX_MAP] = "aux_map", [OP_AUX_UNMAP] = "aux_unmap",
	[OP_HANDOFF] = "handoff", [OP_KILL_HELPER] = "kill_helper",
	[OP_CAP_IPC_LOCK] = "cap_ipc_lock",
};

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
/* Globals                                                             */

static int g_out = STDOUT_FILENO;
static int g_op_timeout = 60;
static bool g_allow_uid0;      /* --allow-uid-0: blocks may run as root (a guest) */
static pid_t g_controller;
static long g_page;
static volatile sig_atomic_t g_sig;
static int g_errors;              /* error lines emitted: decides the exit status */
static sigset_t g_waitmask;      /* mask used inside ppoll: termination signals unblocked */

static const int term_sigs[] = { SIGINT, SIGTERM, SIGHUP };

/* State of the block being run, so a signal can undo it from anywhere. */
#define MAX_CHILDREN 4096
static struct {
	bool active;
	const struct item *b;
	bool sysctls_saved;
	long long saved_mlock, saved_paranoid;
	pid_t worker;
	int req_fd, rep_fd;
	pid_t kids[MAX_CHILDREN];    /* worker + helpers, for kill/reap */
	int nkids;
	int cpu_ids[256], cpu_orig[256];
	int ncpus;
	int cur_op;              /* index of the op in flight, -1 outside ops */
	int pass_fd;             /* controller's end of the worker's fd-passing socket (handoff) */
	pid_t helpers[MAX_CHILDREN]; /* helpers in spawn order (kill_helper N); 0 once killed */
	int nhelpers;
} R;

/* Child side: the worker's (or a handoff helper's) end of the fd-passing socket. */
static int g_pass_fd = -1;

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */

static const char *errname(int e)
{
	static char buf[16];
	const char *n = e ? strerrorname_np(e) : "";
	if (n)
		return n;
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

static ssize_t write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, c + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* Blocking read of exactly n bytes; 0 on EOF before anything, -1 on error. */
static ssize_t read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, c + got, n - got);
		if (r == 0)
			return got ? -1 : 0;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	buf[n] = 0;
	return 0;
}

static int read_ll(const char *path, long long *v)
{
	char buf[64], *end;
	if (read_file(path, buf, sizeof buf) < 0)
		return -1;
	errno = 0;
	*v = strtoll(buf, &end, 10);
	if (errno || end == buf) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, s, strlen(s));
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	return 0;
}

static int write_ll(const char *path, long long v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld\n", v);
	return write_str(path, buf);
}

/*
 * Write v unless the file already holds it (`cur`): in a container /proc/sys
 * is read-only, and a scenario that keeps the host's values must still run.
 */
static int set_ll(const char *path, long long cur, long long v)
{
	return cur == v ? 0 : write_ll(path, v);
}

#define SYSCTL_DIR "/proc/sys/kernel/"
#define MLOCK_PATH SYSCTL_DIR "perf_event_mlock_kb"
#define PARANOID_PATH SYSCTL_DIR "perf_event_paranoid"

/*
 * Online CPU list from sysfs (what num_online_cpus() counts); fills ids if
 * given. Falls back to sysconf when sysfs is not mounted.
 */
static int online_cpus(int *ids, int max)
{
	char buf[4096];
	if (read_file("/sys/devices/system/cpu/online", buf, sizeof buf) < 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		for (long i = 0; ids && i < n && i < max; i++)
			ids[i] = (int)i;
		return n > 0 ? (int)n : 1;
	}
	int count = 0;
	char *p = buf;
	while (*p && *p != '\n') {
		char *end;
		long lo = strtol(p, &end, 10), hi = lo;
		if (end == p)
			break;
		p = end;
		if (*p == '-') {
			hi = strtol(p + 1, &end, 10);
			p = end;
		}
		for (long c = lo; c <= hi; c++, count++)
			if (ids && count < max)
				ids[count] = (int)c;
		if (*p == ',')
			p++;
	}
	return count;
}

/* VmPin / VmLck in kB from /proc/PID/status; -1 if unreadable (process gone or none). */
static void vm_status(pid_t pid, long long *pin, long long *lck)
{
	char path[64], buf[8192];
	*pin = *lck = -1;
	if (pid <= 0)
		return;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (read_file(path, buf, sizeof buf) < 0)
		return;
	char *p;
	if ((p = strstr(buf, "\nVmPin:")))
		*pin = strtoll(p + 7, NULL, 10);
	if ((p = strstr(buf, "\nVmLck:")))
		*lck = strtoll(p + 7, NULL, 10);
}

/*
 * The worker's own VmPin. The status file stays open (re-read from offset 0)
 * so a probe that exhausts RLIMIT_NOFILE still sees its VmPin and reports
 * the real EMFILE.
 */
static long long self_vmpin(void)
{
	static int fd = -1;
	char buf[8192];
	if (fd < 0 && (fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strstr(buf, "\nVmPin:");
	return p ? strtoll(p + 7, NULL, 10) : -1;
}

/* ------------------------------------------------------------------ */
/* JSON output: one object per line, one write(2) per line             */

struct line {
	char b[4096];
	size_t n;
};

static void l_raw(struct line *l, const char *s)
{
	/* keep room for the closing "}\n" */
	while (*s && l->n < sizeof l->b - 3)
		l->b[l->n++] = *s++;
}

static void l_qstr(struct line *l, const char *s)
{
	l_raw(l, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\'; esc[1] = (char)c; esc[2] = 0;
		} else if (c < 0x20 || c >= 0x7f) {
			/* non-ASCII is escaped per byte so the line is always valid JSON */
			snprintf(esc, sizeof esc, "\\u%04x", c);
		} else {
			esc[0] = (char)c; esc[1] = 0;
		}
		l_raw(l, esc);
	}
	l_raw(l, "\"");
}

static void l_open(struct line *l, const char *ev)
{
	l->n = 0;
	l_raw(l, "{\"ev\":");
	l_qstr(l, ev);
}

static void l_key(struct line *l, const char *k)
{
	l_raw(l, ",\"");
	l_raw(l, k);
	l_raw(l, "\":");
}

static void l_str(struct line *l, const char *k, const char *v)
{
	l_key(l, k);
	l_qstr(l, v);
}

static void l_int(struct line *l, const char *k, long long v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", v);
	l_key(l, k);
	l_raw(l, buf);
}

/* A kB figure that may be unavailable (process gone): null then. */
static void l_kb(struct line *l, const char *k, long long v)
{
	if (v < 0) {
		l_key(l, k);
		l_raw(l, "null");
	} else {
		l_int(l, k, v);
	}
}

static void l_bool(struct line *l, const char *k, bool v)
{
	l_key(l, k);
	l_raw(l, v ? "true" : "false");
}

static void l_emit(struct line *l)
{
	l->b[l->n++] = '}';
	l->b[l->n++] = '\n';
	/* one write(2) per line so lines never interleave on the serial port */
	write_all(g_out, l->b, l->n);
}

static void emit_error(const char *scenario, int i, int line_no, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void emit_error(const char *scenario, int i, int line_no, const char *fmt, ...)
{
	char msg[MSG_MAX * 2];
	va_list ap;
	g_errors++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct line l;
	l_open(&l, "error");
	if (scenario)
		l_str(&l, "scenario", scenario);
	if (i >= 0)
		l_int(&l, "i", i);
	if (line_no > 0)
		l_int(&l, "line", line_no);
	l_str(&l, "msg", msg);
	l_emit(&l);
}

/* ------------------------------------------------------------------ */
/* Script parsing (strict)                                              */

static bool is_ident(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > ID_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

/* Decimal integer, no sign unless negative, no leading zeros, within [lo, hi]. */
static bool parse_num(const char *s, long long lo, long long hi, long long *out)
{
	const char *d = s[0] == '-' ? s + 1 : s;
	size_t n = strlen(d);
	if (n == 0 || n > 18 || (d[0] == '0' && (n > 1 || d != s)))
		return false;
	for (size_t k = 0; k < n; k++)
		if (d[k] < '0' || d[k] > '9')
			return false;
	long long v = strtoll(s, NULL, 10);
	if (v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

#define KB_MAX (1LL << 40)       /* 1 PiB: far beyond anything meaningful, no overflow in *1024 */

static int perr(char *err, const char *fmt, const char *tok)
{
	snprintf(err, MSG_MAX, fmt, tok);
	return -1;
}

static int parse_begin(struct item *it, char **t, int nt, char *err)
{
	static const char *const keys[] = { "uid", "cpus", "mlock_kb", "paranoid", "rlimit_kb", "cap_ipc_lock" };
	long long *vals[] = { &it->uid, &it->cpus, &it->mlock_kb, &it->paranoid, &it->rlimit_kb, &it->cap_ipc_lock };
	/*
	 * uid 0 only with --allow-uid-0 (a guest's runtime passes it): root's
	 * per-user record is shared with every root process and lives until reboot
	 */
	const long long lo[] = { g_allow_uid0 ? 0 : 1, 1, 0, INT_MIN, 0, 0 };
	const long long hi[] = { 4294967294LL, 4096, INT_MAX, INT_MAX, KB_MAX, 1 };

	if (nt != 8)
		return perr(err, "begin needs 7 fields: ID uid= cpus= mlock_kb= paranoid= rlimit_kb= cap_ipc_lock=%s", "");
	if (!is_ident(t[1]))
		return perr(err, "bad scenario id '%s'", t[1]);
	snprintf(it->id, sizeof it->id, "%s", t[1]);
	for (int k = 0; k < 6; k++) {
		size_t kl = strlen(keys[k]);
		const char *tok = t[2 + k];
		if (strncmp(tok, keys[k], kl) != 0 || tok[kl] != '=') {
			snprintf(err, MSG_MAX, "expected %s=N, got '%.64s'", keys[k], tok);
			return -1;
		}
		const char *v = tok + kl + 1;
		if (k == 4 && strcmp(v, "inf") == 0) {
			*vals[k] = -1;
			continue;
		}
		if (!parse_num(v, lo[k], hi[k], vals[k])) {
			if (k == 0 && !strcmp(v, "0"))
				return perr(err, "uid 0 refused: its counter is shared with every root process and lives until reboot (--allow-uid-0 in a guest)%s", "");
			return perr(err, "bad value in '%.80s'", tok);
		}
	}
	return 0;
}

static bool is_aux_op(const char *w);
static int parse_aux_op(struct op *op, char **t, int nt, char *err);
/* The ops of field reports (issue 16): handoff, kill_helper, cap_ipc_lock. */
static int parse_field_op(struct op *op, char **t, int nt, char *err)
{
	const char *w = t[0];
	if (!strcmp(w, "handoff")) {
		if (nt != 4)
			return perr(err, "'%s' takes a different number of arguments", w);
		op->kind = OP_HANDOFF;
		if (!is_ident(t[1]))
			return perr(err, "bad buffer name '%.64s'", t[1]);
		snprintf(op->name, sizeof op->name, "%s", t[1]);
		if (!parse_num(t[2], 0, 4095, &op->a))
			return perr(err, "bad cpu '%.64s'", t[2]);
		if (!parse_num(t[3], 0, 1 << 30, &op->b))
			return perr(err, "bad data page count '%.64s'", t[3]);
	} else if (!strcmp(w, "kill_helper")) {
		if (nt != 2)
			return perr(err, "'%s' takes a different number of arguments", w);
		op->kind = OP_KILL_HELPER;
		if (!strcmp(t[1], "*"))
			op->a = -1;
		else if (!parse_num(t[1], 0, MAX_CHILDREN - 1, &op->a))
			return perr(err, "bad helper index '%.64s' (0-based, or *)", t[1]);
	} else {
		if (nt != 2)
			return perr(err, "'%s' takes a different number of arguments", w);
		op->kind = OP_CAP_IPC_LOCK;
		if (!parse_num(t[1], 0, 1, &op->a))
			return perr(err, "cap_ipc_lock must be 0 or 1, got '%.64s'", t[1]);
	}
	return 0;
}

static int parse_op(struct op *op, char **t, int nt, char *err)
{
	const char *w = t[0];
	memset(op, 0, sizeof *op);
#define NEED(n) do { if (nt != (n)) return perr(err, "'%s' takes a different number of arguments", w); } while (0)
	if (!strcmp(w, "sysctl")) {
		NEED(3);
		op->kind = OP_SYSCTL;
		if (!strcmp(t[1], "mlock_kb")) {
			snprintf(op->name, sizeof op->name, "perf_event_mlock_kb");
			if (!parse_num(t[2], 0, INT_MAX, &op->a))
				return perr(err, "bad mlock_kb value '%.64s'", t[2]);
		} else if (!strcmp(t[1], "paranoid")) {
			snprintf(op->name, sizeof op->name, "perf_event_paranoid");
			if (!parse_num(t[2], INT_MIN, INT_MAX, &op->a))
				return perr(err, "bad paranoid value '%.64s'", t[2]);
		} else {
			return perr(err, "unknown sysctl '%.64s' (mlock_kb or paranoid)", t[1]);
		}
	} else if (!strcmp(w, "rlimit")) {
		NEED(2);
		op->kind = OP_RLIMIT;
		if (!strcmp(t[1], "inf"))
			op->a = -1;
		else if (!parse_num(t[1], 0, KB_MAX, &op->a))
			return perr(err, "bad rlimit '%.64s'", t[1]);
	} else if (!strcmp(w, "ballast")) {
		if (nt < 2)
			return perr(err, "'%s' needs perf or io_uring", w);
		if (!strcmp(t[1], "perf")) {
			op->kind = OP_BALLAST_PERF;
			op->nbufs = nt - 2;
			if (op->nbufs > MAX_BALLAST_BUFS)
				return perr(err, "too many ballast buffers%s", "");
			op->bufs = calloc((size_t)op->nbufs + 1, sizeof *op->bufs);
			if (!op->bufs)
				return perr(err, "out of memory%s", "");
			for (int k = 0; k < op->nbufs; k++)
				if (!parse_num(t[2 + k], 0, 1 << 30, &op->bufs[k]))
					return perr(err, "bad ballast buffer size '%.64s'", t[2 + k]);
		} else if (!strcmp(t[1], "io_uring")) {
			NEED(3);
			op->kind = OP_BALLAST_URING;
			if (!parse_num(t[2], 0, 1LL << 30, &op->a))
				return perr(err, "bad io_uring page count '%.64s'", t[2]);
		} else if (!strcmp(t[1], "bpf")) {
			NEED(3);
			op->kind = OP_BALLAST_BPF;
			if (!parse_num(t[2], 0, 1LL << 30, &op->a))
				return perr(err, "bad bpf page count '%.64s'", t[2]);
		} else if (!strcmp(t[1], "memfd_secret")) {
			NEED(3);
			op->kind = OP_BALLAST_SECRET;
			if (!parse_num(t[2], 0, 1LL << 30, &op->a))
				return perr(err, "bad memfd_secret page count '%.64s'", t[2]);
		} else {
			return perr(err, "unknown ballast kind '%.64s' (perf, io_uring, bpf or memfd_secret)", t[1]);
		}
	} else if (!strcmp(w, "uring")) {
		NEED(2);
		op->kind = OP_URING;
		if (!parse_num(t[1], 1, 1LL << 30, &op->a))
			return perr(err, "bad io_uring page count '%.64s'", t[1]);
	} else if (!strcmp(w, "unmap_part")) {
		NEED(2);
		op->kind = OP_UNMAP_PART;
		if (!is_ident(t[1]))
			return perr(err, "bad buffer name '%.64s'", t[1]);
		snprintf(op->name, sizeof op->name, "%s", t[1]);
	} else if (!strcmp(w, "map_output")) {
		NEED(3);
		op->kind = OP_MAP_OUTPUT;
		if (!is_ident(t[1]))
			return perr(err, "bad buffer name '%.64s'", t[1]);
		if (!is_ident(t[2]))
			return perr(err, "bad buffer name '%.64s'", t[2]);
		snprintf(op->name, sizeof op->name, "%s", t[1]);
		snprintf(op->to, sizeof op->to, "%s", t[2]);
	} else if (!strcmp(w, "map")) {
		NEED(4);
		op->kind = OP_MAP;
		if (!is_ident(t[1]))
			return perr(err, "bad buffer name '%.64s'", t[1]);
		snprintf(op->name, sizeof op->name, "%s", t[1]);
		if (!parse_num(t[2], 0, 4095, &op->a))
			return perr(err, "bad cpu '%.64s'", t[2]);
		if (!parse_num(t[3], 0, 1 << 30, &op->b))
			return perr(err, "bad data page count '%.64s'", t[3]);
	} else if (!strcmp(w, "remap") || !strcmp(w, "unmap")) {
		NEED(2);
		op->kind = w[0] == 'r' ? OP_REMAP : OP_UNMAP;
		if (!is_ident(t[1]) && !(op->kind == OP_UNMAP && !strcmp(t[1], "*")))
			return perr(err, "bad buffer name '%.64s'", t[1]);
		snprintf(op->name, sizeof op->name, "%s", t[1]);
	} else if (!strcmp(w, "handoff") || !strcmp(w, "kill_helper") || !strcmp(w, "cap_ipc_lock")) {
		if (parse_field_op(op, t, nt, err) < 0)
			return -1;
	} else if (!strcmp(w, "probe")) {
		NEED(1);
		op->kind = OP_PROBE;
	} else if (!strcmp(w, "exit")) {
		if (nt != 1 && !(nt == 2 && !strcmp(t[1], "last")))
			return perr(err, "'exit' takes nothing or 'last', got '%.64s'", t[1]);
		op->kind = OP_EXIT;
		op->a = nt == 2;   /* last: the uid's last process; wait for its record to be freed */
	} else if (!strcmp(w, "cpu")) {
		NEED(3);
		op->kind = OP_CPU;
		if (!parse_num(t[1], 0, 4095, &op->a))
			return perr(err, "bad cpu '%.64s'", t[1]);
		if (!parse_num(t[2], 0, 1, &op->b))
			return perr(err, "cpu state must be 0 or 1, got '%.64s'", t[2]);
	} else if (!strcmp(w, "hang")) {
		NEED(2);
		op->kind = OP_HANG;
		if (!parse_num(t[1], 0, 86400, &op->a))
			return perr(err, "bad hang seconds '%.64s'", t[1]);
	} else if (!strcmp(w, "sysrq")) {
		NEED(2);
		op->kind = OP_SYSRQ;
		/* the kernel acts on the first character only; insist on exactly one */
		const char *k = t[1];
		if (strlen(k) != 1 || !((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') ||
					(k[0] >= '0' && k[0] <= '9')))
			return perr(err, "sysrq key must be one letter or digit, got '%.64s'", k);
		snprintf(op->name, sizeof op->name, "%s", k);
	} else if (is_aux_op(w)) {
		if (parse_aux_op(op, t, nt, err) < 0)
			return -1;
	} else {
		return perr(err, "unknown op '%.64s'", w);
	}
#undef NEED
	return 0;
}

static struct item *new_item(struct item **items, int *n, int line)
{
	struct item *p = realloc(*items, sizeof **items * (size_t)(*n + 1));
	if (!p) {
		perror("realloc");
		exit(1);
	}
	*items = p;
	struct item *it = &p[(*n)++];
	memset(it, 0, sizeof *it);
	it->line = line;
	return it;
}

static void item_fail(struct item *it, int line, const char *msg)
{
	if (it->err_line)
		return;          /* report only the first bad line of a block */
	it->err_line = line;
	snprintf(it->err, sizeof it->err, "line %d: %s", line, msg);
}

/*
 * Split the script into items. Every problem is attached to the block it is
 * in (which is then skipped) or becomes a stray error item, in script order.
 */
static int parse_script(char *text, size_t len, struct item **items)
{
	int n = 0, lineno = 0;
	struct item *cur = NULL;   /* index-stable only until the next new_item */
	int cur_idx = -1;
	char *p = text, *endp = text + len;

	while (p < endp) {
		char *nl = memchr(p, '\n', (size_t)(endp - p));
		char *eol = nl ? nl : endp;
		*eol = 0;
		char *s = p;
		p = eol + 1;
		lineno++;
		char err[MSG_MAX] = "";
		cur = cur_idx >= 0 ? &(*items)[cur_idx] : NULL;

		if (s[0] == 0 || s[0] == '#')
			continue;
		for (char *c = s; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) {
				snprintf(err, sizeof err, "invalid character 0x%02x", (unsigned char)*c);
				break;
			}

		/* tokenize on single spaces */
		int nt = 1;
		for (char *c = s; *c; c++)
			nt += *c == ' ';
		char **t = calloc((size_t)nt + 1, sizeof *t);
		if (!t) {
			perror("calloc");
			exit(1);
		}
		t[0] = s;
		for (int k = 1; k < nt; k++) {
			char *sp = strchr(t[k - 1], ' ');
			*sp = 0;
			t[k] = sp + 1;
		}
		/* ops.ts writes an empty perf ballast as "ballast perf " (trailing space) */
		if (nt == 3 && !strcmp(t[0], "ballast") && !strcmp(t[1], "perf") && t[2][0] == 0)
			nt = 2;
		for (int k = 0; k < nt && !err[0]; k++)
			if (t[k][0] == 0)
				snprintf(err, sizeof err, "words must be separated by single spaces");

		if (!strcmp(t[0], "begin")) {
			if (cur) {
				item_fail(cur, lineno, "begin inside a block (missing end)");
				cur_idx = -1;
			}
			struct item *it = new_item(items, &n, lineno);
			cur_idx = n - 1;
			/* name the block in the error even when the rest of the line is bad */
			if (nt >= 2 && is_ident(t[1]))
				snprintf(it->id, sizeof it->id, "%s", t[1]);
			if (err[0] || parse_begin(it, t, nt, err) < 0)
				item_fail(it, lineno, err);
		} else if (!strcmp(t[0], "end")) {
			if (!cur) {
				struct item *it = new_item(items, &n, lineno);
				it->stray = true;
				item_fail(it, lineno, "end outside a block");
			} else {
				if (!err[0] && nt != 1)
					snprintf(err, sizeof err, "end takes no arguments");
				if (err[0])
					item_fail(cur, lineno, err);
				cur_idx = -1;
			}
		} else if (!cur) {
			struct item *it = new_item(items, &n, lineno);
			it->stray = true;
			item_fail(it, lineno, err[0] ? err : "op outside a begin..end block");
		} else if (!cur->err_line) {
			struct op op;
			if (err[0] || parse_op(&op, t, nt, err) < 0) {
				item_fail(cur, lineno, err);
			} else {
				if (cur->nops == cur->cap) {
					cur->cap = cur->cap ? cur->cap * 2 : 16;
					cur->ops = realloc(cur->ops, sizeof *cur->ops * (size_t)cur->cap);
					if (!cur->ops) {
						perror("realloc");
						exit(1);
					}
				}
				op.line = lineno;
				cur->ops[cur->nops++] = op;
			}
		}
		free(t);
	}
	if (cur_idx >= 0) {
		struct item *it = &(*items)[cur_idx];
		char msg[MSG_MAX];
		snprintf(msg, sizeof msg, "missing end for the block begun at line %d", it->line);
		item_fail(it, lineno, msg);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Child side: privileges                                               */

static uint64_t capmask(int cap) { return 1ULL << cap; }

/*
 * Become `uid` keeping only `want` capabilities (masked by what this kernel
 * knows, so CAP_PERFMON quietly drops out before 5.8).
 */
#define PRIV_FAIL(...) do { int e_ = errno; snprintf(msg, MSG_MAX, __VA_ARGS__); errno = e_; return -1; } while (0)

/*
 * Soft limit `soft`, hard limit infinite. Raising a hard limit needs
 * CAP_SYS_RESOURCE, which root in a container may lack: then the current
 * hard limit stays, and a soft limit above it is clamped (clamp) or an error,
 * because running with a different RLIMIT_MEMLOCK than asked would be a
 * different scenario.
 */
static int set_limit(int res, rlim_t soft, bool clamp, char *msg)
{
	const char *name = res == RLIMIT_MEMLOCK ? "RLIMIT_MEMLOCK" : "RLIMIT_NOFILE";
	struct rlimit rl = { soft, RLIM_INFINITY };
	if (setrlimit(res, &rl) == 0)
		return 0;
	if (errno != EPERM || getrlimit(res, &rl) < 0)
		PRIV_FAIL("setrlimit(%s): %s", name, strerror(errno));
	if (soft > rl.rlim_max && !clamp) {
		char want[32];
		if (soft == RLIM_INFINITY)
			snprintf(want, sizeof want, "inf");
		else
			snprintf(want, sizeof want, "%llu", (unsigned long long)soft);
		errno = EPERM;
		PRIV_FAIL("%s %s exceeds the hard limit %llu, which cannot be raised (no CAP_SYS_RESOURCE)",
			  name, want, (unsigned long long)rl.rlim_max);
	}
	rl.rlim_cur = soft < rl.rlim_max ? soft : rl.rlim_max;
	if (setrlimit(res, &rl) < 0)
		PRIV_FAIL("setrlimit(%s): %s", name, strerror(errno));
	return 0;
}

/*
 * `want` goes into the permitted set and, minus `idle`, into the effective
 * set: a capability that is permitted but not effective (the worker's
 * CAP_IPC_LOCK when the scenario starts without it) can be switched on later
 * by the `cap_ipc_lock` op; capable() checks only the effective set.
 */
static int drop_privs(uid_t uid, uint64_t want, uint64_t idle, long long memlock_kb, bool memlock_clamp, char *msg)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	for (size_t k = 0; k < sizeof term_sigs / sizeof term_sigs[0]; k++)
		sigaction(term_sigs[k], &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* hard limit infinite so the `rlimit` op can raise the soft limit unprivileged */
	if (set_limit(RLIMIT_MEMLOCK, memlock_kb < 0 ? RLIM_INFINITY : (rlim_t)memlock_kb * 1024,
		      memlock_clamp, msg) < 0)
		return -1;
	/*
	 * Open files: 65536 (soft = hard; a hard limit of infinity is above
	 * fs.nr_open and always refused, which used to leave the inherited 4096).
	 * Where the hard limit cannot be raised it is the ceiling.
	 */
	struct rlimit nofile = { 65536, 65536 };
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 && set_limit(RLIMIT_NOFILE, 65536, true, msg) < 0)
		return -1;

	/* keep the permitted set across the uid change; effective is rebuilt below */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		PRIV_FAIL("PR_SET_KEEPCAPS: %s", strerror(errno));
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		PRIV_FAIL("dropping to uid %u: %s", (unsigned)uid, strerror(errno));

	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &hdr, d) < 0)
		PRIV_FAIL("capget: %s", strerror(errno));
	uint64_t perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	want &= perm;
	memset(d, 0, sizeof d);
	d[0].permitted = (uint32_t)want;
	d[1].permitted = (uint32_t)(want >> 32);
	d[0].effective = (uint32_t)(want & ~idle);
	d[1].effective = (uint32_t)((want & ~idle) >> 32);
	if (syscall(SYS_capset, &hdr, d) < 0)
		PRIV_FAIL("capset: %s", strerror(errno));
	/* ambient caps would survive into nothing here (no exec), but be explicit; EINVAL before 4.3 */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);

	/* the credential change cleared any earlier death signal, so set it now */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != g_controller)
		_exit(1);
	return 0;
}

/* Children must not hold the controller's other pipe ends (EOF = death detection). */
static void close_fds_except(int keep1, int keep2, int keep3)
{
	int fds[1024], n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != keep1 && fd != keep2 && fd != keep3)
				close(fd);
		return;
	}
	int dfd = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) && n < 1024) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd > 2 && fd != dfd && fd != keep1 && fd != keep2 && fd != keep3)
			fds[n++] = fd;
	}
	closedir(d);
	for (int k = 0; k < n; k++)
		close(fds[k]);
}

/* ------------------------------------------------------------------ */
/* Child side: perf                                                     */

static int perf_open(int cpu)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.type = PERF_TYPE_SOFTWARE;
	a.size = sizeof a;
	a.config = PERF_COUNT_SW_DUMMY;
	/* never enabled: only the ring buffer's accounting matters, not events */
	a.disabled = 1;
	return (int)syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

static void *perf_map(int fd, long long data_pages)
{
	return mmap(NULL, (size_t)(data_pages + 1) * (size_t)g_page,
		    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
}

struct wbuf {
	char name[ID_MAX + 1];
	int fd;
	int cpu;
	size_t size;
	void **maps;
	int nmaps;
	void **aux_maps;         /* aux_map: live AUX mappings (lockstep-aux.c) */
	int naux;
	size_t aux_size;
};

static struct wbuf *wbufs;
static int nwbufs;

static struct wbuf *wbuf_find(const char *name)
{
	for (int k = 0; k < nwbufs; k++)
		if (!strcmp(wbufs[k].name, name))
			return &wbufs[k];
	return NULL;
}

static void fail(struct rep *r, int err, const char *msg)
{
	r->ok = 0;
	r->err = err;
	if (msg)
		snprintf(r->msg, sizeof r->msg, "%s", msg);
}

/* Remember a new mapping `m` of fd as buffer `name`; undoes it when out of memory. */
static void wbuf_add(const char *name, int fd, int cpu, size_t size, void *m, struct rep *r)
{
	struct wbuf *nb = realloc(wbufs, sizeof *wbufs * (size_t)(nwbufs + 1));
	void **maps = malloc(sizeof *maps);
	if (!nb || !maps) {
		munmap(m, size);
		close(fd);
		free(maps);
		if (nb)
			wbufs = nb;
		return fail(r, ENOMEM, "out of memory in worker");
	}
	wbufs = nb;
	struct wbuf *b = &wbufs[nwbufs++];
	snprintf(b->name, sizeof b->name, "%s", name);
	b->fd = fd;
	b->cpu = cpu;
	b->size = size;
	b->maps = maps;
	b->maps[0] = m;
	b->nmaps = 1;
	b->aux_maps = NULL;
	b->naux = 0;
	b->aux_size = 0;
}

/* Map a fresh event's ring buffer (1 + q->b pages) as buffer q->name; fd < 0: its open failed (errno). */
static void map_new(const struct req *q, struct rep *r, int fd)
{
	if (fd < 0)
		return fail(r, errno, "perf_event_open failed");
	void *m = perf_map(fd, q->b);
	if (m == MAP_FAILED) {
		int e = errno;
		close(fd);
		return fail(r, e, "mmap failed");
	}
	wbuf_add(q->name, fd, (int)q->a, (size_t)(q->b + 1) * (size_t)g_page, m, r);
}

static void w_map(const struct req *q, struct rep *r)
{
	if (wbuf_find(q->name))
		return fail(r, EEXIST, "buffer already mapped (use remap)");
	map_new(q, r, perf_open((int)q->a));
}

static void w_remap(const struct req *q, struct rep *r)
{
	struct wbuf *b = wbuf_find(q->name);
	if (!b)
		return fail(r, ENOENT, "no such buffer");
	void **maps = realloc(b->maps, sizeof *maps * (size_t)(b->nmaps + 1));
	if (!maps)
		return fail(r, ENOMEM, "out of memory in worker");
	b->maps = maps;
	void *m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (m == MAP_FAILED)
		return fail(r, errno, "mmap failed");
	b->maps[b->nmaps++] = m;
}

/* Returns the first errno seen (0 if none); keeps going so nothing leaks. */
static int wbuf_release(struct wbuf *b)
{
	int err = 0;
	/* AUX mappings first: the ring buffer's charge goes with its last mapping */
	for (int k = b->naux - 1; k >= 0; k--)
		if (munmap(b->aux_maps[k], b->aux_size) < 0 && !err)
			err = errno;
	free(b->aux_maps);
	for (int k = 0; k < b->nmaps; k++)
		if (munmap(b->maps[k], b->size) < 0 && !err)
			err = errno;
	if (close(b->fd) < 0 && !err)
		err = errno;
	free(b->maps);
	return err;
}

static void w_unmap(const struct req *q, struct rep *r)
{
	int err = 0;
	if (!strcmp(q->name, "*")) {
		for (int k = 0; k < nwbufs; k++) {
			int e = wbuf_release(&wbufs[k]);
			if (e && !err)
				err = e;
		}
		nwbufs = 0;
	} else {
		struct wbuf *b = wbuf_find(q->name);
		if (!b)
			return fail(r, ENOENT, "no such buffer");
		err = wbuf_release(b);
		/* keep map order for later `unmap *` */
		memmove(b, b + 1, sizeof *b * (size_t)(&wbufs[nwbufs] - (b + 1)));
		nwbufs--;
	}
	if (err)
		fail(r, err, "munmap/close failed");
}

#include "lockstep-aux.c"

/*
 * munmap the last page of the buffer's first mapping only: since v6.17
 * (stables 6.16.1, 6.12.42, 6.1.148: "perf/core: Prevent VMA split of buffer
 * mappings") the kernel refuses the split with EINVAL; before, the split
 * succeeds and the charges stay until the rest is unmapped (`unmap` munmaps
 * the whole range again, which covers the remaining piece).
 */
static void w_unmap_part(const struct req *q, struct rep *r)
{
	struct wbuf *b = wbuf_find(q->name);
	if (!b)
		return fail(r, ENOENT, "no such buffer");
	if (b->size < 2 * (size_t)g_page)
		return fail(r, EINVAL, "a header-only buffer has no part to unmap");
	if (munmap((char *)b->maps[0] + b->size - (size_t)g_page, (size_t)g_page) < 0)
		return fail(r, errno, "munmap of the last page failed");
}

/*
 * A new event on `to`'s CPU whose output goes to `to`'s ring buffer
 * (PERF_EVENT_IOC_SET_OUTPUT), then mmap of the new event at the same size:
 * succeeds before v6.15 (the event shares the ring buffer), succeeds and
 * charges the per-user counter again from v6.15 to 6.18.7, EBUSY from 6.19
 * and 6.18.8.
 */
static void w_map_output(const struct req *q, struct rep *r)
{
	if (wbuf_find(q->name))
		return fail(r, EEXIST, "buffer already mapped (use remap)");
	struct wbuf *to = wbuf_find(q->to);
	if (!to)
		return fail(r, ENOENT, "no such buffer to redirect to");
	int cpu = to->cpu;
	size_t size = to->size;
	int tofd = to->fd;
	int fd = perf_open(cpu);
	if (fd < 0)
		return fail(r, errno, "perf_event_open failed");
	if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, tofd) < 0) {
		int e = errno;
		close(fd);
		return fail(r, e, "PERF_EVENT_IOC_SET_OUTPUT failed");
	}
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		close(fd);
		return fail(r, e, "mmap of the redirected event failed");
	}
	wbuf_add(q->name, fd, cpu, size, m, r);
}

/*
 * Register `pages` pages of anonymous memory as io_uring fixed buffers from
 * the worker itself (its caps, its RLIMIT_MEMLOCK): io_uring checks
 * user->locked_vm + pages against RLIMIT_MEMLOCK unless CAP_IPC_LOCK
 * (ENOMEM when over) and adds the pages to mm->pinned_vm. The ring and the
 * registration live as long as the worker.
 */
static void w_uring(long long pages, struct rep *r)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int fd = (int)syscall(SYS_io_uring_setup, 1, &p);
	if (fd < 0)
		return fail(r, errno, "io_uring_setup failed");
	size_t len = (size_t)pages * (size_t)g_page;
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		int e = errno;
		close(fd);
		return fail(r, e, "mmap of the memory to register failed");
	}
	madvise(mem, len, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < len; off += (size_t)g_page)
		mem[off] = 1;
	struct iovec iov = { .iov_base = mem, .iov_len = len };
	if (syscall(SYS_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1) < 0) {
		int e = errno;
		munmap(mem, len);
		/* the ring stays open: its own pages stay charged until the worker
		 * exits, rather than going back at a moment of io_uring's choosing
		 * (its teardown is asynchronous) */
		return fail(r, e, "IORING_REGISTER_BUFFERS failed");
	}
	/* fd and memory stay: the charge lasts until the worker exits */
}

/*
 * How many pages still fit under the per-user allowance (headroom = L - U,
 * exact to the page, at most PROBE_CAP pages): a mapping that fits costs the
 * user counter only; one that does not shows up in this process's VmPin
 * (extra > 0) or is refused by RLIMIT_MEMLOCK.
 *
 * Ring buffers come in 1 + 2^k pages, so the probe holds a sum of them:
 * sizes grow (1, 2, 3, 5, 9, ... 65537 pages) while they fit and shrink once
 * one does not, down to 1-page buffers; that is O(log H + H / 65537) fds for
 * any headroom H (the old one-page-per-fd probe hit RLIMIT_NOFILE above ~4090).
 * During the search the soft RLIMIT_MEMLOCK is lowered to the current VmPin,
 * so a mapping that would spill (extra > 0) is refused before the kernel
 * allocates its pages; the last 1-page map runs with the real limit and
 * decides `spilled` (ok) or EPERM exactly as a 1-page probe would. Held
 * mappings are real kernel memory: H pages at most.
 */
#define PROBE_LEVELS 18          /* level 0: header only; level j: 2^(j-1) data pages */

static long long probe_level_pages(int j) { return j == 0 ? 1 : (1LL << (j - 1)) + 1; }

struct probe_held { int *fds; void **maps; size_t *sizes; int n, cap; };

/* Try one buffer of level j: 1 = it fit (held), 0 = it did not (undone), -1 = error (errno). */
static int probe_try(struct probe_held *h, int j, long long base_kb)
{
	if (h->n == h->cap) {
		int cap = h->cap ? h->cap * 2 : 64;
		int *f = realloc(h->fds, sizeof *f * (size_t)cap);
		if (f)
			h->fds = f;
		void **m = realloc(h->maps, sizeof *m * (size_t)cap);
		if (m)
			h->maps = m;
		size_t *s = realloc(h->sizes, sizeof *s * (size_t)cap);
		if (s)
			h->sizes = s;
		if (!f || !m || !s)
			return errno = ENOMEM, -1;
		h->cap = cap;
	}
	long long data = j == 0 ? 0 : 1LL << (j - 1);
	int fd = perf_open(0);
	if (fd < 0)
		return -1;
	void *m = perf_map(fd, data);
	if (m == MAP_FAILED) {
		int e = errno;
		close(fd);
		if (e == EPERM)
			return 0;
		return errno = e, -1;
	}
	size_t size = (size_t)(data + 1) * (size_t)g_page;
	long long v = self_vmpin();
	if (v < 0) {
		munmap(m, size);
		close(fd);
		return errno = EIO, -1;
	}
	if (v > base_kb) {
		munmap(m, size);
		close(fd);
		return 0;
	}
	h->fds[h->n] = fd;
	h->maps[h->n] = m;
	h->sizes[h->n++] = size;
	return 1;
}

static void w_probe(struct rep *r)
{
	struct probe_held h = { 0 };
	long long base = self_vmpin();
	long long held = 0;
	int err = 0;
	bool spilled = false, capped = false;
	struct rlimit real;
	if (base < 0) {
		err = EIO;
		snprintf(r->msg, sizeof r->msg, "cannot read VmPin");
	} else if (getrlimit(RLIMIT_MEMLOCK, &real) < 0) {
		err = errno;
		snprintf(r->msg, sizeof r->msg, "getrlimit(RLIMIT_MEMLOCK) failed");
	}
	if (!err) {
		/* the oracle: with soft limit = VmPin, any extra > 0 is EPERM before allocation */
		struct rlimit low = real;
		rlim_t pin_bytes = (rlim_t)base * 1024;
		if (pin_bytes < low.rlim_cur)
			low.rlim_cur = pin_bytes;
		setrlimit(RLIMIT_MEMLOCK, &low);   /* lowering the soft limit cannot fail */
		int j = 0;
		bool grow = true;
		for (;;) {
			/* never hold more than PROBE_CAP pages: the cap is exact */
			while (j > 0 && held + probe_level_pages(j) > PROBE_CAP)
				j--, grow = false;
			if (held + probe_level_pages(j) > PROBE_CAP) {
				capped = true;
				break;
			}
			int t = probe_try(&h, j, base);
			if (t < 0) {
				err = errno;
				snprintf(r->msg, sizeof r->msg, "map of %lld pages failed after %lld pages", probe_level_pages(j), held);
				break;
			}
			if (t == 1) {
				held += probe_level_pages(j);
				if (grow && j + 1 < PROBE_LEVELS)
					j++;
				continue;
			}
			grow = false;
			if (j == 0)
				break;
			j--;
		}
		setrlimit(RLIMIT_MEMLOCK, &real);
		if (!err && !capped) {
			/* the one map that does not fit, under the real limit: spill or EPERM */
			int fd = perf_open(0);
			void *m = fd < 0 ? MAP_FAILED : perf_map(fd, 0);
			if (fd < 0) {
				err = errno;
				snprintf(r->msg, sizeof r->msg, "perf_event_open failed after %lld pages", held);
			} else if (m == MAP_FAILED) {
				err = errno;
				snprintf(r->msg, sizeof r->msg, "mmap failed after %lld pages", held);
				close(fd);
			} else {
				long long v = self_vmpin();
				spilled = v > base;
				if (v < 0) {
					err = EIO;
					snprintf(r->msg, sizeof r->msg, "cannot read VmPin");
				} else if (!spilled) {
					/* lowering the limit said "does not fit", the real map says it fits */
					err = EPROTO;
					snprintf(r->msg, sizeof r->msg, "a 1-page map fit after the search ended at %lld pages", held);
				}
				munmap(m, (size_t)g_page);
				close(fd);
			}
		}
	}
	for (int k = 0; k < h.n; k++) {
		munmap(h.maps[k], h.sizes[k]);
		close(h.fds[k]);
	}
	free(h.fds);
	free(h.maps);
	free(h.sizes);
	r->headroom = held;
	r->spilled = spilled;
	if (err)
		fail(r, err, NULL);
}

static void w_hang(long long secs)
{
	struct timespec ts = { (time_t)secs, 0 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void w_rlimit(long long kb, struct rep *r)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		return fail(r, errno, "getrlimit failed");
	rl.rlim_cur = kb < 0 ? RLIM_INFINITY : (rlim_t)kb * 1024;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		return fail(r, errno, "setrlimit failed");
}

/*
 * fd hand-off, the worker's side: receive the perf event fd a handoff helper
 * sent over the worker's unix socket (SCM_RIGHTS) and mmap it again at the
 * helper's size. The ring buffer exists already (the helper mapped it): before
 * v6.15 this mapping charges nothing; from v6.15 (V4) it charges user_extra
 * to the worker's user again, and only one charge comes back when the ring
 * buffer's last mapping goes.
 */
static void w_handoff(const struct req *q, struct rep *r)
{
	if (wbuf_find(q->name))
		return fail(r, EEXIST, "buffer already mapped (use remap)");
	char byte;
	struct iovec iov = { &byte, 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf };
	if (g_pass_fd < 0 || recvmsg(g_pass_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
		return fail(r, g_pass_fd < 0 ? EBADF : errno, "no fd from the handoff helper");
	struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
	if (!ch || ch->cmsg_level != SOL_SOCKET || ch->cmsg_type != SCM_RIGHTS || ch->cmsg_len != CMSG_LEN(sizeof(int)))
		return fail(r, EPROTO, "the handoff message carried no fd");
	int fd;
	memcpy(&fd, CMSG_DATA(ch), sizeof fd);
	size_t size = (size_t)(q->b + 1) * (size_t)g_page;
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		close(fd);
		return fail(r, e, "mmap of the handed-off fd failed");
	}
	wbuf_add(q->name, fd, (int)q->a, size, m, r);
}

/* Switch CAP_IPC_LOCK in the worker's effective set (it stays permitted). */
static void w_cap_ipc_lock(long long on, struct rep *r)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &hdr, d) < 0)
		return fail(r, errno, "capget failed");
	if (on)
		d[0].effective |= 1u << CAP_IPC_LOCK;
	else
		d[0].effective &= ~(1u << CAP_IPC_LOCK);
	if (syscall(SYS_capset, &hdr, d) < 0)
		return fail(r, errno, "capset failed (CAP_IPC_LOCK not permitted here?)");
}

static uint64_t worker_caps(const struct item *b)
{
	/* PERFMON/SYS_ADMIN: CPU-wide events at paranoid >= 1; neither skips the mlock check */
	uint64_t c = capmask(CAP_PERFMON) | capmask(CAP_SYS_ADMIN);
	if (b->cap_ipc_lock)
		c |= capmask(CAP_IPC_LOCK);
	return c;
}

static void __attribute__((noreturn)) worker_main(const struct item *b, int req_fd, int rep_fd)
{
	struct rep r;
	memset(&r, 0, sizeof r);
	/* CAP_IPC_LOCK stays permitted either way, effective only with cap_ipc_lock=1 */
	r.ok = drop_privs((uid_t)b->uid, worker_caps(b) | capmask(CAP_IPC_LOCK),
			  b->cap_ipc_lock ? 0 : capmask(CAP_IPC_LOCK), b->rlimit_kb, false, r.msg) == 0;
	if (!r.ok)
		r.err = errno;
	write_all(rep_fd, &r, sizeof r);      /* "ready" (or why not) */
	if (!r.ok)
		_exit(1);
	for (;;) {
		struct req q;
		if (read_full(req_fd, &q, sizeof q) <= 0)
			_exit(0);
		memset(&r, 0, sizeof r);
		r.ok = 1;
		switch (q.kind) {
		case OP_RLIMIT: w_rlimit(q.a, &r); break;
		case OP_MAP:    w_map(&q, &r); break;
		case OP_REMAP:  w_remap(&q, &r); break;
		case OP_UNMAP:  w_unmap(&q, &r); break;
		case OP_UNMAP_PART: w_unmap_part(&q, &r); break;
		case OP_MAP_OUTPUT: w_map_output(&q, &r); break;
		case OP_AUX_RING: w_aux_ring(&q, &r); break;
		case OP_AUX_MAP: w_aux_map(&q, &r); break;
		case OP_AUX_UNMAP: w_aux_unmap(&q, &r); break;
		case OP_URING:  w_uring(q.a, &r); break;
		case OP_PROBE:  w_probe(&r); break;
		case OP_HANG:   w_hang(q.a); break;
		case OP_HANDOFF: w_handoff(&q, &r); break;
		case OP_CAP_IPC_LOCK: w_cap_ipc_lock(q.a, &r); break;
		case OP_EXIT:   _exit(0);   /* the mappings go with the process */
		default:        fail(&r, EINVAL, "not a worker op"); break;
		}
		if (write_all(rep_fd, &r, sizeof r) < 0)
			_exit(1);
	}
}

/* ------------------------------------------------------------------ */
/* Child side: ballast helpers                                          */

static void ballast_perf(const struct op *op, struct rep *r)
{
	int ids[4096];
	int n = online_cpus(ids, 4096);
	if (n > 4096)
		n = 4096;
	for (int k = 0; k < op->nbufs; k++) {
		int fd = perf_open(ids[k % n]);
		if (fd < 0)
			return fail(r, errno, "perf_event_open failed");
		if (perf_map(fd, op->bufs[k]) == MAP_FAILED)
			return fail(r, errno, "mmap failed");
		r->mapped++;
	}
}

static void ballast_uring(const struct op *op, struct rep *r)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int fd = (int)syscall(SYS_io_uring_setup, 1, &p);
	if (fd < 0)
		return fail(r, errno, "io_uring_setup failed");
	if (op->a == 0)
		return;
	size_t len = (size_t)op->a * (size_t)g_page;
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail(r, errno, "mmap of ballast memory failed");
	/* io_uring charges a huge page as one unit; keep it to plain pages */
	madvise(mem, len, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < len; off += (size_t)g_page)
		mem[off] = 1;
	const size_t chunk = 1UL << 30;     /* the kernel refuses iovecs over 1 GiB */
	unsigned niov = (unsigned)((len + chunk - 1) / chunk);
	struct iovec *iov = calloc(niov, sizeof *iov);
	if (!iov)
		return fail(r, ENOMEM, "out of memory in helper");
	for (unsigned k = 0; k < niov; k++) {
		iov[k].iov_base = mem + (size_t)k * chunk;
		iov[k].iov_len = len - (size_t)k * chunk < chunk ? len - (size_t)k * chunk : chunk;
	}
	if (syscall(SYS_io_uring_register, fd, IORING_REGISTER_BUFFERS, iov, niov) < 0)
		return fail(r, errno, "IORING_REGISTER_BUFFERS failed");
	r->mapped = op->a;
}

/*
 * memfd_secret(2) memory, every page touched: "mm/secretmem: properly account
 * locked pages" (stables 6.1.191, 6.12.113) charges each folio to
 * user->locked_vm, checked against RLIMIT_MEMLOCK, with no CAP_IPC_LOCK
 * exemption. ENOSYS when secretmem is off (6.1: secretmem.enable=1 needed on
 * the command line; on by default since v6.5) or the arch cannot set the
 * direct map: the controller turns that into a skip.
 */
static void ballast_secret(const struct op *op, struct rep *r)
{
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif
	int fd = (int)syscall(SYS_memfd_secret, 0);
	if (fd < 0)
		return fail(r, errno, "memfd_secret failed");
	if (op->a == 0)
		return;
	size_t len = (size_t)op->a * (size_t)g_page;
	if (ftruncate(fd, (off_t)len) < 0)
		return fail(r, errno, "ftruncate of the memfd_secret failed");
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return fail(r, errno, "mmap of the memfd_secret failed");
	for (size_t off = 0; off < len; off += (size_t)g_page) {
		/* a refused charge is a SIGBUS on the touch: probe with mlock-free writes */
		mem[off] = 1;
		r->mapped++;
	}
}

/*
 * BPF array maps whose memory kernels before 5.11 charge to user->locked_vm
 * (bpf_map_charge_init: round_up(cost, PAGE_SIZE) pages, cost = the map's
 * header, well under a page, plus max_entries * value_size). One entry of
 * (pages - 1) * PAGE_SIZE bytes thus costs exactly `pages` pages; maps of at
 * most 256 pages each stay far below the value_size limit. Since 5.11 the
 * same maps are charged to the memory cgroup and leave locked_vm alone.
 */
static void ballast_bpf(const struct op *op, struct rep *r)
{
	long long left = op->a;
	while (left > 0) {
		long long pages = left > 256 ? 256 : left;
		union bpf_attr a;
		memset(&a, 0, sizeof a);
		a.map_type = BPF_MAP_TYPE_ARRAY;
		a.key_size = 4;
		a.value_size = pages == 1 ? 8 : (unsigned)((pages - 1) * g_page);
		a.max_entries = 1;
		if (syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a) < 0)
			return fail(r, errno, "bpf(BPF_MAP_CREATE) failed");
		r->mapped += pages;     /* the fd stays open: the map lives as long as the helper */
		left -= pages;
	}
}

/*
 * fd hand-off, the helper's side: a privileged process of the uid (CAP_IPC_LOCK,
 * as profilers' helpers are) opens an event on CPU a, maps it with b data
 * pages (charged like any new ring buffer, never refused) and sends the fd to
 * the worker over its unix socket. It keeps its own mapping until it is
 * killed or the block ends.
 */
static void handoff_helper(const struct op *op, struct rep *r)
{
	int fd = perf_open((int)op->a);
	if (fd < 0)
		return fail(r, errno, "perf_event_open failed");
	if (perf_map(fd, op->b) == MAP_FAILED)
		return fail(r, errno, "mmap failed");
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
	memset(&c, 0, sizeof c);
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf };
	struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
	ch->cmsg_level = SOL_SOCKET;
	ch->cmsg_type = SCM_RIGHTS;
	ch->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(ch), &fd, sizeof fd);
	if (g_pass_fd < 0 || sendmsg(g_pass_fd, &mh, 0) != 1)
		return fail(r, g_pass_fd < 0 ? EBADF : errno, "sending the fd to the worker failed");
	r->mapped = 1;
}

static void __attribute__((noreturn)) helper_main(const struct item *b, const struct op *op, int rep_fd)
{
	struct rep r;
	memset(&r, 0, sizeof r);
	uint64_t caps = capmask(CAP_PERFMON) | capmask(CAP_SYS_ADMIN);
	if (op->kind == OP_BALLAST_PERF)
		caps |= capmask(CAP_IPC_LOCK);
	if (op->kind == OP_BALLAST_BPF)
		caps |= capmask(CAP_BPF);   /* map creation with unprivileged BPF disabled */
	/*
	 * RLIMIT_MEMLOCK 8192 kB in every runtime, whatever the runtime's own
	 * ulimit -l is: io_uring (and BPF before 5.11) check the uid's whole
	 * locked total against it, and the model uses the same value.
	 */
	if (op->kind == OP_HANDOFF)
		caps |= capmask(CAP_IPC_LOCK);
	if (drop_privs((uid_t)b->uid, caps, 0, HELPER_MEMLOCK_KB, false, r.msg) < 0) {
		r.err = errno;
		write_all(rep_fd, &r, sizeof r);
		_exit(1);
	}
	r.ok = 1;
	if (op->kind == OP_BALLAST_PERF)
		ballast_perf(op, &r);
	else if (op->kind == OP_HANDOFF)
		handoff_helper(op, &r);
	else if (op->kind == OP_BALLAST_BPF)
		ballast_bpf(op, &r);
	else if (op->kind == OP_BALLAST_SECRET)
		ballast_secret(op, &r);
	else
		ballast_uring(op, &r);
	write_all(rep_fd, &r, sizeof r);
	/* the charges must outlive the report: stay until `end` kills us */
	for (;;)
		pause();
}

/* ------------------------------------------------------------------ */
/* Controller                                                           */

static int sig_check(void)
{
	if (!g_sig) {
		sigset_t p;
		if (sigpending(&p) == 0)
			for (size_t k = 0; k < sizeof term_sigs / sizeof term_sigs[0]; k++)
				if (sigismember(&p, term_sigs[k]))
					g_sig = term_sigs[k];
	}
	return g_sig;
}

static void on_signal(int s) { g_sig = s; }

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Wait for one reply from a child. 0 = got it, -ETIMEDOUT, -EPIPE (child
 * gone), -EINTR (termination signal arrived).
 */
static int recv_rep(int fd, struct rep *r)
{
	double deadline = now_s() + g_op_timeout;
	size_t got = 0;
	while (got < sizeof *r) {
		if (sig_check())
			return -EINTR;
		double left = deadline - now_s();
		if (left <= 0)
			return -ETIMEDOUT;
		struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
		struct pollfd pf = { fd, POLLIN, 0 };
		/* termination signals are unblocked only in here, so they cannot slip past */
		int n = ppoll(&pf, 1, &ts, &g_waitmask);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			continue;
		ssize_t k = read(fd, (char *)r + got, sizeof *r - got);
		if (k == 0)
			return -EPIPE;
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		got += (size_t)k;
	}
	return 0;
}

static void kid_add(pid_t pid)
{
	if (R.nkids < MAX_CHILDREN)
		R.kids[R.nkids++] = pid;
}

/* Reap a child that closed its pipe and describe how it ended. */
static void describe_death(pid_t pid, char *buf, size_t len)
{
	int st;
	pid_t w = waitpid(pid, &st, 0);
	for (int k = 0; k < R.nkids; k++)
		if (R.kids[k] == pid)
			R.kids[k] = 0;
	if (w != pid)
		snprintf(buf, len, "exited (status unknown)");
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by %s", sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "signal");
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
}

/* Kill children, put CPUs and sysctls back, emit `end`. Safe to call once per block. */
static void finish_block(void)
{
	for (int k = 0; k < R.nkids; k++)
		if (R.kids[k] > 0)
			kill(R.kids[k], SIGKILL);
	for (int k = 0; k < R.nkids; k++)
		if (R.kids[k] > 0)
			while (waitpid(R.kids[k], NULL, 0) < 0 && errno == EINTR)
				;
	R.nkids = 0;
	if (R.req_fd >= 0)
		close(R.req_fd);
	if (R.rep_fd >= 0)
		close(R.rep_fd);
	R.req_fd = R.rep_fd = -1;
	R.worker = 0;
	if (R.pass_fd >= 0)
		close(R.pass_fd);
	R.pass_fd = -1;
	R.nhelpers = 0;

	/* CPUs first: L depends on them and a later block checks the count */
	for (int k = 0; k < R.ncpus; k++) {
		char path[80];
		snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/online", R.cpu_ids[k]);
		if (write_ll(path, R.cpu_orig[k]) < 0)
			emit_error(R.b->id, -1, 0, "restoring cpu%d online=%d: %s", R.cpu_ids[k],
				   R.cpu_orig[k], errname(errno));
	}
	R.ncpus = 0;
	if (R.sysctls_saved) {
		long long cur_m = -1, cur_p = INT_MIN;
		read_ll(MLOCK_PATH, &cur_m);
		read_ll(PARANOID_PATH, &cur_p);
		if (set_ll(MLOCK_PATH, cur_m, R.saved_mlock) < 0)
			emit_error(R.b->id, -1, 0, "restoring perf_event_mlock_kb: %s", errname(errno));
		if (set_ll(PARANOID_PATH, cur_p, R.saved_paranoid) < 0)
			emit_error(R.b->id, -1, 0, "restoring perf_event_paranoid: %s", errname(errno));
		R.sysctls_saved = false;
	}
	struct line l;
	l_open(&l, "end");
	l_str(&l, "scenario", R.b->id);
	l_emit(&l);
	R.active = false;
}

static void __attribute__((noreturn)) terminate(int sig)
{
	const char *name = sigabbrev_np(sig);
	if (R.active) {
		emit_error(R.b->id, R.cur_op, 0, "terminated by SIG%s", name ? name : "?");
		finish_block();
	} else {
		emit_error(NULL, -1, 0, "terminated by SIG%s", name ? name : "?");
	}
	/* no `done`: the script did not run to completion */
	exit(128 + sig);
}

static void emit_op(const struct item *b, int i, const struct op *op, const struct rep *r,
		    long long helper_pin)
{
	long long pin, lck;
	vm_status(R.worker, &pin, &lck);
	struct line l;
	l_open(&l, "op");
	l_str(&l, "scenario", b->id);
	l_int(&l, "i", i);
	l_str(&l, "op", op_names[op->kind]);
	l_bool(&l, "ok", r->ok);
	l_str(&l, "errno", r->ok ? "" : errname(r->err));
	if (!r->ok && r->msg[0])
		l_str(&l, "msg", r->msg);
	if (op->kind == OP_PROBE) {
		l_int(&l, "headroom", r->headroom);
		l_bool(&l, "spilled", r->spilled);
	}
	if (op->kind == OP_BALLAST_PERF || op->kind == OP_BALLAST_URING || op->kind == OP_BALLAST_BPF ||
	    op->kind == OP_BALLAST_SECRET || op->kind == OP_HANDOFF) {
		l_int(&l, "mapped", r->mapped);
		l_kb(&l, "helper_vmpin_kb", helper_pin);
	}
	l_kb(&l, "vmpin_kb", pin);
	l_kb(&l, "vmlck_kb", lck);
	l_emit(&l);
}

/* Report a failed wait on a child; returns false (the block ends). */
static bool child_lost(const struct item *b, int i, int rc, pid_t pid, const char *who)
{
	char how[64];
	if (rc == -EINTR)
		terminate(g_sig);
	if (rc == -ETIMEDOUT) {
		emit_error(b->id, i, 0, "op timed out after %ds", g_op_timeout);
		return false;
	}
	if (rc != -EPIPE) {
		/* the child may still be alive: leave it to finish_block's SIGKILL */
		emit_error(b->id, i, 0, "waiting for %s: %s", who, errname(-rc));
		return false;
	}
	describe_death(pid, how, sizeof how);
	emit_error(b->id, i, 0, "%s died: %s", who, how);
	return false;
}

static pid_t spawn_helper(const struct item *b, const struct op *op, int *rep_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		/* a handoff helper sends its fd over the worker's socket */
		g_pass_fd = op->kind == OP_HANDOFF ? R.pass_fd : -1;
		close_fds_except(p[1], g_pass_fd, -1);
		helper_main(b, op, p[1]);
	}
	close(p[1]);
	*rep_fd = p[0];
	kid_add(pid);
	if (R.nhelpers < MAX_CHILDREN)
		R.helpers[R.nhelpers++] = pid;
	return pid;
}

/*
 * Start the helper of op i and wait for its one report; *hpin = its VmPin (kB).
 * false when it could not be started or died (the error line is out).
 */
static bool helper_report(const struct item *b, int i, const struct op *op, const char *who,
			  struct rep *r, long long *hpin)
{
	int fd;
	pid_t pid = spawn_helper(b, op, &fd);
	if (pid < 0) {
		emit_error(b->id, i, 0, "fork of %s: %s", who, errname(errno));
		return false;
	}
	int rc = recv_rep(fd, r);
	close(fd);   /* the helper never writes again; it only has to stay alive */
	if (rc < 0)
		return child_lost(b, i, rc, pid, who);
	long long hlck;
	vm_status(pid, hpin, &hlck);
	return true;
}

static bool run_ballast(const struct item *b, int i, const struct op *op)
{
	struct rep r;
	long long hpin;
	if (!helper_report(b, i, op, "ballast helper", &r, &hpin))
		return false;
	emit_op(b, i, op, &r, hpin);
	if (op->kind == OP_BALLAST_SECRET && !r.ok && r.err == ENOSYS) {
		/* secretmem is off here: nothing this scenario measures means anything */
		struct line l;
		l_open(&l, "skip");
		l_str(&l, "scenario", b->id);
		l_str(&l, "reason", "memfd_secret: ENOSYS (secretmem off: boot with secretmem.enable=1 on 6.1..6.4, or no set_direct_map on this arch)");
		l_emit(&l);
		return false;
	}
	return true;
}

static bool run_cpu(const struct op *op, struct rep *r)
{
	char path[80];
	long long cur;
	snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%lld/online", op->a);
	if (read_ll(path, &cur) < 0) {
		fail(r, errno, "cannot read the cpu's online file");
		return true;
	}
	bool known = false;
	for (int k = 0; k < R.ncpus; k++)
		known |= R.cpu_ids[k] == (int)op->a;
	if (!known && cur != op->b && R.ncpus < 256) {
		R.cpu_ids[R.ncpus] = (int)op->a;
		R.cpu_orig[R.ncpus++] = (int)cur;
	}
	if (write_ll(path, op->b) < 0)
		fail(r, errno, "write to the cpu's online file failed");
	return true;
}

static bool run_exit(const struct item *b, int i, const struct op *op);
static bool run_handoff(const struct item *b, int i, const struct op *op);
static void run_kill_helper(const struct op *op, struct rep *r);

static bool run_op(const struct item *b, int i, const struct op *op)
{
	struct rep r;
	memset(&r, 0, sizeof r);
	r.ok = 1;
	switch (op->kind) {
	case OP_SYSCTL: {
		char path[128];
		snprintf(path, sizeof path, SYSCTL_DIR "%s", op->name);
		if (write_ll(path, op->a) < 0)
			fail(&r, errno, "sysctl write failed");
		break;
	}
	case OP_CPU:
		run_cpu(op, &r);
		break;
	case OP_SYSRQ:
		/* only the guest's init sets this: sysrq on a real machine would crash it */
		if (!getenv("LOCKSTEP_GUEST"))
			fail(&r, EPERM, "sysrq refused: not in a lockstep guest (LOCKSTEP_GUEST unset)");
		else {
			if (op->name[0] == 'b' || op->name[0] == 'o') {
				/* Fault injection of a guest that dies mid-line, made
				 * deterministic: half of this op's result line goes out
				 * and the UART is drained (tcdrain) before the reset, so
				 * the stream always ends on a cut line. */
				char half[ID_MAX + 96];
				int n = snprintf(half, sizeof half, "{\"ev\":\"op\",\"scenario\":\"%s\",\"i\":%d,\"op\":\"sysrq\",\"ok\":tr", b->id, i);
				write_all(g_out, half, (size_t)n);
				if (isatty(g_out))
					tcdrain(g_out);
			}
			if (write_str("/proc/sysrq-trigger", op->name) < 0)
				fail(&r, errno, "write to /proc/sysrq-trigger failed");
		}
		break;
	case OP_BALLAST_PERF:
	case OP_BALLAST_URING:
	case OP_BALLAST_BPF:
	case OP_BALLAST_SECRET:
		return run_ballast(b, i, op);
	case OP_EXIT:
		return run_exit(b, i, op);
	case OP_HANDOFF:
		return run_handoff(b, i, op);
	case OP_KILL_HELPER:
		run_kill_helper(op, &r);
		break;
	default: {
		struct req q;
		memset(&q, 0, sizeof q);
		q.kind = op->kind;
		snprintf(q.name, sizeof q.name, "%s", op->name);
		snprintf(q.to, sizeof q.to, "%s", op->to);
		q.a = op->a;
		q.b = op->b;
		if (write_all(R.req_fd, &q, sizeof q) < 0)
			return child_lost(b, i, -EPIPE, R.worker, "worker");
		int rc = recv_rep(R.rep_fd, &r);
		if (rc < 0)
			return child_lost(b, i, rc, R.worker, "worker");
		break;
	}
	}
	emit_op(b, i, op, &r, -1);
	return true;
}

static bool start_worker(const struct item *b);

#ifndef MEMBARRIER_CMD_GLOBAL
#define MEMBARRIER_CMD_GLOBAL 1   /* MEMBARRIER_CMD_SHARED before 4.16: synchronize_rcu() */
#endif

/*
 * After the uid's last process is reaped, wait until the kernel has freed
 * the uid's per-user record (struct user_struct, which holds locked_vm and
 * perf's own counter): free_uid() runs from put_cred_rcu(), an RCU callback
 * queued when the dead task's struct goes (itself an RCU callback,
 * delayed_put_task_struct), so two grace periods and their callbacks.
 * membarrier(MEMBARRIER_CMD_GLOBAL) waits for a grace period on more than
 * one online CPU (kernel/sched/membarrier.c, v4.3); four of them, 25 ms
 * apart, leave time for the callbacks (RCU softirq, or rcuo kthreads).
 * Where membarrier fails (nohz_full CPUs, CONFIG_MEMBARRIER=n) a 500 ms
 * sleep. uid 0's record (root_user) is static: it is never freed.
 */
static void wait_user_struct_freed(void)
{
	struct timespec gap = { 0, 25 * 1000 * 1000 };
	bool ok = true;
	for (int k = 0; k < 4; k++) {
		if (ok && syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) < 0)
			ok = false;
		nanosleep(&gap, NULL);
	}
	if (!ok) {
		struct timespec rest = { 0, 400 * 1000 * 1000 };
		nanosleep(&rest, NULL);
	}
}

/*
 * `exit`: the worker exits (its mappings and fds go with it, so does every
 * charge the kernel gives back on munmap) and a fresh worker of the same uid,
 * caps and initial RLIMIT_MEMLOCK takes its place. The per-user counter
 * survives only while another process of the uid (a ballast helper) lives.
 */
static bool run_exit(const struct item *b, int i, const struct op *op)
{
	struct req q;
	struct rep r;
	memset(&q, 0, sizeof q);
	memset(&r, 0, sizeof r);
	if (op->a) {
		/* `exit last`: the worker must be the uid's last process */
		for (int k = 0; k < R.nhelpers; k++)
			if (R.helpers[k] > 0) {
				emit_error(b->id, i, 0, "exit last: helper %d of the uid is alive (kill_helper it first)", k);
				return false;
			}
	}
	q.kind = OP_EXIT;
	if (write_all(R.req_fd, &q, sizeof q) < 0)
		return child_lost(b, i, -EPIPE, R.worker, "worker");
	int rc = recv_rep(R.rep_fd, &r);   /* the worker never replies: EOF when it is gone */
	if (rc != -EPIPE)
		return child_lost(b, i, rc == 0 ? -EPROTO : rc, R.worker, "worker");
	char how[64];
	describe_death(R.worker, how, sizeof how);
	if (strcmp(how, "exited with status 0") != 0) {
		emit_error(b->id, i, 0, "worker did not exit cleanly: %s", how);
		return false;
	}
	close(R.req_fd);
	close(R.rep_fd);
	R.req_fd = R.rep_fd = -1;
	R.worker = 0;
	if (op->a)
		wait_user_struct_freed();
	if (!start_worker(b))
		return false;
	r.ok = 1;
	emit_op(b, i, op, &r, -1);
	return true;
}

static bool start_worker(const struct item *b)
{
	int req[2], rep[2];
	if (pipe2(req, O_CLOEXEC) < 0)
		return emit_error(b->id, -1, 0, "pipe: %s", errname(errno)), false;
	if (pipe2(rep, O_CLOEXEC) < 0) {
		close(req[0]);
		close(req[1]);
		return emit_error(b->id, -1, 0, "pipe: %s", errname(errno)), false;
	}
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0) {
		emit_error(b->id, -1, 0, "socketpair: %s", errname(errno));
		close(req[0]); close(req[1]); close(rep[0]); close(rep[1]);
		return false;
	}
	pid_t pid = fork();
	if (pid < 0) {
		emit_error(b->id, -1, 0, "fork: %s", errname(errno));
		close(req[0]); close(req[1]); close(rep[0]); close(rep[1]); close(sp[0]); close(sp[1]);
		return false;
	}
	if (pid == 0) {
		close(req[1]);
		close(rep[0]);
		close(sp[1]);
		g_pass_fd = sp[0];
		close_fds_except(req[0], rep[1], sp[0]);
		worker_main(b, req[0], rep[1]);
	}
	close(req[0]);
	close(rep[1]);
	close(sp[0]);
	if (R.pass_fd >= 0)
		close(R.pass_fd);
	R.pass_fd = sp[1];
	R.worker = pid;
	R.req_fd = req[1];
	R.rep_fd = rep[0];
	kid_add(pid);

	struct rep r;
	int rc = recv_rep(R.rep_fd, &r);
	if (rc < 0)
		return child_lost(b, -1, rc, pid, "worker");
	if (!r.ok) {
		emit_error(b->id, -1, 0, "worker setup: %s", r.msg);
		return false;
	}
	return true;
}

/*
 * `handoff B CPU D`: a new helper maps a ring buffer and sends its fd to the
 * worker, then the worker maps it again as buffer B. One result line, with
 * the helper's VmPin.
 */
static bool run_handoff(const struct item *b, int i, const struct op *op)
{
	struct rep r;
	long long hpin;
	if (!helper_report(b, i, op, "handoff helper", &r, &hpin))
		return false;
	if (r.ok) {
		struct req q;
		memset(&q, 0, sizeof q);
		q.kind = OP_HANDOFF;
		snprintf(q.name, sizeof q.name, "%s", op->name);
		q.a = op->a;
		q.b = op->b;
		if (write_all(R.req_fd, &q, sizeof q) < 0)
			return child_lost(b, i, -EPIPE, R.worker, "worker");
		long long mapped = r.mapped;
		int rc = recv_rep(R.rep_fd, &r);
		if (rc < 0)
			return child_lost(b, i, rc, R.worker, "worker");
		r.mapped = mapped;
	}
	emit_op(b, i, op, &r, hpin);
	return true;
}

/* Kill one helper (0-based spawn order in the block) or all (-1), and reap it: its mappings go. */
static void run_kill_helper(const struct op *op, struct rep *r)
{
	int from = op->a < 0 ? 0 : (int)op->a, to = op->a < 0 ? R.nhelpers : (int)op->a + 1;
	if (op->a >= R.nhelpers || (op->a >= 0 && R.helpers[op->a] == 0))
		return fail(r, ESRCH, "no such live helper");
	for (int k = from; k < to; k++) {
		pid_t pid = R.helpers[k];
		if (pid <= 0)
			continue;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		R.helpers[k] = 0;
		for (int j = 0; j < R.nkids; j++)
			if (R.kids[j] == pid)
				R.kids[j] = 0;
	}
}

static void run_block(const struct item *b)
{
	int online = online_cpus(NULL, 0);
	char why[160];
	if (online != b->cpus || aux_skip_reason(b, why, sizeof why)) {
		if (online != b->cpus)
			snprintf(why, sizeof why, "needs %lld online CPUs, %d online", b->cpus, online);
		struct line l;
		l_open(&l, "skip");
		l_str(&l, "scenario", b->id);
		l_str(&l, "reason", why);
		l_emit(&l);
		return;
	}
	memset(&R, 0, sizeof R);
	R.b = b;
	R.req_fd = R.rep_fd = R.pass_fd = -1;
	R.cur_op = -1;
	R.active = true;

	struct line l;
	l_open(&l, "begin");
	l_str(&l, "scenario", b->id);
	l_int(&l, "uid", b->uid);
	l_int(&l, "online_cpus", online);
	l_emit(&l);

	if (read_ll(MLOCK_PATH, &R.saved_mlock) < 0 || read_ll(PARANOID_PATH, &R.saved_paranoid) < 0) {
		emit_error(b->id, -1, 0, "reading perf sysctls: %s", errname(errno));
		finish_block();
		return;
	}
	R.sysctls_saved = true;
	if (set_ll(MLOCK_PATH, R.saved_mlock, b->mlock_kb) < 0 || set_ll(PARANOID_PATH, R.saved_paranoid, b->paranoid) < 0) {
		emit_error(b->id, -1, 0, "setting perf sysctls: %s", errname(errno));
		finish_block();
		return;
	}
	if (start_worker(b)) {
		for (int i = 0; i < b->nops; i++) {
			if (sig_check())
				terminate(g_sig);
			R.cur_op = i;
			bool go_on = run_op(b, i, &b->ops[i]);
			R.cur_op = -1;
			if (!go_on)
				break;
		}
	}
	if (sig_check())
		terminate(g_sig);
	finish_block();
}

static void emit_hello(void)
{
	struct utsname u;
	long long mlock = -1, paranoid = 0, last_cap = -1;
	uname(&u);
	read_ll(MLOCK_PATH, &mlock);
	read_ll(PARANOID_PATH, &paranoid);
	read_ll(SYSCTL_DIR "cap_last_cap", &last_cap);
	struct line l;
	l_open(&l, "hello");
	l_int(&l, "proto", PROTO_VERSION);
	l_str(&l, "release", u.release);
	l_str(&l, "version", u.version);
	l_str(&l, "machine", u.machine);
	l_int(&l, "online_cpus", online_cpus(NULL, 0));
	l_int(&l, "page_kb", g_page / 1024);
	l_int(&l, "mlock_kb", mlock);
	l_int(&l, "paranoid", paranoid);
	l_bool(&l, "perfmon", last_cap >= CAP_PERFMON);
	l_int(&l, "aux_pmu", aux_pmu_type());
	l_emit(&l);
}

static void emit_done(void)
{
	struct line l;
	l_open(&l, "done");
	l_emit(&l);
}

static int open_out(const char *path)
{
	struct stat st;
	int flags = O_WRONLY | O_NOCTTY | O_CLOEXEC;
	/* truncate regular files only; a serial port is opened as is */
	if (stat(path, &st) < 0 || S_ISREG(st.st_mode))
		flags |= O_CREAT | O_TRUNC;
	int fd = open(path, flags, 0644);
	if (fd < 0)
		return -1;
	if (isatty(fd)) {
		/* raw: the tty layer must not turn \n into \r\n or eat bytes */
		struct termios t;
		if (tcgetattr(fd, &t) == 0) {
			cfmakeraw(&t);
			tcsetattr(fd, TCSANOW, &t);
		}
	}
	return fd;
}

static char *slurp(const char *path, size_t *len)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		if (n == cap) {
			if (cap >= MAX_SCRIPT_BYTES) {
				free(buf);
				buf = NULL;
				errno = EFBIG;
				break;
			}
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			buf = NULL;
			errno = e;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (buf) {
		buf[n] = 0;
		*len = n;
	}
	return buf;
}

static void usage(void)
{
	fprintf(stderr, "usage: lockstep-repro --script FILE [--out FILE] [--op-timeout SECONDS] [--allow-uid-0]\n"
			"See harness/PROTOCOL.md.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *script = NULL, *out = NULL;
	static const struct option lo[] = {
		{ "script", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "op-timeout", required_argument, NULL, 't' },
		{ "allow-uid-0", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		long long v;
		switch (c) {
		case 's': script = optarg; break;
		case 'o': out = optarg; break;
		case 'u': g_allow_uid0 = true; break;
		case 't':
			if (!parse_num(optarg, 1, 86400, &v))
				usage();
			g_op_timeout = (int)v;
			break;
		default: usage();
		}
	}
	if (!script || optind != argc)
		usage();

	g_controller = getpid();
	g_page = sysconf(_SC_PAGESIZE);

	/*
	 * Termination signals stay blocked except inside ppoll(), so they are
	 * seen either there (EINTR) or by sig_check() between steps; cleanup
	 * then runs in normal context, not in a handler.
	 */
	sigset_t block;
	sigemptyset(&block);
	for (size_t k = 0; k < sizeof term_sigs / sizeof term_sigs[0]; k++)
		sigaddset(&block, term_sigs[k]);
	sigprocmask(SIG_BLOCK, &block, &g_waitmask);
	for (size_t k = 0; k < sizeof term_sigs / sizeof term_sigs[0]; k++)
		sigdelset(&g_waitmask, term_sigs[k]);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	for (size_t k = 0; k < sizeof term_sigs / sizeof term_sigs[0]; k++)
		sigaction(term_sigs[k], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);   /* a dead worker shows up as EPIPE, not a dead controller */

	if (out && strcmp(out, "-") != 0) {
		g_out = open_out(out);
		if (g_out < 0) {
			fprintf(stderr, "lockstep-repro: cannot open %s: %s\n", out, strerror(errno));
			return 2;
		}
	}

	emit_hello();
	if (geteuid() != 0) {
		emit_error(NULL, -1, 0, "must run as root (uid 0 with CAP_SETUID, CAP_SYS_ADMIN)");
		emit_done();
		return 1;
	}
	size_t len = 0;
	char *text = slurp(script, &len);
	if (!text) {
		emit_error(NULL, -1, 0, "cannot read script %s: %s", script, errname(errno));
		emit_done();
		return 1;
	}
	if (memchr(text, 0, len)) {
		emit_error(NULL, -1, 0, "script contains a NUL byte");
		emit_done();
		return 1;
	}

	struct item *items = NULL;
	int n = parse_script(text, len, &items);
	for (int k = 0; k < n; k++) {
		const struct item *it = &items[k];
		if (sig_check())
			terminate(g_sig);
		if (it->err_line) {
			/* a block whose id could not be read is reported like a stray line */
			bool named = !it->stray && it->id[0];
			emit_error(named ? it->id : NULL, -1, it->err_line, "%s", it->err);
			if (named) {
				char why[64];
				snprintf(why, sizeof why, "script error at line %d", it->err_line);
				struct line l;
				l_open(&l, "skip");
				l_str(&l, "scenario", it->id);
				l_str(&l, "reason", why);
				l_emit(&l);
			}
			continue;
		}
		run_block(it);
	}
	emit_done();
	return g_errors ? 1 : 0;
}
