/*
 * AUX-area ops of lockstep-repro (harness/PROTOCOL.md: aux_ring, aux_map,
 * aux_unmap), on the lockstep_aux software PMU (harness/auxpmu): their parsing
 * and the worker's side.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>

#include "repro.h"

#define AUX_PMU_TYPE_PATH "/sys/bus/event_source/devices/lockstep_aux/type"

/* The PMU's dynamic type, or -1 (errno set) when the kernel has no such PMU. */
int aux_pmu_type(void)
{
	long long v;
	if (read_ll(AUX_PMU_TYPE_PATH, &v) < 0)
		return -1;
	if (v < 0 || v > INT_MAX) {
		errno = ERANGE;
		return -1;
	}
	return (int)v;
}

bool is_aux_op(const char *w)
{
	return !strcmp(w, "aux_ring") || !strcmp(w, "aux_map") || !strcmp(w, "aux_unmap");
}

/* aux_ring B CPU D | aux_map B N | aux_unmap B */
int parse_aux_op(struct op *op, char **t, int nt, char *err)
{
	const char *w = t[0];
	int want = !strcmp(w, "aux_ring") ? 4 : !strcmp(w, "aux_map") ? 3 : 2;
	if (nt != want)
		return perr(err, "'%s' takes a different number of arguments", w);
	if (!is_ident(t[1]))
		return perr(err, "bad buffer name '%.64s'", t[1]);
	snprintf(op->name, sizeof op->name, "%s", t[1]);
	if (want == 4) {
		op->kind = OP_AUX_RING;
		if (!parse_num(t[2], 0, 4095, &op->a))
			return perr(err, "bad cpu '%.64s'", t[2]);
		if (!parse_num(t[3], 0, 1 << 30, &op->b))
			return perr(err, "bad data page count '%.64s'", t[3]);
	} else if (want == 3) {
		op->kind = OP_AUX_MAP;
		if (!parse_num(t[2], 1, 1 << 30, &op->a))
			return perr(err, "bad AUX page count '%.64s'", t[2]);
	} else {
		op->kind = OP_AUX_UNMAP;
	}
	return 0;
}

static bool block_uses_aux(const struct item *b)
{
	for (int i = 0; i < b->nops; i++)
		if (b->ops[i].kind == OP_AUX_RING || b->ops[i].kind == OP_AUX_MAP || b->ops[i].kind == OP_AUX_UNMAP)
			return true;
	return false;
}

/* Why a block with AUX ops cannot run here (into why), or false when it can. */
bool aux_skip_reason(const struct item *b, char *why, size_t len)
{
	if (!block_uses_aux(b) || aux_pmu_type() >= 0)
		return false;
	snprintf(why, len, "needs the lockstep_aux PMU (harness/auxpmu): %s: %s", AUX_PMU_TYPE_PATH, errname(errno));
	return true;
}

/* Worker: an event of the lockstep_aux PMU on CPU q->a with a ring buffer of q->b data pages. */
void w_aux_ring(const struct req *q, struct rep *r)
{
	if (wbuf_find(q->name))
		return fail(r, EEXIST, "buffer already mapped");
	int type = aux_pmu_type();
	if (type < 0)
		return fail(r, ENODEV, "no lockstep_aux PMU (" AUX_PMU_TYPE_PATH ")");
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.type = (uint32_t)type;
	a.size = sizeof a;
	a.disabled = 1;    /* never enabled: only the mappings' accounting matters */
	map_new(q, r, (int)syscall(SYS_perf_event_open, &a, -1, (int)q->a, -1, PERF_FLAG_FD_CLOEXEC));
}

/* Worker: mmap an AUX area of q->a pages right above the ring buffer (one more mapping if mapped). */
void w_aux_map(const struct req *q, struct rep *r)
{
	struct wbuf *b = wbuf_find(q->name);
	if (!b)
		return fail(r, ENOENT, "no such buffer");
	size_t size = (size_t)q->a * (size_t)g_page;
	void **maps = realloc(b->aux_maps, sizeof *maps * (size_t)(b->naux + 1));
	if (!maps)
		return fail(r, ENOMEM, "out of memory in worker");
	b->aux_maps = maps;
	/* the kernel reads where and how big from the ring buffer's user page */
	struct perf_event_mmap_page *pg = b->maps[0];
	pg->aux_offset = b->size;
	pg->aux_size = size;
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, (off_t)b->size);
	if (m == MAP_FAILED)
		return fail(r, errno, "mmap of the AUX area failed");
	b->aux_size = size;
	b->aux_maps[b->naux++] = m;
}

/* Worker: munmap the latest AUX mapping of the buffer (EINVAL when none is live). */
void w_aux_unmap(const struct req *q, struct rep *r)
{
	struct wbuf *b = wbuf_find(q->name);
	if (!b)
		return fail(r, ENOENT, "no such buffer");
	if (b->naux == 0)
		return fail(r, EINVAL, "no live AUX mapping of this buffer");
	if (munmap(b->aux_maps[b->naux - 1], b->aux_size) < 0)
		return fail(r, errno, "munmap of the AUX area failed");
	b->naux--;
}
