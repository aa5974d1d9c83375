/* lockstep-repro: the JSON line writer and `error` lines (harness/PROTOCOL.md, Output lines). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "repro.h"

int g_out = STDOUT_FILENO;
int g_errors;              /* error lines emitted: decides the exit status */

const char *errname(int e)
{
	static char buf[16];
	const char *n = e ? strerrorname_np(e) : "";
	if (n)
		return n;
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

/* ------------------------------------------------------------------ */
/* JSON output: one object per line, one write(2) per line             */

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

void l_open(struct line *l, const char *ev)
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

void l_str(struct line *l, const char *k, const char *v)
{
	l_key(l, k);
	l_qstr(l, v);
}

void l_int(struct line *l, const char *k, long long v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", v);
	l_key(l, k);
	l_raw(l, buf);
}

/* A kB figure that may be unavailable (process gone): null then. */
void l_kb(struct line *l, const char *k, long long v)
{
	if (v < 0) {
		l_key(l, k);
		l_raw(l, "null");
	} else {
		l_int(l, k, v);
	}
}

void l_bool(struct line *l, const char *k, bool v)
{
	l_key(l, k);
	l_raw(l, v ? "true" : "false");
}

void l_emit(struct line *l)
{
	l->b[l->n++] = '}';
	l->b[l->n++] = '\n';
	/* one write(2) per line so lines never interleave on the serial port */
	write_all(g_out, l->b, l->n);
}

void emit_error(const char *scenario, int i, int line_no, const char *fmt, ...)
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
