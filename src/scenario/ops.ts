// The op script: the one description of a workload that both the simulator
// (src/model) and the native reproducer (harness/) execute. Pure types and
// small pure helpers only; no I/O here.

/**
 * RLIMIT_MEMLOCK (kB, soft = what io_uring, BPF before v5.11 and memfd_secret
 * check) of every ballast and handoff helper, in every runtime: the reproducer
 * sets it (harness/PROTOCOL.md) so no runtime's own `ulimit -l` leaks into a
 * scenario. 8192 kB is what every runtime here can give: the host's hard limit
 * (root there cannot raise it) and the container default. An io_uring ballast
 * of more than 2048 pages (minus what user->locked_vm already holds) is thus
 * refused with ENOMEM everywhere, and the model predicts that.
 */
export const HELPER_RLIMIT_MEMLOCK_KB = 8192;

/** PAGE_SIZE / 1024 of x86_64 and most kernels: the default wherever a kernel's page size is not reported. */
export const DEFAULT_PAGE_KB = 4;


/** kB per page where the kernel's page size is not known (x86_64): what compile-time "L" and the default diff use. */
export const PAGE_KB = DEFAULT_PAGE_KB;

/** Which sysctls a scenario may set. Values are what /proc/sys/kernel takes. */
export type SysctlName = 'perf_event_mlock_kb' | 'perf_event_paranoid';

export type Op =
  /** Controller (root) writes /proc/sys/kernel/<name>. Restored at scenario end. */
  | { op: 'sysctl'; name: SysctlName; value: number }
  /** Worker sets its soft RLIMIT_MEMLOCK (kB; null = unlimited). */
  | { op: 'rlimit'; memlock_kb: number | null }
  /**
   * A helper process of the same uid charges the per-user counter and stays
   * alive until the scenario ends. `perf`: the helper holds CAP_IPC_LOCK and
   * maps one ring buffer per entry of `buffers` (data pages, power of two or
   * 0), so each costs data_pages + 1 pages. `io_uring`: the helper (no
   * CAP_IPC_LOCK, RLIMIT_MEMLOCK unlimited) registers `pages` pages of
   * anonymous memory as fixed buffers.
   */
  | { op: 'ballast'; via: 'perf'; buffers: number[] }
  | { op: 'ballast'; via: 'io_uring'; pages: number }
  /**
   * A helper (CAP_SYS_ADMIN/CAP_BPF, no CAP_IPC_LOCK) creates BPF array maps
   * costing `pages` pages: kernels before 5.11 charge them to user->locked_vm
   * (perf's counter where it is shared), later ones to the memory cgroup.
   */
  | { op: 'ballast'; via: 'bpf'; pages: number }
  /**
   * A helper (no CAP_IPC_LOCK, RLIMIT_MEMLOCK unlimited) maps `pages` pages
   * of memfd_secret(2) memory and touches each: stables 6.1.191+ and
   * 6.12.113+ ("mm/secretmem: properly account locked pages") charge them to
   * user->locked_vm. ENOSYS where secretmem is off: the reproducer skips the
   * scenario with the reason.
   */
  | { op: 'ballast'; via: 'memfd_secret'; pages: number }
  /**
   * Worker: registers `pages` pages as io_uring fixed buffers itself: io_uring
   * refuses with ENOMEM when user->locked_vm + pages > its RLIMIT_MEMLOCK
   * (no check with CAP_IPC_LOCK), else charges user->locked_vm and adds the
   * pages to mm->pinned_vm. Kept until the worker exits.
   */
  | { op: 'uring'; pages: number }
  /**
   * Worker: munmap the last page of `buf`'s first mapping: EINVAL since v6.17
   * (stables 6.16.1, 6.12.42, 6.1.148); before, the split succeeds and nothing
   * is given back until the rest is unmapped.
   */
  | { op: 'unmap_part'; buf: string }
  /**
   * Worker: a new event `buf` on `to`'s CPU, PERF_EVENT_IOC_SET_OUTPUT to
   * `to`, then mmap of it at `to`'s size: shares `to`'s ring buffer before
   * v6.15, shares it and charges the per-user counter again (never given
   * back) from v6.15 to 6.18.7, EBUSY from 6.19 and 6.18.8.
   */
  | { op: 'map_output'; buf: string; to: string }
  /**
   * Worker: exits (every mapping goes with it) and a fresh worker of the same
   * uid, caps and initial RLIMIT_MEMLOCK takes its place. The per-user counter
   * survives because a ballast helper keeps the uid alive (compile.ts insists),
   * or, with `last`, the worker was the uid's last process: the reproducer
   * waits for the kernel to free the uid's user_struct (free_uid() from the
   * RCU-delayed cred release) before the new worker starts, so the new
   * worker's uid starts from zero on both per-user counters, except uid 0,
   * whose record (root_user) is static and keeps everything.
   */
  | { op: 'exit'; last?: true }
  /**
   * fd hand-off: a new helper of the uid (CAP_IPC_LOCK) opens an event on
   * `cpu`, maps it with `data_pages` data pages and passes the fd to the
   * worker over a unix socket (SCM_RIGHTS); the worker maps it again as `buf`.
   * Before v6.15 the second mapping charges nothing; from v6.15 (V4) it
   * charges user_extra to U again, and only one charge comes back when the
   * ring buffer's last mapping (the helper's or the worker's) goes.
   */
  | { op: 'handoff'; buf: string; cpu: number; data_pages: number }
  /**
   * Controller: SIGKILL one helper (`helper`: 0-based index among the helpers
   * the scenario started, ballast and handoff ops in order) or all of them
   * ('*'), and reap it: its mappings and charges go as on munmap.
   */
  | { op: 'kill_helper'; helper: number | '*' }
  /** Worker: CAP_IPC_LOCK on (true) or off in its effective set from now on (until an `exit`). */
  | { op: 'cap_ipc_lock'; value: boolean }
  /** Worker: perf_event_open(software event, pid -1, cpu) and mmap 1 + data_pages pages. */
  | { op: 'map'; buf: string; cpu: number; data_pages: number }
  /** Worker: mmap the already-mapped event `buf` once more (same size). */
  | { op: 'remap'; buf: string }
  /** Worker: munmap every mapping of `buf` ('*': of every buffer, in map order) and close its fd. */
  | { op: 'unmap'; buf: string }
  /**
   * Worker: measure how far the per-user counter is below its allowance:
   * map header-only buffers (1 page each) on fresh events until VmPin grows,
   * then unmap them all. headroom = maps that did not spill.
   */
  | { op: 'probe' }
  /** Controller: write /sys/devices/system/cpu/cpuN/online. */
  | { op: 'cpu'; cpu: number; online: boolean }
  /**
   * Worker: perf_event_open of the lockstep_aux software PMU (harness/auxpmu;
   * type from /sys/bus/event_source/devices/lockstep_aux/type), pid -1, cpu
   * `cpu`, and mmap of its ring buffer (1 + data_pages pages), charged as
   * `map`. A kernel without the PMU SKIPs the scenario.
   */
  | { op: 'aux_ring'; buf: string; cpu: number; data_pages: number }
  /**
   * Worker: mmap an AUX area of `pages` pages (a power of two) above `buf`'s
   * ring buffer (an aux_ring). The first mapping is charged like a new ring
   * buffer with user_extra = pages (no header page); a further mapping while
   * one is live charges nothing, except under V4 (v6.15+), which charges
   * `pages` to U again, unchecked, never given back.
   */
  | { op: 'aux_map'; buf: string; pages: number }
  /** Worker: munmap `buf`'s latest AUX mapping; the last one gives the charge back by the logic's AUX unmap rule. */
  | { op: 'aux_unmap'; buf: string }
  /** Fault injection (tests only): worker blocks for `seconds`. */
  | { op: 'hang'; seconds: number }
  /** Fault injection (tests only): controller writes `key` to /proc/sysrq-trigger. */
  | { op: 'sysrq'; key: string };

export type OpName = Op['op'];

/** A kernel feature a scenario's ops may need (io_uring: ballast via io_uring and uring; bpf; memfd_secret). */
export type Feature = 'io_uring' | 'bpf' | 'memfd_secret';

/** Ops that exist to test the runner (sysrq can crash the machine): VM only, never the host or a container. */
export const FAULT_OPS: ReadonlySet<OpName> = new Set<OpName>(['hang', 'sysrq']);

/** Ops that need the lockstep_aux PMU (harness/auxpmu): a kernel without it SKIPs the scenario. */
export const AUX_OPS: ReadonlySet<OpName> = new Set<OpName>(['aux_ring', 'aux_map', 'aux_unmap']);

/** Does the scenario use the AUX PMU? */
export const usesAux = (s: { ops: readonly Op[] }): boolean => s.ops.some((op) => AUX_OPS.has(op.op));

export const hasFaultInjection = (s: { ops: readonly Op[] }): boolean => s.ops.some((op) => FAULT_OPS.has(op.op));

/** A scenario after compilation: everything concrete, ready to run or simulate. */
export interface CompiledScenario {
  id: string;
  /** Online CPUs the scenario needs (num_online_cpus() at start); for a `cpus_any` scenario, the count it was compiled for. */
  cpus: number;
  /**
   * true when the scenario file says "cpus": "any": the count is open, and
   * runs recompile it (compileAtCpus) for the CPUs the machine has, so the
   * allowance and the prediction follow that count.
   */
  cpus_any?: true;
  /** perf_event_mlock_kb at scenario start. */
  mlock_kb: number;
  /** perf_event_paranoid at scenario start. */
  paranoid: number;
  /** Worker's initial soft RLIMIT_MEMLOCK in kB (null = unlimited). */
  rlimit_kb: number | null;
  /** Worker keeps CAP_IPC_LOCK. */
  cap_ipc_lock: boolean;
  /**
   * The worker and helpers run as uid 0 (scenario "uid": "root"): root's
   * per-user record is static (root_user) and shared with every root process,
   * so such scenarios run only in a guest (scenarioNeeds rootUid). Absent:
   * a fresh uid the runtime picks.
   */
  root?: true;
  /**
   * The page size (kB) the ops were compiled for when not 4 and they depend
   * on it ("L" ballasts, "bytes"/"data_bytes" sizes: compileAtPageSize);
   * absent: 4 kB, or sizes in pages whatever the page size.
   */
  page_kb?: number;
  ops: Op[];
}

/**
 * Split a page count into ring buffers a helper can map: each buffer costs
 * 2^k data pages + 1 header page (or 1 page for a header-only buffer).
 * Greedy from the largest, so the sum is exact for any n >= 0.
 */
export function ballastBuffers(pages: number): number[] {
  if (!Number.isInteger(pages) || pages < 0) throw new RangeError(`ballast pages must be a whole number >= 0, got ${pages}`);
  const out: number[] = [];
  let left = pages;
  while (left > 0) {
    if (left === 1) { out.push(0); break; }
    let data = 1;
    while (data * 2 + 1 <= left) data *= 2;
    out.push(data);
    left -= data + 1;
  }
  return out;
}

/** Pages a mapping of `data_pages` costs (the kernel's user_extra). */
export const mappingPages = (dataPages: number): number => dataPages + 1;

/**
 * user_lock_limit in native pages, as perf_mmap() computes it:
 * (perf_event_mlock_kb >> (PAGE_SHIFT - 10)) * num_online_cpus(), for pages
 * of `pageKb` kB (a power of two, so the shift is a floor division).
 */
export const userLockLimit = (mlockKb: number, cpus: number, pageKb: number = PAGE_KB): number => Math.floor(mlockKb / pageKb) * cpus;

/**
 * Serialise a compiled scenario to the reproducer's line protocol
 * (harness/PROTOCOL.md). `uid` is the fresh uid the runner assigned; a
 * `root` scenario runs as uid 0 whatever it is (the reproducer accepts that
 * only with --allow-uid-0, which the VM runtimes pass).
 */
export function toScript(s: CompiledScenario, uid: number): string {
  const lines = [
    `begin ${s.id} uid=${s.root ? 0 : uid} cpus=${s.cpus} mlock_kb=${s.mlock_kb} paranoid=${s.paranoid} ` +
      `rlimit_kb=${s.rlimit_kb === null ? 'inf' : s.rlimit_kb} cap_ipc_lock=${s.cap_ipc_lock ? 1 : 0}`,
  ];
  for (const op of s.ops) lines.push(opLine(op));
  lines.push('end');
  return lines.join('\n') + '\n';
}

export function opLine(op: Op): string {
  switch (op.op) {
    case 'sysctl': return `sysctl ${op.name === 'perf_event_mlock_kb' ? 'mlock_kb' : 'paranoid'} ${op.value}`;
    case 'rlimit': return `rlimit ${op.memlock_kb === null ? 'inf' : op.memlock_kb}`;
    case 'ballast': return op.via === 'perf' ? `ballast perf ${op.buffers.join(' ')}` : `ballast ${op.via} ${op.pages}`;
    case 'uring': return `uring ${op.pages}`;
    case 'unmap_part': return `unmap_part ${op.buf}`;
    case 'map_output': return `map_output ${op.buf} ${op.to}`;
    case 'exit': return op.last ? 'exit last' : 'exit';
    case 'map': return `map ${op.buf} ${op.cpu} ${op.data_pages}`;
    case 'aux_ring': return `aux_ring ${op.buf} ${op.cpu} ${op.data_pages}`;
    case 'aux_map': return `aux_map ${op.buf} ${op.pages}`;
    case 'aux_unmap': return `aux_unmap ${op.buf}`;
    case 'handoff': return `handoff ${op.buf} ${op.cpu} ${op.data_pages}`;
    case 'kill_helper': return `kill_helper ${op.helper}`;
    case 'cap_ipc_lock': return `cap_ipc_lock ${op.value ? 1 : 0}`;
    case 'remap': return `remap ${op.buf}`;
    case 'unmap': return `unmap ${op.buf}`;
    case 'probe': return 'probe';
    case 'cpu': return `cpu ${op.cpu} ${op.online ? 1 : 0}`;
    case 'hang': return `hang ${op.seconds}`;
    case 'sysrq': return `sysrq ${op.key}`;
  }
}
