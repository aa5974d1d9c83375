// The simulator's state as one op script runs (simulate.ts drives it, sim-ops.ts
// has one handler per op): the per-user counter U, the worker's pinned_vm P,
// the worker's perf buffers with their remembered charges, the helpers, and
// the live sysctls, CPUs, RLIMIT_MEMLOCK and CAP_IPC_LOCK. The operations here
// are the kernel's shared steps: perf_mmap()'s split, check and charge, and
// what an unmap or a process's death gives back. Pure: no I/O.

import { type CompiledScenario, userLockLimit } from '../scenario/ops.ts';
import { AUX_UNMAP, type AuxUnmapRule, auxGiveBack, DEFAULT_PAGE_KB, HELPER_RLIMIT_MEMLOCK_KB, type Logic, type Split, type SplitFn, SPLITS, checkPageKb, rlimitPages } from './accounting.ts';
import type { ExpectedOp, MapCheck, SimulateOptions } from './sim-types.ts';

/**
 * One perf event fd of the worker. A `map` owns a ring buffer (rb === itself)
 * and remembers its charges; a `map_output` event shares another's (rb).
 */
export interface Buf {
  /** pages per mapping (data pages + 1) */
  ue: number;
  /** ring buffer owners: live mappings of the ring buffer through any fd; 0 = never mapped */
  mapCount: number;
  /** charges remembered by the ring buffer, given back when its last mapping goes */
  userCharge: number;
  extra: number;
  /** the ring buffer this fd's mappings belong to */
  rb: Buf;
  /** mappings made through this fd */
  own: number;
  /** AUX area (aux_ring buffers only): live mappings, pages (aux_nr_pages), pages charged to P (aux_mmap_locked) */
  auxCount: number;
  auxNr: number;
  auxLocked: number;
}

/**
 * A helper process of the uid (ballast or handoff), in start order: what its
 * death gives back. Perf rings it maps are ring buffers of its own (given back
 * when their last mapping goes: the helper's, or a handed-off fd's in the
 * worker); other chargers' pages go back to user->locked_vm.
 */
export interface Helper {
  alive: boolean;
  rings: Buf[];
  /** pages charged through user->locked_vm by io_uring / BPF / memfd_secret */
  locked: number;
}

/** What the logic and the kernel's options fix for the whole run (read-only while the script runs). */
export interface SimConfig {
  split: SplitFn;
  /** V4: a re-mmap (or a shared ring's mapping, a second AUX mapping) charges U again, unchecked */
  v4: boolean;
  auxRule: AuxUnmapRule;
  /** counter 'shared': perf's per-user counter is user->locked_vm */
  shared: boolean;
  ioUringExtra: number;
  bpfCharges: boolean;
  secretCharges: boolean;
  partialEinval: boolean;
  outputEbusy: boolean;
  uringPins: boolean;
  pageKb: number;
  /** the helpers' RLIMIT_MEMLOCK in pages: what io_uring and BPF (before 5.11) check their charges against */
  helperR: number;
}

/**
 * The run's fixed settings from a logic and the options; throws RangeError
 * for an unknown accounting or counter, a negative or fractional
 * ioUringExtraPages, or a page size other than 4, 16 or 64 kB.
 */
export function simConfig(logic: Logic, opts?: SimulateOptions): SimConfig {
  const split = SPLITS[logic.accounting];
  if (split === undefined) throw new RangeError(`unknown accounting ${String(logic.accounting)}`);
  if (logic.counter !== 'shared' && logic.counter !== 'perf') throw new RangeError(`unknown counter ${String(logic.counter)}`);
  const ioUringExtra = opts?.ioUringExtraPages ?? 0;
  if (!Number.isInteger(ioUringExtra) || ioUringExtra < 0) throw new RangeError(`ioUringExtraPages must be a whole number >= 0, got ${ioUringExtra}`);
  const pageKb = checkPageKb(opts?.pageKb ?? DEFAULT_PAGE_KB);
  return {
    split,
    v4: logic.accounting === 'V4',
    auxRule: AUX_UNMAP[logic.accounting],
    shared: logic.counter === 'shared',
    ioUringExtra,
    bpfCharges: opts?.bpfChargesUser ?? false,
    secretCharges: opts?.secretmemChargesUser ?? false,
    partialEinval: opts?.partialMunmapEinval ?? false,
    outputEbusy: opts?.mapOutputEbusy ?? false,
    uringPins: opts?.uringChargesPinned ?? true,
    pageKb,
    helperR: rlimitPages(opts?.helperRlimitKb === undefined ? HELPER_RLIMIT_MEMLOCK_KB : opts.helperRlimitKb, pageKb),
  };
}

/**
 * The live state of one simulated run, in native pages. U: perf's per-user
 * counter (per uid: worker and helpers share it); P: the worker's
 * mm->pinned_vm; LV: user->locked_vm as other chargers (io_uring,
 * memfd_secret, BPF) see it on a 'perf' counter (on 'shared' it is U); R: the
 * worker's RLIMIT_MEMLOCK >> PAGE_SHIFT. L (user_lock_limit) is recomputed
 * on every map from the live perf_event_mlock_kb and online CPU count.
 */
export class SimState {
  cap: boolean;
  readonly helpers: Helper[] = [];
  mlockKb: number;
  paranoid: number;
  R: number;
  /** Online CPUs: 0..cpus-1 at start (the reproducer checks the count); `cpu` ops toggle ids. */
  readonly offline = new Set<number>();
  readonly extraOnline = new Set<number>();
  cpus: number;
  U = 0;
  P = 0;
  LV = 0;
  /** The worker's own io_uring registrations: given back when it exits. */
  uringUser = 0;
  uringPinned = 0;
  /** open buffer name -> its fd; insertion order == map order */
  readonly bufs = new Map<string, Buf>();
  /** owners whose ring buffer is gone, for reuse (the hot loop allocates little) */
  readonly pool: Buf[] = [];
  /** the last split computed (perf_mmap()'s user_locked, user_extra, extra) */
  readonly sp: Split = { userLocked: 0, extra: 0, userCharge: 0 };

  constructor(
    readonly s: CompiledScenario,
    readonly cfg: SimConfig,
  ) {
    this.cap = s.cap_ipc_lock;
    this.mlockKb = s.mlock_kb;
    this.paranoid = s.paranoid;
    this.R = rlimitPages(s.rlimit_kb, cfg.pageKb);
    this.cpus = s.cpus;
  }

  /** A successful op that changes no counter: the counters as they stand. */
  ok(): ExpectedOp {
    return { ok: true, errno: '', pinned: this.P, user: this.U };
  }

  /** A refused op: the counters as they stand. */
  refused(errno: 'EPERM' | 'ENOMEM' | 'EINVAL' | 'EBUSY'): ExpectedOp {
    return { ok: false, errno, pinned: this.P, user: this.U };
  }

  /** RLIMIT_MEMLOCK in kB (null = unlimited) >> PAGE_SHIFT: pages (2^52 - 1 when unlimited). */
  rlimitPages(kb: number | null): number {
    return rlimitPages(kb, this.cfg.pageKb);
  }

  /** user_lock_limit = (perf_event_mlock_kb >> (PAGE_SHIFT - 10)) * num_online_cpus(), pages. */
  userLockLimit(): number {
    return userLockLimit(this.mlockKb, this.cpus, this.cfg.pageKb);
  }

  /** user->locked_vm as io_uring, BPF and memfd_secret see it. */
  lockedVm(): number {
    return this.cfg.shared ? this.U : this.LV;
  }

  /** Charge (or give back, negative) `pages` to user->locked_vm: U itself on a shared counter, else LV. */
  chargeLocked(pages: number): void {
    if (this.cfg.shared) this.U += pages;
    else this.LV += pages;
  }

  /** The last mapping of b's AUX area goes: give back by the logic's AUX unmap rule. */
  releaseAux(b: Buf): void {
    if (b.auxCount === 0) return;
    b.auxCount = 0;
    const g = auxGiveBack(this.cfg.auxRule, b.auxNr, b.auxLocked);
    this.U -= g.user;
    this.P -= g.pinned;
  }

  /** The helper's ring `rb` loses its helper mapping; the last mapping gives the charges back (to U; P of the mm that unmaps last). */
  releaseHelperRing(rb: Buf): void {
    rb.mapCount--;
    if (rb.mapCount === 0) this.U -= rb.userCharge;
  }

  /** A helper dies: its rings lose their mapping, its other charges leave user->locked_vm. */
  killHelper(h: Helper): void {
    h.alive = false;
    for (const rb of h.rings) this.releaseHelperRing(rb);
    this.chargeLocked(-h.locked);
  }

  /** The worker's fd `b` is unmapped (or the worker dies): its mappings go; the ring buffer's last gives its charges back. */
  releaseBuf(b: Buf): void {
    this.releaseAux(b);
    const rb = b.rb;
    if (b.own > 0) {
      rb.mapCount -= b.own;
      b.own = 0;
      if (rb.mapCount === 0) {
        this.U -= rb.userCharge;
        this.P -= rb.extra;
      }
    }
    // an owner whose ring buffer another fd still maps stays referenced: not reused
    if (rb === b && b.mapCount === 0) this.pool.push(b);
  }

  /** A fresh fd owning a not yet mapped ring buffer of `ue` pages per mapping. */
  newBuf(ue: number): Buf {
    const b = this.pool.pop() ?? ({ ue: 0, mapCount: 0, userCharge: 0, extra: 0, own: 0 } as unknown as Buf);
    b.ue = ue;
    b.mapCount = 0;
    b.userCharge = 0;
    b.extra = 0;
    b.rb = b;
    b.own = 0;
    b.auxCount = 0;
    b.auxNr = 0;
    b.auxLocked = 0;
    return b;
  }

  /** A new ring buffer for `b`: split, check, charge. */
  firstMapping(b: Buf): ExpectedOp {
    const r = this.charge(b.ue);
    if (!r.ok) return r;
    b.userCharge = this.sp.userCharge;
    b.extra = this.sp.extra;
    b.mapCount = 1;
    b.own = 1;
    return r;
  }

  /** perf_mmap()'s split, check and charge of `ue` new pages (a ring buffer's or an AUX area's); `sp` keeps the split. */
  charge(ue: number): ExpectedOp {
    const L = this.userLockLimit();
    const sp = this.sp;
    this.cfg.split(this.U, ue, L, sp);
    const P = this.P;
    const locked = P + sp.extra;
    const check: MapCheck = { userLocked: sp.userLocked, extra: sp.extra, pinnedBefore: P, locked, lockLimit: this.R, userLockLimit: L };
    if (locked > this.R && this.paranoid > -1 && !this.cap) {
      return { ok: false, errno: 'EPERM', pinned: P, user: this.U, check };
    }
    this.U += sp.userCharge;
    this.P = locked;
    return { ok: true, errno: '', pinned: this.P, user: this.U, check };
  }
}
