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

import { type CompiledScenario, hasFaultInjection } from '../scenario/ops.ts';

export interface ContainerSettings {
  /** capabilities added to Docker's default set */
  capAdd: string[];
  /** RLIMIT_MEMLOCK of the container in kB (soft = hard); null = unlimited */
  memlockKb: number | null;
  /** "default": Docker's default seccomp profile */
  seccomp: 'default';
}

export function containerSettings(s: CompiledScenario): ContainerSettings {
  const capAdd = ['SYS_ADMIN'];
  if (s.cap_ipc_lock) capAdd.push('IPC_LOCK');
  let memlockKb: number | null = s.rlimit_kb;
  for (const op of s.ops) {
    if (op.op !== 'rlimit' || memlockKb === null) continue;
    if (op.memlock_kb === null || op.memlock_kb > memlockKb) memlockKb = op.memlock_kb;
  }
  return { capAdd, memlockKb, seccomp: 'default' };
}

/** The host as a container sees it. */
export interface ContainerHost {
  onlineCpus: number;
  mlockKb: number;
  paranoid: number;
}

/**
 * Why a scenario cannot run in a container on this host, or null. /proc/sys
 * is read-only inside a container and lockstep does not change the host's
 * sysctls for a container run (the host is shared), so a scenario must start
 * at the host's perf_event_mlock_kb and perf_event_paranoid and write no
 * sysctl; CPUs are never taken offline on the host.
 */
export function containerSkipReason(s: CompiledScenario, h: ContainerHost): string | null {
  if (s.cpus !== h.onlineCpus) return `needs ${s.cpus} online CPUs, the host has ${h.onlineCpus} (a container sees the host's CPUs)`;
  const ro = '/proc/sys is read-only in a container and lockstep does not change host sysctls for container runs';
  if (s.mlock_kb !== h.mlockKb) return `starts at perf_event_mlock_kb ${s.mlock_kb}, the host has ${h.mlockKb}: ${ro}`;
  if (s.paranoid !== h.paranoid) return `starts at perf_event_paranoid ${s.paranoid}, the host has ${h.paranoid}: ${ro}`;
  const sysctl = s.ops.find((op) => op.op === 'sysctl');
  if (sysctl) return `writes ${sysctl.name} mid-run: ${ro}`;
  if (s.ops.some((op) => op.op === 'cpu')) return 'takes CPUs offline: lockstep never hotplugs host CPUs';
  if (hasFaultInjection(s)) return 'has fault-injection ops (hang/sysrq): VM only';
  return null;
}

/** The engine's HostConfig part for these settings (dockerode's names). */
export function hostConfigFor(c: ContainerSettings, bindDir: string): Record<string, unknown> {
  const bytes = c.memlockKb === null ? -1 : c.memlockKb * 1024;
  return {
    Binds: [`${bindDir}:/lockstep:ro`],
    CapAdd: c.capAdd,
    Ulimits: [{ Name: 'memlock', Soft: bytes, Hard: bytes }],
    NetworkMode: 'none',
    // SecurityOpt left empty: Docker's default seccomp (and AppArmor) profile.
  };
}
