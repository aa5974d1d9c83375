// SPDX-License-Identifier: GPL-2.0
/*
 * lockstep_aux: a software PMU that offers an AUX area and nothing else.
 *
 * perf_mmap() charges an AUX area to the per-user counter and mm->pinned_vm,
 * and perf_mmap_close() gives the charge back, for any PMU that implements
 * setup_aux(); the hardware behind it (Intel PT, CoreSight, ...) plays no
 * part in that accounting. This PMU lets lockstep measure it on machines
 * and emulated CPUs without such hardware:
 *   - setup_aux() returns a small private record (the AUX pages are allocated
 *     and charged by the perf core, as for a hardware PMU), free_aux() frees it;
 *   - add/del/start/stop/read do nothing: no data is ever written.
 * Its type is dynamic, read from /sys/bus/event_source/devices/lockstep_aux/type.
 *
 * Built into lockstep's source kernels (kernel/events/, see
 * src/kernels/obtain/source/auxpmu.ts) or as a module against a distribution
 * kernel's headers. The same file builds against 5.x .. 7.x: setup_aux()
 * takes the event (not the cpu) since before v5.3 (checked on v5.3.1).
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/perf_event.h>
#include <linux/slab.h>
#include <linux/version.h>

#define LOCKSTEP_AUX_NAME "lockstep_aux"

/* What setup_aux() hands back to the core: enough to prove it is ours. */
struct lockstep_aux_rec {
	int nr_pages;
	bool overwrite;
};

static struct pmu lockstep_aux_pmu;

static int lockstep_aux_event_init(struct perf_event *event)
{
	if (event->attr.type != lockstep_aux_pmu.type)
		return -ENOENT;
	/* no sampling, no branch stacks: an AUX-only event */
	if (is_sampling_event(event) || has_branch_stack(event))
		return -EINVAL;
	return 0;
}

static int lockstep_aux_add(struct perf_event *event, int flags)
{
	return 0;
}

static void lockstep_aux_del(struct perf_event *event, int flags)
{
}

static void lockstep_aux_start(struct perf_event *event, int flags)
{
}

static void lockstep_aux_stop(struct perf_event *event, int flags)
{
}

static void lockstep_aux_read(struct perf_event *event)
{
}

static void *lockstep_aux_setup(struct perf_event *event, void **pages,
				int nr_pages, bool overwrite)
{
	struct lockstep_aux_rec *rec = kzalloc(sizeof(*rec), GFP_KERNEL);

	if (!rec)
		return NULL;
	rec->nr_pages = nr_pages;
	rec->overwrite = overwrite;
	return rec;
}

static void lockstep_aux_free(void *aux)
{
	kfree(aux);
}

static struct pmu lockstep_aux_pmu = {
	/* task events too, like the kprobe/uprobe software PMUs */
	.task_ctx_nr	= perf_sw_context,
	.event_init	= lockstep_aux_event_init,
	.add		= lockstep_aux_add,
	.del		= lockstep_aux_del,
	.start		= lockstep_aux_start,
	.stop		= lockstep_aux_stop,
	.read		= lockstep_aux_read,
	.setup_aux	= lockstep_aux_setup,
	.free_aux	= lockstep_aux_free,
};

static int __init lockstep_aux_init(void)
{
	int ret;

	lockstep_aux_pmu.module = THIS_MODULE;
	ret = perf_pmu_register(&lockstep_aux_pmu, LOCKSTEP_AUX_NAME, -1);
	if (!ret)
		pr_info(LOCKSTEP_AUX_NAME ": software AUX PMU registered, type %d\n",
			lockstep_aux_pmu.type);
	return ret;
}

static void __exit lockstep_aux_exit(void)
{
	perf_pmu_unregister(&lockstep_aux_pmu);
}

module_init(lockstep_aux_init);
module_exit(lockstep_aux_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lockstep: software PMU with an AUX area, for perf_mmap() accounting tests");
