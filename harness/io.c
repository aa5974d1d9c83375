/* lockstep-repro: small file, sysfs and /proc helpers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repro.h"

ssize_t write_all(int fd, const void *p, size_t n)
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
ssize_t read_full(int fd, void *p, size_t n)
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

int read_ll(const char *path, long long *v)
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

int write_str(const char *path, const char *s)
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

int write_ll(const char *path, long long v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld\n", v);
	return write_str(path, buf);
}

/*
 * Write v unless the file already holds it (`cur`): in a container /proc/sys
 * is read-only, and a scenario that keeps the host's values must still run.
 */
int set_ll(const char *path, long long cur, long long v)
{
	return cur == v ? 0 : write_ll(path, v);
}

/*
 * Online CPU list from sysfs (what num_online_cpus() counts); fills ids if
 * given. Falls back to sysconf when sysfs is not mounted.
 */
int online_cpus(int *ids, int max)
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
void vm_status(pid_t pid, long long *pin, long long *lck)
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
long long self_vmpin(void)
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
