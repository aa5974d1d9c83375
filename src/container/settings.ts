// What a container must look like to run one scenario against the host
// kernel, and which scenarios cannot run in one. Pure.
//
// The container is the incident's: the reproducer's controller runs as root
// (uid 0, no user namespace), Docker's default capability set plus
// CAP_SYS_ADMIN (perf_event_open of CPU-wide events at perf_event_paranoid 2,
// and bpf(); Docker 20.10 knows no CAP_PERFMON, and its default seccomp
// profile allows perf_event_open and bpf only with CAP_SYS_ADMIN), the
// default seccomp profile, and no CAP_IPC_LOCK unless the scenario's worker
// keeps it. The container's RLIMIT_MEMLOCK (soft = hard) is the largest one
// the scenario sets. The worker and helpers still switch to the scenario's
// fresh uid inside the container: without a user namespace that uid's
// per-user counter is the host's, as root's would be (uid 0's counter is
// shared with every root process on the host, which is why the incident's
// root started at 32886 pages and why lockstep never measures as uid 0).

import { scenarioNeeds } from '../scenario/load.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { type Offer, ROOT_UID_WHY } from '../scenario/skip.ts';

export interface ContainerSettings {
  /** capabilities added to Docker's default set */
  capAdd: string[];
  /** RLIMIT_MEMLOCK of the container in kB (soft = hard); null = unlimited */
  rlimitMemlockKb: number | null;
  /** "default": Docker's default seccomp profile */
  seccomp: 'default';
}

export function containerSettings(s: CompiledScenario): ContainerSettings {
  const capAdd = ['SYS_ADMIN'];
  // also when an op grants it later (the worker keeps it permitted, effective from that op on)
  if (s.cap_ipc_lock || s.ops.some((op) => op.op === 'cap_ipc_lock' && op.value)) capAdd.push('IPC_LOCK');
  const n = scenarioNeeds(s);
  return { capAdd, rlimitMemlockKb: n.rlimitUnlimited ? null : n.rlimitKbMax, seccomp: 'default' };
}

/** The host as a container sees it. */
export interface ContainerHost {
  onlineCpus: number;
  /** kernel.perf_event_mlock_kb of the host, kB */
  perfEventMlockKb: number;
  paranoid: number;
}

/**
 * What a container on this host offers a scenario (src/scenario/skip.ts).
 * /proc/sys is read-only inside a container and lockstep does not change the
 * host's sysctls for a container run (the host is shared), so a scenario
 * must start at the host's perf_event_mlock_kb and perf_event_paranoid and
 * write no sysctl; CPUs are never taken offline on the host. Pure.
 */
export function containerOffer(h: ContainerHost): Offer {
  return {
    where: 'the host',
    onlineCpus: h.onlineCpus,
    cpusWhy: '(a container sees the host\'s CPUs)',
    memlockHardKb: null,
    cpuHotplug: 'lockstep never hotplugs host CPUs',
    faultInjection: 'VM only',
    rootUid: ROOT_UID_WHY,
    sysctls: { perf_event_mlock_kb: h.perfEventMlockKb, perf_event_paranoid: h.paranoid, why: '/proc/sys is read-only in a container and lockstep does not change host sysctls for container runs' },
  };
}

/** The engine's HostConfig part for these settings (dockerode's names). */
export function hostConfigFor(c: ContainerSettings, bindDir: string): Record<string, unknown> {
  const bytes = c.rlimitMemlockKb === null ? -1 : c.rlimitMemlockKb * 1024;
  return {
    Binds: [`${bindDir}:/lockstep:ro`],
    CapAdd: c.capAdd,
    Ulimits: [{ Name: 'memlock', Soft: bytes, Hard: bytes }],
    NetworkMode: 'none',
    // SecurityOpt left empty: Docker's default seccomp (and AppArmor) profile.
  };
}
