// Planning: which boots (groups) a matrix needs. Pure. One group = one
// kernel x one CPU count: every scenario of a kernel that needs the same
// number of online CPUs runs in one boot (or one host run), each under its
// own fresh uid. A `"cpus": "any"` scenario is compiled for each count it
// runs at: the host's online count on host/container rows, PlanOptions.anyCpus
// (default [DEFAULT_ANY_CPUS]) in VMs -- so it never SKIPs for the count.

import { compileAtCpus, compileAtPageSize, DEFAULT_ANY_CPUS } from '../scenario/load.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { ConfigError } from '../util/errors.ts';

export interface PlanOptions {
  /** online CPUs of the host (host and container rows run "any" scenarios at this count) */
  hostCpus: number;
  /** vCPU counts VM groups run "any" scenarios at (each count is one boot); default [DEFAULT_ANY_CPUS] */
  anyCpus?: readonly number[];
}

export interface PlannedKernel {
  id: string;
  runtime: 'host' | 'qemu' | 'container' | 'virtme';
  /** the kernel's page size in kB (default 4): its scenarios are compiled for it (compileAtPageSize) */
  pageKb?: number;
}

/** Runtimes that boot a VM (the kernel under test is not the host's). */
export const isVmRuntime = (r: PlannedKernel['runtime']): boolean => r === 'qemu' || r === 'virtme';

export interface PlannedGroup {
  /** stable name: "<kernel>@<cpus>cpu" */
  key: string;
  kernel: string;
  runtime: PlannedKernel['runtime'];
  cpus: number;
  scenarios: CompiledScenario[];
  /** scenarios that cannot be compiled for this kernel's page size (an "L-80" below zero at 16 kB pages): their cells SKIP with the reason */
  unfit?: { scenario: CompiledScenario; reason: string }[];
}

/**
 * One group per kernel and CPU count, largest count first. Pinned scenarios
 * go to the group of their count; "any" scenarios (cpus_any) are compiled
 * (compileAtCpus) into every VM group of `opts.anyCpus` and into the host's
 * count on host/container rows; a kernel with other than 4 kB pages gets
 * its scenarios compiled for its page size (compileAtPageSize). Throws
 * ConfigError from compileAtCpus only; a scenario that does not compile
 * at the kernel's page size goes to the group's `unfit` list.
 */
export function planGroups(kernels: readonly PlannedKernel[], scenarios: readonly CompiledScenario[], opts?: PlanOptions): PlannedGroup[] {
  const groups: PlannedGroup[] = [];
  const pinned = scenarios.filter((s) => !s.cpus_any);
  const open = scenarios.filter((s) => s.cpus_any);
  for (const k of kernels) {
    const anyCounts = isVmRuntime(k.runtime) ? [...(opts?.anyCpus ?? [DEFAULT_ANY_CPUS])] : [opts?.hostCpus ?? DEFAULT_ANY_CPUS];
    const counts = [...new Set([...pinned.map((s) => s.cpus), ...(open.length ? anyCounts : [])])].sort((a, b) => b - a);
    for (const cpus of counts) {
      // keep the scenarios' given order
      const list: CompiledScenario[] = [];
      const unfit: { scenario: CompiledScenario; reason: string }[] = [];
      for (const s of scenarios.flatMap((x) => (x.cpus_any ? (anyCounts.includes(cpus) ? [compileAtCpus(x, cpus)] : []) : x.cpus === cpus ? [x] : []))) {
        if (!k.pageKb || k.pageKb === 4) { list.push(s); continue; }
        try {
          list.push(compileAtPageSize(s, k.pageKb));
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          unfit.push({ scenario: s, reason: `does not fit ${k.pageKb} kB pages: ${e.field}: ${e.problem}` });
        }
      }
      // uid 0's record outlives every scenario of a boot: one "uid": "root" scenario per boot,
      // so each starts from what the guest booted with. Further ones get boots of their own.
      const [first, ...more] = splitRootScenarios(list);
      groups.push({ key: `${k.id}@${cpus}cpu`, kernel: k.id, runtime: k.runtime, cpus, scenarios: first!, ...(unfit.length ? { unfit } : {}) });
      more.forEach((one, n) => groups.push({ key: `${k.id}@${cpus}cpu+root${n + 2}`, kernel: k.id, runtime: k.runtime, cpus, scenarios: one }));
    }
  }
  return groups;
}

/**
 * `list` as boot lists with at most one "uid": "root" scenario each (root's
 * per-user record, root_user, lives until reboot: a second root scenario in
 * the same boot would start with the first one's leaks). The first list keeps
 * every other scenario, in order; always at least one list. Pure.
 */
export function splitRootScenarios(list: readonly CompiledScenario[]): CompiledScenario[][] {
  const roots = list.filter((s) => s.root === true);
  if (roots.length <= 1) return [[...list]];
  const firstRoot = roots[0]!;
  return [list.filter((s) => s.root !== true || s === firstRoot), ...roots.slice(1).map((s) => [s])];
}

/**
 * Order in which to start groups: VM groups with many CPUs first (they take
 * longest under TCG, so starting them early shortens the whole run).
 */
export function scheduleOrder(groups: readonly PlannedGroup[]): PlannedGroup[] {
  return [...groups].sort((a, b) => b.cpus - a.cpus || a.key.localeCompare(b.key));
}

/** Boot timeout for a group: generous for TCG, where each vCPU is a host thread. */
export function groupTimeoutMs(g: PlannedGroup, accelIsKvm: boolean, override?: number): number {
  if (override) return override;
  // TCG: ~25 s for 36 vCPUs on an idle 2-core host, 2-3x that under load.
  const boot = accelIsKvm ? 30_000 : 60_000 + 3_000 * g.cpus;
  const ops = g.scenarios.reduce((n, s) => n + s.ops.length, 0);
  return boot + 10_000 * g.scenarios.length + 50 * ops;
}
