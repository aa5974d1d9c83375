/* lockstep-repro: helpers, one per ballast or handoff op, of the block's uid. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/bpf.h>
#include <linux/capability.h>

#include "compat.h"
#include "repro.h"

/* RLIMIT_MEMLOCK of every helper in every runtime (src/model HELPER_RLIMIT_MEMLOCK_KB) */
#define HELPER_MEMLOCK_KB 8192

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

void __attribute__((noreturn)) helper_main(const struct item *b, const struct op *op, int rep_fd)
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
