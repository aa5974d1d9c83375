/* lockstep-repro: arguments, the script's input and main(). Usage: harness/PROTOCOL.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/stat.h>

#include "repro.h"

#define MAX_SCRIPT_BYTES (16u << 20)

int g_op_timeout = 60;
bool g_allow_uid0;      /* --allow-uid-0: blocks may run as root (a guest) */
pid_t g_controller;
long g_page;

static int open_out(const char *path, bool rdwr)
{
	struct stat st;
	int flags = (rdwr ? O_RDWR : O_WRONLY) | O_NOCTTY | O_CLOEXEC;
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

/* read exactly n bytes of fd into b; false on EOF or error (errno set; EPIPE for EOF) */
static bool read_exact(int fd, char *b, size_t n)
{
	while (n) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EPIPE;
			return false;
		}
		b += r;
		n -= (size_t)r;
	}
	return true;
}

/*
 * --script-from-out: the guest waits at a "ready" line for its script, so the
 * host can snapshot it there and send each run's script to a restored copy
 * (harness/PROTOCOL.md, "Waiting for the script"). Reads the header line
 * "script N" or "script N T" (N bytes, 1..MAX_SCRIPT_BYTES; T the per-op
 * timeout in seconds, 1..86400) and then N bytes from fd.
 */
static char *script_from(int fd, size_t *len)
{
	struct line l;
	l_open(&l, "ready");
	l_int(&l, "proto", 1);
	l_emit(&l);
	char hdr[32];
	size_t n = 0;
	for (;;) {
		if (n == sizeof hdr - 1 || !read_exact(fd, hdr + n, 1)) {
			if (n == sizeof hdr - 1)
				errno = EINVAL;
			return NULL;
		}
		if (hdr[n] == '\n')
			break;
		n++;
	}
	hdr[n] = 0;
	/* "script N" or "script N T": T overrides --op-timeout (the snapshot was saved before it was known) */
	long long want, timeout = 0;
	char *sp = strchr(hdr + 7, ' ');
	if (sp)
		*sp = 0;
	if (strncmp(hdr, "script ", 7) != 0 || !parse_num(hdr + 7, 1, MAX_SCRIPT_BYTES, &want)
	    || (sp && !parse_num(sp + 1, 1, 86400, &timeout))) {
		errno = EINVAL;
		return NULL;
	}
	if (timeout)
		g_op_timeout = (int)timeout;
	char *buf = malloc((size_t)want + 1);
	if (!buf || !read_exact(fd, buf, (size_t)want)) {
		free(buf);
		return NULL;
	}
	buf[want] = 0;
	*len = (size_t)want;
	return buf;
}

static void usage(void)
{
	fprintf(stderr, "usage: lockstep-repro --script FILE [--out FILE] [--op-timeout SECONDS] [--allow-uid-0]\n"
			"       lockstep-repro --script-from-out --out TTY [--op-timeout SECONDS] [--allow-uid-0]\n"
			"See harness/PROTOCOL.md.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *script = NULL, *out = NULL;
	bool from_out = false;
	static const struct option lo[] = {
		{ "script", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "op-timeout", required_argument, NULL, 't' },
		{ "allow-uid-0", no_argument, NULL, 'u' },
		{ "script-from-out", no_argument, NULL, 'w' },
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
		case 'w': from_out = true; break;
		case 't':
			if (!parse_num(optarg, 1, 86400, &v))
				usage();
			g_op_timeout = (int)v;
			break;
		default: usage();
		}
	}
	/* --script-from-out reads the script from --out (a tty or socket), so it needs one */
	if ((!script && !from_out) || optind != argc || (from_out && (!out || !strcmp(out, "-"))))
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
		g_out = open_out(out, from_out);
		if (g_out < 0) {
			fprintf(stderr, "lockstep-repro: cannot open %s: %s\n", out, strerror(errno));
			return 2;
		}
	}

	size_t len = 0;
	char *text = from_out ? script_from(g_out, &len) : NULL;
	emit_hello();
	if (geteuid() != 0) {
		emit_error(NULL, -1, 0, "must run as root (uid 0 with CAP_SETUID, CAP_SYS_ADMIN)");
		emit_done();
		return 1;
	}
	if (!from_out)
		text = slurp(script, &len);
	if (!text) {
		emit_error(NULL, -1, 0, "cannot read script %s: %s", from_out ? out : script, errname(errno));
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
