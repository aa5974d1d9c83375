// The one skip rule: can a machine run a scenario? Every runtime (host,
// container, VM) only describes what it offers (an Offer); skipReasons
// compares that with what the compiled scenario needs (load.ts
// scenarioNeeds). Pure: no I/O (the runtimes read /proc and the build).

import type { ScenarioNeeds } from './load.ts';
import type { Feature } from './ops.ts';

/**
 * What a machine offers a scenario. For each capability: true (offered), or
 * a string saying why not (it ends the SKIP reason). Optional fields are
 * offered when absent.
 */
export interface Offer {
  /** for reasons: "the host", "the machine" */
  where?: string;
  /** online CPUs at start; null = the runtime boots with the scenario's count (a VM) */
  onlineCpus: number | null;
  /** appended to a CPU-count reason (e.g. why the count cannot change) */
  cpusWhy?: string;
  /** CONFIG_NR_CPUS of the kernel's build (num_possible_cpus() cap); null/absent = unknown, not checked */
  nrCpus?: number | null;
  /** hard RLIMIT_MEMLOCK (kB) root can give the worker; null = unlimited */
  memlockHardKb: number | null;
  /** CPU hotplug (/sys/devices/system/cpu/cpuN/online) */
  cpuHotplug: boolean | string;
  /** hang / sysrq ops (they test the runner; sysrq can crash the machine) */
  faultInjection: boolean | string;
  /** kernel features; a missing key = offered */
  features?: Partial<Record<Feature, true | string>>;
  /**
   * 'writable': the scenario's start values and sysctl ops are applied;
   * else the values the machine has and cannot change, and why.
   */
  sysctls?: 'writable' | { perf_event_mlock_kb: number; perf_event_paranoid: number; why: string };
  /** root privileges: false = why not (the controller sets sysctls and switches uids) */
  root?: true | string;
  /** a worker of uid 0 ("uid": "root" scenarios): why not (absent = offered) */
  rootUid?: true | string;
}

/**
 * Why host and container runs refuse uid 0 workers: a leak there would stay
 * on the machine that runs lockstep until it reboots (root_user, kernel/user.c).
 */
export const ROOT_UID_WHY = "uid 0's per-user record is the host's own: every root process shares it and it lives until reboot (VM runtimes run it)";

const why = (v: boolean | string | undefined, dflt: string): string | null => (v === true || v === undefined ? null : v === false ? dflt : v);

/**
 * Every reason `offer` cannot run a scenario with `needs`, in a fixed order
 * (fault injection, privileges, uid 0, CPUs, RLIMIT_MEMLOCK, sysctls, features);
 * [] = it can. Each reason is one phrase, e.g. "needs 36 online CPUs, the
 * machine has 2".
 */
export function skipReasons(needs: ScenarioNeeds, offer: Offer): string[] {
  const out: string[] = [];
  const where = offer.where ?? 'the machine';
  if (needs.faultInjection) {
    const w = why(offer.faultInjection, 'not here');
    if (w !== null) out.push(`has fault-injection ops (hang/sysrq): ${w}`);
  }
  if (offer.root !== undefined && offer.root !== true) out.push(offer.root);
  if (needs.rootUid) {
    const w = why(offer.rootUid, 'not here');
    if (w !== null) out.push(`runs its worker as uid 0: ${w}`);
  }
  if (!needs.cpusAny && offer.onlineCpus !== null && needs.cpus !== offer.onlineCpus) {
    out.push(`needs ${needs.cpus} online CPUs, ${where} has ${offer.onlineCpus}${offer.cpusWhy ? ` ${offer.cpusWhy}` : ''}`);
  }
  const cpusAt = needs.cpusAny && offer.onlineCpus !== null ? offer.onlineCpus : needs.cpus;
  if (offer.nrCpus != null && cpusAt > offer.nrCpus) out.push(`needs ${cpusAt} online CPUs, the kernel is built with CONFIG_NR_CPUS=${offer.nrCpus}`);
  if (needs.hotplugCpus.length > 0) {
    const w = why(offer.cpuHotplug, 'needs CPU hotplug');
    if (w !== null) out.push(`takes CPU ${needs.hotplugCpus.join(', ')} offline: ${w}`);
  }
  const hard = offer.memlockHardKb;
  if (hard !== null) {
    if (needs.rlimitUnlimited) out.push(`sets RLIMIT_MEMLOCK unlimited, above ${where}'s hard limit ${hard} kB`);
    if (needs.rlimitKbMax !== null && needs.rlimitKbMax > hard) out.push(`sets RLIMIT_MEMLOCK ${needs.rlimitKbMax} kB, above ${where}'s hard limit ${hard} kB`);
  }
  const sys = offer.sysctls;
  if (sys !== undefined && sys !== 'writable') {
    if (needs.start.perf_event_mlock_kb !== sys.perf_event_mlock_kb) out.push(`starts at perf_event_mlock_kb ${needs.start.perf_event_mlock_kb}, ${where} has ${sys.perf_event_mlock_kb}: ${sys.why}`);
    if (needs.start.perf_event_paranoid !== sys.perf_event_paranoid) out.push(`starts at perf_event_paranoid ${needs.start.perf_event_paranoid}, ${where} has ${sys.perf_event_paranoid}: ${sys.why}`);
    for (const name of needs.sysctls) out.push(`writes ${name} mid-run: ${sys.why}`);
  }
  for (const f of needs.features) {
    const w = offer.features?.[f];
    if (w !== undefined && w !== true) out.push(`needs ${f}: ${w}`);
  }
  return out;
}

/** The first of skipReasons, or null when the offer runs the scenario. */
export const skipReason = (needs: ScenarioNeeds, offer: Offer): string | null => skipReasons(needs, offer)[0] ?? null;
