// The runtime of the standalone C reproducer (src/export/creproducer.ts
// writes the scenario's op table and constants above it): a root controller
// that sets the scenario's sysctls and restores them on every exit path,
// takes CPUs offline and back through sysfs, forks a worker and helpers as a
// fresh uid (setresuid, CAP_IPC_LOCK only where the op says), hands a ring's
// fd over a unix socket, runs each op, reads the worker's VmPin and compares
// with the model's prediction as src/diff compares a cell. Written after
// harness/lockstep-repro.c (lockstep's own reproducer), in kernel style so
// scripts/checkpatch.pl passes it. Static text; no I/O.

/** The C text after the generated op table (kernel coding style, tabs). */
export const C_RUNTIME = String.raw`#define PROBE_CAP 262144
#define PROBE_LEVELS 18
#define HELPER_MEMLOCK_KB 8192
#define MAX_HELPERS 4096
#define MAX_CPUS 4096

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef MEMBARRIER_CMD_GLOBAL
#define MEMBARRIER_CMD_GLOBAL 1
#endif

struct req {
	int i;
};

struct rep {
	int ok;
	int err;
	long long headroom;
};

struct wbuf {
	int fd;
	int cpu;
	int output;
	long long seq;
	size_t size;
	void **maps;
	int nmaps;
	void **aux;
	int naux;
	size_t aux_size;
};

static long page;
static pid_t controller;
static uid_t run_uid;
static pid_t worker;
static int req_fd = -1;
static int rep_fd = -1;
static int pass_fd[2] = { -1, -1 };
static pid_t helpers[MAX_HELPERS];
static int nhelpers;
static long long saved_mlock_kb = -1;
static long long saved_paranoid = -1000;
static int cpu_orig[MAX_CPUS];
static struct wbuf wbufs[NBUFS];
static long long map_seq;

static int write_text(const char *path, long long v)
{
	char buf[32];
	int fd, n, ok;

	n = snprintf(buf, sizeof(buf), "%lld\n", v);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, buf, (size_t)n) == n;
	if (close(fd) < 0 || !ok)
		return -1;
	return 0;
}

static int read_value(const char *path, long long *v)
{
	char buf[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	*v = strtoll(buf, NULL, 10);
	return 0;
}

static void cpu_path(char *path, size_t len, int cpu)
{
	snprintf(path, len, "/sys/devices/system/cpu/cpu%d/online", cpu);
}

/* Put back what the test changed: called on every exit path of the controller. */
static void restore_machine(void)
{
	char path[80];
	int k;

	if (getpid() != controller)
		return;
	for (k = 0; k < nhelpers; k++)
		if (helpers[k] > 0)
			kill(helpers[k], SIGKILL);
	if (worker > 0)
		kill(worker, SIGKILL);
	for (k = 0; k < MAX_CPUS; k++) {
		if (cpu_orig[k] <= 0)
			continue;
		cpu_path(path, sizeof(path), k);
		write_text(path, cpu_orig[k] - 1);
		cpu_orig[k] = 0;
	}
	if (saved_mlock_kb >= 0)
		write_text("/proc/sys/kernel/perf_event_mlock_kb", saved_mlock_kb);
	if (saved_paranoid > -1000)
		write_text("/proc/sys/kernel/perf_event_paranoid", saved_paranoid);
	saved_mlock_kb = -1;
	saved_paranoid = -1000;
}

static void on_signal(int sig)
{
	restore_machine();
	signal(sig, SIG_DFL);
	raise(sig);
}

static long long vmpin_of(pid_t pid)
{
	char path[64], line[256];
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmPin:", 6))
			kb = strtoll(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static long long pages_of(long long kb)
{
	return kb < 0 ? -1 : kb / (page / 1024);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static int in_use(const unsigned char *used, long long uid)
{
	return uid >= 0 && uid < 65536 && used[uid];
}

/* A uid that no process has: every run starts from a per-user counter of 0. */
static uid_t fresh_uid(void)
{
	static unsigned char used[65536];
	char path[300], line[256];
	struct dirent *e;
	long long a, b, c, d;
	uid_t uid;
	DIR *dir = opendir("/proc");
	FILE *f;

	if (!dir)
		return (uid_t)-1;
	while ((e = readdir(dir))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "Uid:", 4) || sscanf(line + 4, "%lld %lld %lld %lld", &a, &b, &c, &d) != 4)
				continue;
			if (a < 65536 && b < 65536 && c < 65536 && d < 65536)
				used[a] = used[b] = used[c] = used[d] = 1;
		}
		fclose(f);
	}
	closedir(dir);
	for (uid = 41000; uid < 65000; uid++)
		if (!in_use(used, uid))
			return uid;
	return (uid_t)-1;
}

static unsigned long long capbit(int cap)
{
	return 1ULL << cap;
}

/*
 * setrlimit, and where the hard limit cannot be raised (EPERM: no
 * CAP_SYS_RESOURCE, as for root in some containers) the same soft limit
 * under the hard limit there is, as lockstep's own reproducer does
 * (harness/privs.c set_limit); a soft limit above that hard one fails,
 * unless 'clamp' (open files: any number that fits will do).
 */
static int set_limit(int res, struct rlimit *want, int clamp)
{
	struct rlimit hard;

	if (setrlimit(res, want) == 0)
		return 0;
	if (errno != EPERM || getrlimit(res, &hard) < 0)
		return -1;
	if (!clamp && want->rlim_cur != RLIM_INFINITY && want->rlim_cur > hard.rlim_max) {
		errno = EPERM;
		return -1;
	}
	hard.rlim_cur = want->rlim_cur < hard.rlim_max ? want->rlim_cur : hard.rlim_max;
	return setrlimit(res, &hard);
}

/*
 * Become the test's uid with 'want' capabilities permitted and 'want' minus
 * 'idle' effective (CAP_PERFMON drops out where the kernel lacks it), soft
 * RLIMIT_MEMLOCK 'memlock_kb' (-1: unlimited, hard limit unlimited so the
 * 'rlimit' op can raise it) and 65536 open files.
 */
static int become_user(unsigned long long want, unsigned long long idle, long long memlock_kb)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	struct rlimit nofile = { 65536, 65536 };
	unsigned long long perm;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (memlock_kb >= 0)
		rl.rlim_cur = (rlim_t)memlock_kb * 1024;
	if (set_limit(RLIMIT_MEMLOCK, &rl, 0) < 0 || set_limit(RLIMIT_NOFILE, &nofile, 1) < 0)
		return -1;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(0, NULL) < 0)
		return -1;
	if (setresgid(run_uid, run_uid, run_uid) < 0 || setresuid(run_uid, run_uid, run_uid) < 0)
		return -1;
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &hdr, d) < 0)
		return -1;
	perm = d[0].permitted | (unsigned long long)d[1].permitted << 32;
	want &= perm;
	memset(d, 0, sizeof(d));
	d[0].permitted = (__u32)want;
	d[1].permitted = (__u32)(want >> 32);
	d[0].effective = (__u32)(want & ~idle);
	d[1].effective = (__u32)((want & ~idle) >> 32);
	if (syscall(SYS_capset, &hdr, d) < 0)
		return -1;
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	return getppid() == controller ? 0 : -1;
}

static int perf_open(int cpu, unsigned int type, unsigned long long config)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.type = type;
	a.size = sizeof(a);
	a.config = config;
	a.disabled = 1;
	return (int)syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

static int sw_open(int cpu)
{
	return perf_open(cpu, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_DUMMY);
}

static void *ring_map(int fd, long long data_pages)
{
	return mmap(NULL, (size_t)(data_pages + 1) * (size_t)page, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
}

static void set_fail(struct rep *r, int err)
{
	r->ok = 0;
	r->err = err;
}

static void add_map(struct wbuf *b, void *m, struct rep *r)
{
	void **maps = realloc(b->maps, sizeof(*maps) * (size_t)(b->nmaps + 1));

	if (!maps) {
		munmap(m, b->size);
		set_fail(r, ENOMEM);
		return;
	}
	b->maps = maps;
	b->maps[b->nmaps++] = m;
}

/* A new named ring buffer of 'fd' (the name holds it even when the mmap fails). */
static void new_ring(struct wbuf *b, int fd, int cpu, long long data_pages, struct rep *r)
{
	void *m;

	b->fd = fd;
	b->cpu = cpu;
	b->size = (size_t)(data_pages + 1) * (size_t)page;
	b->seq = ++map_seq;
	if (fd < 0) {
		set_fail(r, errno);
		return;
	}
	m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		set_fail(r, errno);
		return;
	}
	add_map(b, m, r);
}

static void release(struct wbuf *b)
{
	int k;

	for (k = 0; k < b->naux; k++)
		munmap(b->aux[k], b->aux_size);
	for (k = 0; k < b->nmaps; k++)
		munmap(b->maps[k], b->size);
	if (b->fd >= 0)
		close(b->fd);
	free(b->maps);
	free(b->aux);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

static void release_all(void)
{
	struct wbuf *next;
	int k;

	for (;;) {
		next = NULL;
		for (k = 0; k < NBUFS; k++)
			if (wbufs[k].seq && (!next || wbufs[k].seq < next->seq))
				next = &wbufs[k];
		if (!next)
			return;
		release(next);
	}
}

static void do_remap(struct wbuf *b, struct rep *r)
{
	void *m;

	if (b->fd < 0 || !b->nmaps) {
		set_fail(r, EBADF);
		return;
	}
	m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (m == MAP_FAILED)
		set_fail(r, errno);
	else
		add_map(b, m, r);
}

static void do_map_output(struct wbuf *b, struct wbuf *to, struct rep *r)
{
	int fd = sw_open(to->cpu);
	void *m;

	if (fd < 0) {
		set_fail(r, errno);
		return;
	}
	if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, to->fd) < 0) {
		set_fail(r, errno);
		close(fd);
		return;
	}
	m = mmap(NULL, to->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		set_fail(r, errno);
		close(fd);
		return;
	}
	b->fd = fd;
	b->cpu = to->cpu;
	b->size = to->size;
	b->output = 1;
	b->seq = ++map_seq;
	add_map(b, m, r);
}

static void do_unmap_part(struct wbuf *b, struct rep *r)
{
	if (!b->nmaps || b->size < 2 * (size_t)page) {
		set_fail(r, EINVAL);
		return;
	}
	if (munmap((char *)b->maps[0] + b->size - (size_t)page, (size_t)page) < 0)
		set_fail(r, errno);
}

static int aux_type(void)
{
	long long t;

	if (read_value("/sys/bus/event_source/devices/lockstep_aux/type", &t) < 0)
		return -1;
	return (int)t;
}

static void do_aux_map(struct wbuf *b, long long pages, struct rep *r)
{
	struct perf_event_mmap_page *pg;
	size_t size = (size_t)pages * (size_t)page;
	void **aux = realloc(b->aux, sizeof(*aux) * (size_t)(b->naux + 1));
	void *m;

	if (!aux || !b->nmaps) {
		set_fail(r, aux ? EBADF : ENOMEM);
		return;
	}
	b->aux = aux;
	pg = b->maps[0];
	pg->aux_offset = b->size;
	pg->aux_size = size;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, (off_t)b->size);
	if (m == MAP_FAILED) {
		set_fail(r, errno);
		return;
	}
	b->aux_size = size;
	b->aux[b->naux++] = m;
}

static void do_aux_unmap(struct wbuf *b, struct rep *r)
{
	if (!b->naux) {
		set_fail(r, EINVAL);
		return;
	}
	if (munmap(b->aux[b->naux - 1], b->aux_size) < 0)
		set_fail(r, errno);
	else
		b->naux--;
}

/* Register 'pages' pages of anonymous memory as io_uring fixed buffers; kept until exit. */
static int uring_pin(long long pages)
{
	const size_t chunk = 1UL << 30;
	struct io_uring_params p;
	struct iovec *iov;
	size_t len, off;
	unsigned int k, niov;
	char *mem;
	int fd;

	memset(&p, 0, sizeof(p));
	fd = (int)syscall(SYS_io_uring_setup, 1, &p);
	if (fd < 0 || pages == 0)
		return fd < 0 ? -1 : 0;
	len = (size_t)pages * (size_t)page;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	madvise(mem, len, MADV_NOHUGEPAGE);
	for (off = 0; off < len; off += (size_t)page)
		mem[off] = 1;
	niov = (unsigned int)((len + chunk - 1) / chunk);
	iov = calloc(niov, sizeof(*iov));
	if (!iov)
		return -1;
	for (k = 0; k < niov; k++) {
		iov[k].iov_base = mem + (size_t)k * chunk;
		iov[k].iov_len = len - (size_t)k * chunk < chunk ? len - (size_t)k * chunk : chunk;
	}
	if (syscall(SYS_io_uring_register, fd, IORING_REGISTER_BUFFERS, iov, niov) < 0) {
		munmap(mem, len);
		return -1;
	}
	return 0;
}

struct probe_held {
	int *fds;
	void **maps;
	size_t *sizes;
	int n;
	int cap;
};

static long long level_pages(int j)
{
	return j == 0 ? 1 : (1LL << (j - 1)) + 1;
}

static int held_grow(struct probe_held *h)
{
	int cap = h->cap ? h->cap * 2 : 64;
	int *f = realloc(h->fds, sizeof(*f) * (size_t)cap);
	void **m;
	size_t *s;

	if (f)
		h->fds = f;
	m = realloc(h->maps, sizeof(*m) * (size_t)cap);
	if (m)
		h->maps = m;
	s = realloc(h->sizes, sizeof(*s) * (size_t)cap);
	if (s)
		h->sizes = s;
	if (!f || !m || !s)
		return -1;
	h->cap = cap;
	return 0;
}

/* One buffer of level j: 1 = it fit (held), 0 = it did not (undone), -1 = error. */
static int probe_try(struct probe_held *h, int j, long long base_kb)
{
	long long data = j == 0 ? 0 : 1LL << (j - 1);
	size_t size = (size_t)(data + 1) * (size_t)page;
	long long v;
	void *m;
	int fd, e;

	if (h->n == h->cap && held_grow(h) < 0)
		return -1;
	fd = sw_open(0);
	if (fd < 0)
		return -1;
	m = ring_map(fd, data);
	if (m == MAP_FAILED) {
		e = errno;
		close(fd);
		errno = e;
		return e == EPERM ? 0 : -1;
	}
	v = vmpin_of(getpid());
	if (v < 0 || v > base_kb) {
		munmap(m, size);
		close(fd);
		errno = EIO;
		return v < 0 ? -1 : 0;
	}
	h->fds[h->n] = fd;
	h->maps[h->n] = m;
	h->sizes[h->n++] = size;
	return 1;
}

/* Hold buffers of growing, then shrinking sizes under a soft limit of VmPin: the headroom. */
static long long probe_search(struct probe_held *h, long long base, int *capped, int *err)
{
	long long held = 0;
	int j = 0, grow = 1, t;

	for (;;) {
		while (j > 0 && held + level_pages(j) > PROBE_CAP) {
			j--;
			grow = 0;
		}
		if (held + level_pages(j) > PROBE_CAP) {
			*capped = 1;
			return held;
		}
		t = probe_try(h, j, base);
		if (t < 0) {
			*err = errno;
			return held;
		}
		if (t == 1) {
			held += level_pages(j);
			if (grow && j + 1 < PROBE_LEVELS)
				j++;
			continue;
		}
		grow = 0;
		if (j == 0)
			return held;
		j--;
	}
}

/*
 * headroom = L - U, exact to the page: what fits before one more 1-page
 * buffer makes VmPin grow (ok) or is refused (EPERM), as lockstep's
 * reproducer measures it.
 */
static void do_probe(struct rep *r)
{
	struct probe_held h;
	struct rlimit real, low;
	long long base = vmpin_of(getpid()), v;
	int capped = 0, err = 0, fd, k;
	void *m;

	memset(&h, 0, sizeof(h));
	if (base < 0 || getrlimit(RLIMIT_MEMLOCK, &real) < 0) {
		set_fail(r, EIO);
		return;
	}
	low = real;
	if ((rlim_t)base * 1024 < low.rlim_cur)
		low.rlim_cur = (rlim_t)base * 1024;
	setrlimit(RLIMIT_MEMLOCK, &low);
	r->headroom = probe_search(&h, base, &capped, &err);
	setrlimit(RLIMIT_MEMLOCK, &real);
	if (!err && !capped) {
		fd = sw_open(0);
		m = fd < 0 ? MAP_FAILED : ring_map(fd, 0);
		if (m == MAP_FAILED) {
			err = errno;
		} else {
			v = vmpin_of(getpid());
			if (v <= base)
				err = EPROTO;
			munmap(m, (size_t)page);
		}
		if (fd >= 0)
			close(fd);
	}
	for (k = 0; k < h.n; k++) {
		munmap(h.maps[k], h.sizes[k]);
		close(h.fds[k]);
	}
	free(h.fds);
	free(h.maps);
	free(h.sizes);
	if (err)
		set_fail(r, err);
}

static int recv_fd(int sock)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *ch;
	char byte;
	int fd;

	iov.iov_base = &byte;
	iov.iov_len = 1;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = c.buf;
	mh.msg_controllen = sizeof(c.buf);
	if (recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
		return -1;
	ch = CMSG_FIRSTHDR(&mh);
	if (!ch || ch->cmsg_type != SCM_RIGHTS || ch->cmsg_len != CMSG_LEN(sizeof(int))) {
		errno = EPROTO;
		return -1;
	}
	memcpy(&fd, CMSG_DATA(ch), sizeof(fd));
	return fd;
}

static int send_fd(int sock, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *ch;
	char byte = 'f';

	iov.iov_base = &byte;
	iov.iov_len = 1;
	memset(&c, 0, sizeof(c));
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = c.buf;
	mh.msg_controllen = sizeof(c.buf);
	ch = CMSG_FIRSTHDR(&mh);
	ch->cmsg_level = SOL_SOCKET;
	ch->cmsg_type = SCM_RIGHTS;
	ch->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(ch), &fd, sizeof(fd));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -1;
}

static void do_handoff(struct wbuf *b, const struct op *o, struct rep *r)
{
	int fd = recv_fd(pass_fd[0]);

	new_ring(b, fd, (int)o->a, o->b, r);
}

static void do_cap_ipc_lock(int on, struct rep *r)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &hdr, d) < 0) {
		set_fail(r, errno);
		return;
	}
	if (on)
		d[0].effective |= 1U << CAP_IPC_LOCK;
	else
		d[0].effective &= ~(1U << CAP_IPC_LOCK);
	if (syscall(SYS_capset, &hdr, d) < 0)
		set_fail(r, errno);
}

static void do_rlimit(long long kb, struct rep *r)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0) {
		set_fail(r, errno);
		return;
	}
	rl.rlim_cur = kb < 0 ? RLIM_INFINITY : (rlim_t)kb * 1024;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		set_fail(r, errno);
}

static void do_remap_all(struct rep *r)
{
	int k;

	for (k = 0; k < NBUFS && r->ok; k++)
		if (wbufs[k].nmaps && !wbufs[k].output)
			do_remap(&wbufs[k], r);
}

/* The worker's side of op i. */
static void worker_op(int i, struct rep *r)
{
	const struct op *o = &ops[i];
	struct wbuf *b = o->buf >= 0 ? &wbufs[o->buf] : NULL;

	switch (o->kind) {
	case OP_MAP:
		new_ring(b, sw_open((int)o->a), (int)o->a, o->b, r);
		break;
	case OP_AUX_RING:
		new_ring(b, perf_open((int)o->a, (unsigned int)aux_type(), 0), (int)o->a, o->b, r);
		break;
	case OP_REMAP:
		if (b)
			do_remap(b, r);
		else
			do_remap_all(r);
		break;
	case OP_UNMAP:
		if (b)
			release(b);
		else
			release_all();
		break;
	case OP_UNMAP_PART:
		do_unmap_part(b, r);
		break;
	case OP_MAP_OUTPUT:
		do_map_output(b, &wbufs[o->to], r);
		break;
	case OP_AUX_MAP:
		do_aux_map(b, o->a, r);
		break;
	case OP_AUX_UNMAP:
		do_aux_unmap(b, r);
		break;
	case OP_URING:
		if (uring_pin(o->a) < 0)
			set_fail(r, errno);
		break;
	case OP_PROBE:
		do_probe(r);
		break;
	case OP_RLIMIT:
		do_rlimit(o->a, r);
		break;
	case OP_HANDOFF:
		do_handoff(b, o, r);
		break;
	case OP_CAP_IPC_LOCK:
		do_cap_ipc_lock((int)o->a, r);
		break;
	default:
		set_fail(r, EINVAL);
	}
}

static void worker_main(int in, int out)
{
	unsigned long long caps = capbit(CAP_PERFMON) | capbit(CAP_SYS_ADMIN) | capbit(CAP_IPC_LOCK);
	struct rep r;
	struct req q;
	int k;

	for (k = 0; k < NBUFS; k++)
		wbufs[k].fd = -1;
	memset(&r, 0, sizeof(r));
	r.ok = become_user(caps, SCEN_CAP_IPC_LOCK ? 0 : capbit(CAP_IPC_LOCK), SCEN_RLIMIT_KB) == 0;
	r.err = r.ok ? 0 : errno;
	if (write_all(out, &r, sizeof(r)) < 0 || !r.ok)
		_exit(1);
	while (read_all(in, &q, sizeof(q)) == 0) {
		if (ops[q.i].kind == OP_EXIT)
			_exit(0);
		memset(&r, 0, sizeof(r));
		r.ok = 1;
		worker_op(q.i, &r);
		if (write_all(out, &r, sizeof(r)) < 0)
			_exit(1);
	}
	_exit(0);
}

/* Fork a child running as the test's uid; returns its pid, *fd its reply pipe. */
static pid_t spawn(int *fd, int *to_child)
{
	int up[2], down[2];
	pid_t pid;

	if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		if (to_child)
			worker_main(down[0], up[1]);
		close(down[0]);
		*fd = up[1];
		return 0;
	}
	close(up[1]);
	close(down[0]);
	*fd = up[0];
	if (to_child)
		*to_child = down[1];
	else
		close(down[1]);
	return pid;
}

static int start_worker(void)
{
	struct rep r;

	worker = spawn(&rep_fd, &req_fd);
	if (worker <= 0 || read_all(rep_fd, &r, sizeof(r)) < 0 || !r.ok) {
		printf("# cannot start the worker as uid %u: %s\n", (unsigned int)run_uid,
		       strerror(worker <= 0 ? errno : r.err));
		return -1;
	}
	return 0;
}

/* One ring per entry, spread over the online CPUs (an offline one refuses the event). */
static void ballast_perf(const struct op *o, struct rep *r)
{
	int k, t, fd = -1, cpu = 0;

	for (k = 0; k < o->b && r->ok; k++) {
		for (t = 0; t < SCEN_CPUS; t++) {
			fd = sw_open(cpu);
			cpu = (cpu + 1) % SCEN_CPUS;
			if (fd >= 0)
				break;
		}
		if (fd < 0 || ring_map(fd, ballast[o->a + k]) == MAP_FAILED)
			set_fail(r, errno);
	}
}

/* BPF array maps of 'pages' pages in all: before v5.11 charged to user->locked_vm. */
static void ballast_bpf(long long pages, struct rep *r)
{
	union bpf_attr a;
	long long n;

	while (pages > 0 && r->ok) {
		n = pages > 256 ? 256 : pages;
		memset(&a, 0, sizeof(a));
		a.map_type = BPF_MAP_TYPE_ARRAY;
		a.key_size = 4;
		a.value_size = n == 1 ? 8 : (unsigned int)((n - 1) * page);
		a.max_entries = 1;
		if (syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a)) < 0)
			set_fail(r, errno);
		pages -= n;
	}
}

static void ballast_secret(long long pages, struct rep *r)
{
	size_t len = (size_t)pages * (size_t)page, off;
	int fd = (int)syscall(SYS_memfd_secret, 0);
	char *mem;

	if (fd < 0 || pages == 0) {
		if (fd < 0)
			set_fail(r, errno);
		return;
	}
	if (ftruncate(fd, (off_t)len) < 0) {
		set_fail(r, errno);
		return;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		set_fail(r, errno);
		return;
	}
	for (off = 0; off < len; off += (size_t)page)
		mem[off] = 1;
}

static void handoff_give(const struct op *o, struct rep *r)
{
	int fd = sw_open((int)o->a);

	if (fd < 0 || ring_map(fd, o->b) == MAP_FAILED || send_fd(pass_fd[1], fd) < 0)
		set_fail(r, errno);
}

/* A helper process of the uid: charges what op o says, reports, then stays until killed. */
static void helper_main(const struct op *o, int out)
{
	unsigned long long caps = capbit(CAP_PERFMON) | capbit(CAP_SYS_ADMIN);
	struct rep r;

	if (o->kind == OP_BALLAST_PERF || o->kind == OP_HANDOFF)
		caps |= capbit(CAP_IPC_LOCK);
	if (o->kind == OP_BALLAST_BPF)
		caps |= capbit(CAP_BPF);
	memset(&r, 0, sizeof(r));
	r.ok = 1;
	if (become_user(caps, 0, HELPER_MEMLOCK_KB) < 0)
		set_fail(&r, errno);
	else if (o->kind == OP_BALLAST_PERF)
		ballast_perf(o, &r);
	else if (o->kind == OP_HANDOFF)
		handoff_give(o, &r);
	else if (o->kind == OP_BALLAST_BPF)
		ballast_bpf(o->a, &r);
	else if (o->kind == OP_BALLAST_SECRET)
		ballast_secret(o->a, &r);
	else if (uring_pin(o->a) < 0)
		set_fail(&r, errno);
	write_all(out, &r, sizeof(r));
	for (;;)
		pause();
}

static void run_helper(const struct op *o, struct rep *r, pid_t *pid)
{
	int fd;

	*pid = spawn(&fd, NULL);
	if (*pid == 0)
		helper_main(o, fd);
	if (*pid < 0 || read_all(fd, r, sizeof(*r)) < 0)
		set_fail(r, ECHILD);
	close(fd);
}

/*
 * Wait until the kernel has freed the uid's user_struct after its last
 * process went: free_uid() runs from RCU callbacks, so a few grace periods
 * (membarrier(MEMBARRIER_CMD_GLOBAL)) 25 ms apart, else half a second.
 */
static void wait_user_freed(void)
{
	struct timespec gap = { 0, 25 * 1000 * 1000 };
	struct timespec rest = { 0, 400 * 1000 * 1000 };
	int k, ok = 1;

	for (k = 0; k < 4; k++) {
		if (ok && syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) < 0)
			ok = 0;
		nanosleep(&gap, NULL);
	}
	if (!ok)
		nanosleep(&rest, NULL);
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void run_exit(const struct op *o, struct rep *r)
{
	struct req q = { (int)(o - ops) };

	if (write_all(req_fd, &q, sizeof(q)) < 0) {
		set_fail(r, EPIPE);
		return;
	}
	reap(worker);
	worker = 0;
	close(req_fd);
	close(rep_fd);
	if (o->a)
		wait_user_freed();
	if (start_worker() < 0)
		set_fail(r, ECHILD);
}

static void run_kill(const struct op *o, struct rep *r)
{
	int k;

	if (o->a >= nhelpers || (o->a >= 0 && helpers[o->a] <= 0)) {
		set_fail(r, ESRCH);
		return;
	}
	for (k = 0; k < nhelpers; k++) {
		if (helpers[k] <= 0 || (o->a >= 0 && k != o->a))
			continue;
		kill(helpers[k], SIGKILL);
		reap(helpers[k]);
		helpers[k] = 0;
	}
}

static void run_cpu(const struct op *o, struct rep *r)
{
	char path[80];
	long long cur;

	cpu_path(path, sizeof(path), (int)o->a);
	if (read_value(path, &cur) < 0) {
		set_fail(r, errno);
		return;
	}
	if (o->a < MAX_CPUS && !cpu_orig[o->a])
		cpu_orig[o->a] = (int)cur + 1;
	if (write_text(path, o->b) < 0)
		set_fail(r, errno);
}

static const char *sysctl_path(long long which)
{
	return which ? "/proc/sys/kernel/perf_event_paranoid" : "/proc/sys/kernel/perf_event_mlock_kb";
}

/* Op i, run by the controller or sent to the worker; *helper_kb: a new helper's VmPin. */
static void run_op(int i, struct rep *r, long long *helper_kb)
{
	const struct op *o = &ops[i];
	struct req q = { i };

	memset(r, 0, sizeof(*r));
	r->ok = 1;
	*helper_kb = -1;
	switch (o->kind) {
	case OP_SYSCTL:
		if (write_text(sysctl_path(o->a), o->b) < 0)
			set_fail(r, errno);
		return;
	case OP_CPU:
		run_cpu(o, r);
		return;
	case OP_KILL_HELPER:
		run_kill(o, r);
		return;
	case OP_EXIT:
		run_exit(o, r);
		return;
	case OP_BALLAST_PERF:
	case OP_BALLAST_URING:
	case OP_BALLAST_BPF:
	case OP_BALLAST_SECRET:
	case OP_HANDOFF:
		if (nhelpers == MAX_HELPERS) {
			set_fail(r, EAGAIN);
			return;
		}
		run_helper(o, r, &helpers[nhelpers]);
		*helper_kb = vmpin_of(helpers[nhelpers++]);
		if (o->kind != OP_HANDOFF || !r->ok)
			return;
		break;
	default:
		break;
	}
	if (write_all(req_fd, &q, sizeof(q)) < 0 || read_all(rep_fd, r, sizeof(*r)) < 0)
		set_fail(r, ECHILD);
}

static const char *errname(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case EPERM:
		return "EPERM";
	case ENOMEM:
		return "ENOMEM";
	case EINVAL:
		return "EINVAL";
	case EBUSY:
		return "EBUSY";
	default:
		return strerror(err);
	}
}

/* Compare op i with the prediction as lockstep's diff does; 1 = it differs. */
static int check_op(int i, const struct rep *r, long long pinned, long long helper)
{
	const struct op *o = &ops[i];
	int controller_op = o->kind == OP_SYSCTL || o->kind == OP_CPU;
	int bad = r->ok != o->ok;

	if (!controller_op && !bad)
		bad = (r->ok ? 0 : r->err) != o->err || pinned != o->pinned;
	if (!bad && o->kind == OP_PROBE)
		bad = r->headroom != o->headroom;
	if (!bad && o->helper >= 0 && helper >= 0)
		bad = helper != o->helper;
	printf("# op %d %s: %s VmPin %lld", i, o->what, r->ok ? "ok" : errname(r->err), pinned);
	if (o->kind == OP_PROBE)
		printf(" headroom %lld", r->headroom);
	if (o->helper >= 0)
		printf(" helper VmPin %lld", helper);
	printf("; %s predicts %s VmPin %lld", REF_LOGIC, o->ok ? "ok" : errname(o->err), o->pinned);
	if (o->kind == OP_PROBE)
		printf(" headroom %lld", o->headroom);
	if (o->helper >= 0)
		printf(" helper VmPin %lld", o->helper);
	printf("\n");
	if (bad && o->kind == OP_PROBE && r->headroom != o->headroom)
		printf("# BUG: op %d probe: the per-user counter is %lld pages %s than %s predicts\n",
		       i, llabs(o->headroom - r->headroom),
		       r->headroom < o->headroom ? "higher" : "lower", REF_LOGIC);
	else if (bad)
		printf("# BUG: op %d %s differs from %s\n", i, o->what, REF_LOGIC);
	return bad;
}

/* The whole program as one skipped test (kunit_parser reads it with no error). */
static int skip(const char *why)
{
	printf("1..1\nok 1 %s # SKIP %s\n", SCEN_ID, why);
	return KSFT_SKIP;
}

static int cpus_hotpluggable(void)
{
	char path[80];
	long long v;
	int k;

	for (k = 0; k < NOPS; k++) {
		if (ops[k].kind != OP_CPU)
			continue;
		cpu_path(path, sizeof(path), (int)ops[k].a);
		if (read_value(path, &v) < 0)
			return 0;
	}
	return 1;
}

static int uring_available(void)
{
	struct io_uring_params p;
	int fd;

	memset(&p, 0, sizeof(p));
	fd = (int)syscall(SYS_io_uring_setup, 1, &p);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static int secret_available(void)
{
	int fd = (int)syscall(SYS_memfd_secret, 0);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* Whether this machine can run the scenario: 0, or KSFT_SKIP after saying why. */
static int check_machine(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	char why[160];

	snprintf(why, sizeof(why), "needs %d online CPUs and %d kB pages, this machine has %ld and %ld bytes",
		 SCEN_CPUS, SCEN_PAGE_KB, cpus, page);
	if (cpus != SCEN_CPUS || page != SCEN_PAGE_KB * 1024)
		return skip(why);
	if (geteuid() != 0)
		return skip("run as root: the test sets sysctls and switches uids itself");
	if (read_value(sysctl_path(0), &saved_mlock_kb) < 0 ||
	    read_value(sysctl_path(1), &saved_paranoid) < 0) {
		saved_mlock_kb = -1;
		saved_paranoid = -1000;
		return skip("no kernel.perf_event_mlock_kb or perf_event_paranoid: no perf events");
	}
	if (NEEDS_AUX && aux_type() < 0)
		return skip("needs the lockstep_aux PMU (lockstep's harness/auxpmu module)");
	if (NEEDS_URING && !uring_available())
		return skip("io_uring is not available here");
	if (NEEDS_SECRET && !secret_available())
		return skip("memfd_secret is not available here (boot with secretmem.enable=1?)");
	if (!cpus_hotpluggable())
		return skip("a CPU the scenario takes offline cannot be hotplugged here");
	run_uid = SCEN_ROOT ? 0 : fresh_uid();
	if (run_uid == (uid_t)-1)
		return skip("no free uid between 41000 and 65000");
	return 0;
}

static int run_all(void)
{
	long long pinned, helper;
	struct rep r;
	int i, bad, bugs = 0;

	if (write_text(sysctl_path(0), SCEN_MLOCK_KB) < 0 ||
	    write_text(sysctl_path(1), SCEN_PARANOID) < 0) {
		printf("1..1\nok 1 %s # SKIP cannot set the scenario's sysctls: %s\n", SCEN_ID,
		       strerror(errno));
		return KSFT_SKIP;
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pass_fd) < 0 || start_worker() < 0) {
		printf("Bail out! cannot start the worker\n");
		return KSFT_FAIL;
	}
	printf("1..%d\n", NOPS);
	printf("# scenario %s: uid %u, %d CPUs, expected: %s\n", SCEN_ID,
	       (unsigned int)run_uid, SCEN_CPUS, REF_LOGIC);
	for (i = 0; i < NOPS; i++) {
		run_op(i, &r, &helper);
		pinned = pages_of(vmpin_of(worker));
		bad = check_op(i, &r, pinned, pages_of(helper));
		bugs += bad;
		printf("%s %d op %d %s\n", bad ? "not ok" : "ok", i + 1, i, ops[i].what);
	}
	if (bugs)
		printf("# FAIL: %d of %d ops differ from %s\n", bugs, NOPS, REF_LOGIC);
	else
		printf("# PASS: all %d ops as %s predicts\n", NOPS, REF_LOGIC);
	return bugs ? KSFT_FAIL : KSFT_PASS;
}

int main(void)
{
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	int k, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	page = sysconf(_SC_PAGESIZE);
	controller = getpid();
	signal(SIGPIPE, SIG_IGN);
	printf("KTAP version 1\n");
	rc = check_machine();
	if (rc)
		return rc;
	atexit(restore_machine);
	for (k = 0; k < 4; k++)
		signal(sigs[k], on_signal);
	rc = run_all();
	restore_machine();
	return rc;
}
`;
