// The simulator's vocabulary: what it predicts per op (ExpectedOp, MapCheck),
// the options a kernel's version sets (SimulateOptions), and the error for a
// script the reproducer could not run. Pure types and constants.

/** What the kernel's check in perf_mmap() computed for a new ring buffer (pages). */
export interface MapCheck {
  /** user_locked as the kernel computed it (V3/V4: clamped to L first). */
  userLocked: number;
  /** pages to be charged to mm->pinned_vm */
  extra: number;
  /** mm->pinned_vm before the call */
  pinnedBefore: number;
  /** locked = pinnedBefore + extra, compared against lockLimit */
  locked: number;
  /** RLIMIT_MEMLOCK >> PAGE_SHIFT (2^52 - 1 when unlimited) */
  lockLimit: number;
  /** (perf_event_mlock_kb >> (PAGE_SHIFT - 10)) * num_online_cpus() at the time of the call */
  userLockLimit: number;
}

/** The errors the model predicts: EPERM (perf_mmap), ENOMEM (io_uring), EINVAL (unmap_part), EBUSY (map_output). */
export type ExpectedErrno = '' | 'EPERM' | 'ENOMEM' | 'EINVAL' | 'EBUSY';

export interface ExpectedOp {
  ok: boolean;
  errno: ExpectedErrno;
  /** the worker's mm->pinned_vm (VmPin kB / page kB) in native pages after the op */
  pinned: number;
  /** perf's per-user counter (U) in pages after the op */
  user: number;
  /** probe: pages that fit under the allowance before one spills, L - U (capped at PROBE_MAX_PAGES) */
  headroom?: number;
  /** perf ballast and handoff: the helper's pinned pages (not predicted for io_uring ballast) */
  helperPinned?: number;
  /** map (and a remap that is in fact the first mapping): the kernel's check */
  check?: MapCheck;
}

export interface SimulateOptions {
  /**
   * Pages io_uring charges to user->locked_vm per `ballast io_uring` op besides
   * the registered buffers themselves (its SQ/CQ rings, on some kernels). Only
   * matters for counter 'shared'. Default 0. Set (to 0) by the version from
   * 7.2.11 and v7.3 ("io_uring: do not charge the SQ/CQ rings to
   * RLIMIT_MEMLOCK"); elsewhere left unset and src/diff's calibrate() measures it.
   */
  ioUringExtraPages?: number;
  /**
   * Whether io_uring's buffer registration (the worker's `uring` op) charges
   * the registering process's mm->pinned_vm, besides user->locked_vm:
   * since v5.9 ("io_uring: report pinned memory usage", 309758254ea6), with or
   * without CAP_IPC_LOCK; before, user->locked_vm only (measured on real
   * 5.3.1, 5.4.0, 5.5-rc5, 5.6.4). Default true.
   */
  uringChargesPinned?: boolean;
  /**
   * Whether `ballast bpf` charges user->locked_vm: true before v5.11 (which
   * moved BPF to memcg accounting), false since. A property of the kernel, not
   * of the logic: see simOptionsForVersion. Default false (this host's 6.x).
   * Only matters for counter 'shared'.
   */
  bpfChargesUser?: boolean;
  /**
   * The kernel's PAGE_SIZE in kB (4, 16 or 64; default 4). Every quantity of
   * the model is in these native pages: the header page, user_extra,
   * RLIMIT_MEMLOCK >> PAGE_SHIFT, VmPin. The guest reports it in `hello`.
   */
  pageKb?: number;
  /**
   * munmap of part of a perf mapping fails with EINVAL ("perf/core: Prevent
   * VMA split of buffer mappings": v6.17; stables 6.16.1, 6.12.42, 6.1.148).
   * Default false.
   */
  partialMunmapEinval?: boolean;
  /**
   * mmap of an event whose output was redirected (PERF_EVENT_IOC_SET_OUTPUT)
   * fails with EBUSY: v6.19 and 6.18.8. Default false (it shares the target's
   * ring buffer; V4 charges the per-user counter again, as for a re-mmap).
   */
  mapOutputEbusy?: boolean;
  /**
   * memfd_secret pages are charged to user->locked_vm ("mm/secretmem:
   * properly account locked pages": v7.2, stables 6.1.191, 6.12.113). Default false.
   */
  secretmemChargesUser?: boolean;
  /**
   * The helpers' RLIMIT_MEMLOCK in kB (null = unlimited) that io_uring and
   * BPF ballasts are checked against. Default HELPER_RLIMIT_MEMLOCK_KB (8192),
   * what the reproducer sets in every runtime; other values only for
   * what-if models (e.g. the incident's 128 MiB of other root charges).
   */
  helperRlimitKb?: number | null;
}

/**
 * The reproducer's probe stops without spilling once it holds this many
 * pages (2^18 = 1 GiB of 4 KiB pages: a perf_event_mlock_kb of 512 MiB on 2
 * CPUs, or 256 CPUs at 4 MiB each). It holds ring buffers of 1 + 2^k pages
 * (harness/PROTOCOL.md), so the headroom is exact to the page below the cap.
 */
export const PROBE_MAX_PAGES = 2 ** 18;

/** Thrown for a script the reproducer could not run (map of an open name, unmap of an unknown one, ...). */
export class ScriptError extends Error {
  constructor(
    readonly i: number,
    message: string,
  ) {
    super(`op ${i}: ${message}`);
    this.name = 'ScriptError';
  }
}
