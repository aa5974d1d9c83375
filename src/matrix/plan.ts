// Planning: which boots (groups) a matrix needs. Pure. One group = one
// kernel x one CPU count: every scenario of a kernel that needs the same
// number of online CPUs runs in one boot (or one host run), each under its
// own fresh uid.

import type { CompiledScenario } from '../scenario/ops.ts';

export interface PlannedKernel { id: string; runtime: 'host' | 'qemu' | 'container' }

export interface PlannedGroup {
  /** stable name: "<kernel>@<cpus>cpu" */
  key: string;
  kernel: string;
  runtime: PlannedKernel['runtime'];
  cpus: number;
  scenarios: CompiledScenario[];
}

export function planGroups(kernels: readonly PlannedKernel[], scenarios: readonly CompiledScenario[]): PlannedGroup[] {
  const groups: PlannedGroup[] = [];
  const cpuCounts = [...new Set(scenarios.map((s) => s.cpus))].sort((a, b) => b - a);
  for (const k of kernels) {
    for (const cpus of cpuCounts) {
      groups.push({ key: `${k.id}@${cpus}cpu`, kernel: k.id, runtime: k.runtime, cpus, scenarios: scenarios.filter((s) => s.cpus === cpus) });
    }
  }
  return groups;
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
