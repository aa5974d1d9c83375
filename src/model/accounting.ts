// The perf_mmap() locked-memory split, one pure function per accounting logic
// (shared/kernel-history.md). All quantities are 4 KiB pages.
//
//   U  = the per-user counter perf charges (user->locked_vm or user->perf_mlock)
//   ue = user_extra, the pages a new mapping asks for (data pages + 1 header page)
//   L  = user_lock_limit = (perf_event_mlock_kb >> 2) * num_online_cpus()
//
// Each function returns what the kernel computes for a *new* ring buffer:
//   userLocked  the `user_locked` value the kernel compared against L
//   extra       pages charged to mm->pinned_vm (checked against RLIMIT_MEMLOCK)
//   userCharge  ue' = pages charged to U (negative under V2 when U > L)
// On success the kernel does U += userCharge, P += extra, and remembers both in
// the ring buffer so the last munmap gives exactly these back.

export type Accounting = 'V0' | 'V1' | 'V2' | 'V3' | 'V4';

/**
 * Which per-user counter perf charges.
 * - `shared`: user->locked_vm, also charged by io_uring registered buffers
 *   (and by BPF before v5.11, MSG_ZEROCOPY, AF_XDP).
 * - `perf`:   a per-user counter of perf's own (Debian 6.1 / 6.12
 *   `user->perf_mlock`) that io_uring does not touch.
 */
export type Counter = 'shared' | 'perf';

export interface Logic {
  accounting: Accounting;
  counter: Counter;
}

export const ACCOUNTINGS: readonly Accounting[] = ['V0', 'V1', 'V2', 'V3', 'V4'];
export const COUNTERS: readonly Counter[] = ['shared', 'perf'];

/** All 10 logics, accounting-major: V0/shared, V0/perf, V1/shared, ... */
export const ALL_LOGICS: readonly Logic[] = ACCOUNTINGS.flatMap((accounting) =>
  COUNTERS.map((counter): Logic => ({ accounting, counter })),
);

/** "V3/perf" */
export const logicLabel = (l: Logic): string => `${l.accounting}/${l.counter}`;

/** Inverse of logicLabel; throws on anything else. */
export function parseLogic(label: string): Logic {
  const m = /^(V[0-4])\/(shared|perf)$/.exec(label);
  if (!m) throw new RangeError(`not a logic label (expected e.g. "V3/perf"): ${JSON.stringify(label)}`);
  return { accounting: m[1] as Accounting, counter: m[2] as Counter };
}

export interface Split {
  userLocked: number;
  extra: number;
  userCharge: number;
}

/**
 * The split functions take an optional `out` object that they fill and
 * return, so the simulator's hot loop allocates nothing; called without it
 * they return a fresh object.
 */
export type SplitFn = (U: number, ue: number, L: number, out?: Split) => Split;

const fill = (out: Split | undefined, userLocked: number, extra: number, userCharge: number): Split => {
  if (out === undefined) return { userLocked, extra, userCharge };
  out.userLocked = userLocked;
  out.extra = extra;
  out.userCharge = userCharge;
  return out;
};

/** V0 (<= v5.3): extra = max(0, U + ue - L); all of ue is charged to U. */
export const splitV0: SplitFn = (U, ue, L, out) => {
  const userLocked = U + ue;
  return fill(out, userLocked, userLocked > L ? userLocked - L : 0, ue);
};

/**
 * V1 (d44248a41337, v5.4): three branches.
 *   U + ue <= L: all to U;  U >= L: all to P;  else: U up to L, the rest to P.
 */
export const splitV1: SplitFn = (U, ue, L, out) => {
  const userLocked = U + ue;
  if (userLocked <= L) return fill(out, userLocked, 0, ue);
  if (U >= L) return fill(out, userLocked, ue, 0);
  const extra = userLocked - L;
  return fill(out, userLocked, extra, ue - extra);
};

/**
 * V2 (c4b75479741c, v5.5): if U + ue > L: extra = U + ue - L, ue' = ue - extra.
 * With U already above L, extra > ue and ue' < 0: the whole overage lands in
 * P once and U is pulled back down to L.
 */
export const splitV2: SplitFn = (U, ue, L, out) => {
  const userLocked = U + ue;
  if (userLocked > L) {
    const extra = userLocked - L;
    return fill(out, userLocked, extra, ue - extra);
  }
  return fill(out, userLocked, 0, ue);
};

/**
 * V3 (003461559ef7, v5.6): clamp U to L first; u = min(U, L) + ue;
 * if u > L: extra = u - L, ue' = ue - extra. Always 0 <= extra <= ue.
 * `userLocked` is the clamped value, as the kernel computes it.
 */
export const splitV3: SplitFn = (U, ue, L, out) => {
  const userLocked = (U > L ? L : U) + ue;
  if (userLocked > L) {
    const extra = userLocked - L;
    return fill(out, userLocked, extra, ue - extra);
  }
  return fill(out, userLocked, 0, ue);
};

/**
 * V4 (v6.15 ..): the V3 arithmetic for a new ring buffer. What differs is a
 * mapping of an already-mapped buffer, handled by the simulator: it charges
 * ue to U with no limit check and no pinned change, and only the first
 * mapping's charge is given back when the last mapping goes away.
 */
export const splitV4: SplitFn = splitV3;

export const SPLITS: Readonly<Record<Accounting, SplitFn>> = {
  V0: splitV0,
  V1: splitV1,
  V2: splitV2,
  V3: splitV3,
  V4: splitV4,
};

/** RLIM_INFINITY >> PAGE_SHIFT on 64-bit: what the kernel's lock_limit is when unlimited. */
export const RLIM_INFINITY_PAGES = 2 ** 52 - 1;

/** RLIMIT_MEMLOCK in kB (null = unlimited) to the kernel's lock_limit in pages (bytes >> 12). */
export const rlimitPages = (kb: number | null): number => (kb === null ? RLIM_INFINITY_PAGES : Math.floor(kb / 4));
