/* lockstep-repro: the worker, one per block, running the block's perf ops as its uid. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/capability.h>
#include <linux/perf_event.h>

#include "compat.h"
#include "repro.h"

#define PROBE_CAP (1LL << 18)   /* pages: the probe stops (spilled=false) at this headroom */

/* Child side: the worker's (or a handoff helper's) end of the fd-passing socket. */
int g_pass_fd = -1;

/* ------------------------------------------------------------------ */
/* Child side: perf                                                     */

int perf_open(int cpu)
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

void *perf_map(int fd, long long data_pages)
{
	return mmap(NULL, (size_t)(data_pages + 1) * (size_t)g_page,
		    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
}

static struct wbuf *wbufs;
static int nwbufs;

struct wbuf *wbuf_find(const char *name)
{
	for (int k = 0; k < nwbufs; k++)
		if (!strcmp(wbufs[k].name, name))
			return &wbufs[k];
	return NULL;
}

void fail(struct rep *r, int err, const char *msg)
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
void map_new(const struct req *q, struct rep *r, int fd)
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

void __attribute__((noreturn)) worker_main(const struct item *b, int req_fd, int rep_fd)
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
