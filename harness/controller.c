/* lockstep-repro: the controller (root): signals, children, blocks and their ops, hello/done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "compat.h"
#include "repro.h"

#define PROTO_VERSION 1
#define SYSCTL_DIR "/proc/sys/kernel/"
#define MLOCK_PATH SYSCTL_DIR "perf_event_mlock_kb"
#define PARANOID_PATH SYSCTL_DIR "perf_event_paranoid"

volatile sig_atomic_t g_sig;
sigset_t g_waitmask;      /* mask used inside ppoll: termination signals unblocked */

const int term_sigs[] = { SIGINT, SIGTERM, SIGHUP };

/* State of the block being run, so a signal can undo it from anywhere. */
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

/* ------------------------------------------------------------------ */
/* Controller                                                           */

int sig_check(void)
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

void on_signal(int s) { g_sig = s; }

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

void __attribute__((noreturn)) terminate(int sig)
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

void run_block(const struct item *b)
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

void emit_hello(void)
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

void emit_done(void)
{
	struct line l;
	l_open(&l, "done");
	l_emit(&l);
}
