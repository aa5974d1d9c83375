/* lockstep-repro: a child's drop to the block's uid, its capabilities and rlimits. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "compat.h"
#include "repro.h"

/* ------------------------------------------------------------------ */
/* Child side: privileges                                               */

uint64_t capmask(int cap) { return 1ULL << cap; }

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
int drop_privs(uid_t uid, uint64_t want, uint64_t idle, long long memlock_kb, bool memlock_clamp, char *msg)
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
void close_fds_except(int keep1, int keep2, int keep3)
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
