/* lockstep-repro: strict parsing of the op script (harness/PROTOCOL.md, Script and Ops). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repro.h"

const char *const op_names[] = {
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

/* ------------------------------------------------------------------ */
/* Script parsing (strict)                                              */

bool is_ident(const char *s)
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
bool parse_num(const char *s, long long lo, long long hi, long long *out)
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

int perr(char *err, const char *fmt, const char *tok)
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
int parse_script(char *text, size_t len, struct item **items)
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
		char msg[64];   /* sized to its message: gcc then sees item_fail cannot truncate it */
		snprintf(msg, sizeof msg, "missing end for the block begun at line %d", it->line);
		item_fail(it, lineno, msg);
	}
	return n;
}
