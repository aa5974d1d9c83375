// The perf_mmap() locked-memory split, one pure function per accounting logic
// (docs/kernel-history.md). All quantities are native pages of the kernel
// (PAGE_SIZE: 4 KiB on x86_64, 16 or 64 KiB on some arm64/ppc64 builds).
//
//   U  = the per-user counter perf charges (user->locked_vm or user->perf_mlock)
//   ue = user_extra, the pages a new mapping asks for (data pages + 1 header page)
//   L  = user_lock_limit = (perf_event_mlock_kb >> (PAGE_SHIFT - 10)) * num_online_cpus()
//
// Each function returns what the kernel computes for a *new* ring buffer:
//   userLocked  the `user_locked` value the kernel compared against L
//   extra       pages charged to mm->pinned_vm (checked against RLIMIT_MEMLOCK)
//   userCharge  ue' = pages charged to U (negative under V2 when U > L)
// On success the kernel does U += userCharge, P += extra, and remembers both in
// the ring buffer so the last munmap gives exactly these back.

/**
 * V1a and V1b are V1's arithmetic with a different AUX unmap (auxUnmapRule):
 * they differ from V1 only once an AUX area is unmapped.
 */
export type Accounting = 'V0' | 'V1' | 'V1a' | 'V1b' | 'V2' | 'V3' | 'V4';

/**
 * Which per-user counter perf charges.
 * - `shared`: user->locked_vm, also charged by io_uring registered buffers,
 *   memfd_secret (stable 6.1.191+, 6.12.113+), BPF before v5.11,
 *   MSG_ZEROCOPY, AF_XDP.
 * - `perf`:   `user->perf_mlock`, perf's own per-user counter that no other
 *   charger touches ("perf: Track the perf mlock gift separately", upstream
 *   stable 6.1.191 and 6.12.115; not in mainline up to 7.3-rc7).
 */
export type Counter = 'shared' | 'perf';

export interface Logic {
  accounting: Accounting;
  counter: Counter;
}

/**
 * What a kernel is expected to implement: a logic, except that the counter
 * may be `unknown` where nothing is known about the counter split for the
 * kernel's stable line (e.g. 6.6.y, 7.0.y). Such an expectation carries both
 * predictions; the diff takes whichever counter the measurement fits
 * (src/diff diffExpected) instead of guessing a MISMATCH.
 */
export interface Expectation {
  accounting: Accounting;
  counter: Counter | 'unknown';
}

/** "V4/unknown" for an open counter, else as logicLabel. */
export const expectationLabel = (e: Expectation): string => logicLabel(e);

/** The concrete logics an expectation allows: one, or both counters (shared first) when the counter is unknown. */
export const candidateLogics = (e: Expectation): Logic[] =>
  e.counter === 'unknown' ? COUNTERS.map((counter): Logic => ({ accounting: e.accounting, counter })) : [{ accounting: e.accounting, counter: e.counter }];

export const ACCOUNTINGS: readonly Accounting[] = ['V0', 'V1', 'V1a', 'V1b', 'V2', 'V3', 'V4'];
export const COUNTERS: readonly Counter[] = ['shared', 'perf'];

/** All 14 logics, accounting-major: V0/shared, V0/perf, V1/shared, ... */
export const ALL_LOGICS: readonly Logic[] = ACCOUNTINGS.flatMap((accounting) =>
  COUNTERS.map((counter): Logic => ({ accounting, counter })),
);

/** "V3/perf"; for an expectation with an open counter "V4/unknown". */
export const logicLabel = (l: Logic | Expectation): string => `${l.accounting}/${l.counter}`;

/** Inverse of logicLabel; throws on anything else. */
export function parseLogic(label: string): Logic {
  const m = /^(V[0-4]|V1[ab])\/(shared|perf)$/.exec(label);
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
 * U below zero (V1's AUX unmap can give back more than it charged) is read
 * into an unsigned long by perf_mmap(): U >= L holds, and U + ue <= L only
 * once the sum is back at or above zero.
 */
export const splitV1: SplitFn = (U, ue, L, out) => {
  const userLocked = U + ue;
  if (userLocked >= 0 && userLocked <= L) return fill(out, userLocked, 0, ue);
  if (U >= L || U < 0) return fill(out, userLocked, ue, 0);
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
 * `userLocked` is the clamped value, as the kernel computes it. A U below
 * zero (only V1's AUX unmap makes one) is clamped too: the kernel reads it
 * into an unsigned long.
 */
export const splitV3: SplitFn = (U, ue, L, out) => {
  // U below zero reads as a huge unsigned long: clamped to L like any U above it.
  const userLocked = (U > L || U < 0 ? L : U) + ue;
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
  V1a: splitV1,
  V1b: splitV1,
  V2: splitV2,
  V3: splitV3,
  V4: splitV4,
};

/**
 * What perf_mmap_close() gives back when an AUX area's last mapping goes
 * (aux_nr_pages = N pages mapped, aux_mmap_locked = X of them charged to
 * mm->pinned_vm, so N - X were charged to U):
 * - `all` (V0, V1 before 5e6c3c7b1ec2): U -= N, P -= X (U loses X too many
 *   pages when the area was partly or wholly pinned);
 * - `either` (V1a, 5e6c3c7b1ec2, v5.4-rc5 / 5.3.9): X == 0: U -= N;
 *   else P -= X only (U keeps N - X: leaked);
 * - `split` (V1b, 36b3db03b474, v5.5-rc1 / 5.4.7, and every later logic):
 *   U -= N - X, P -= X.
 */
export type AuxUnmapRule = 'all' | 'either' | 'split';

export const AUX_UNMAP: Readonly<Record<Accounting, AuxUnmapRule>> = {
  V0: 'all',
  V1: 'all',
  V1a: 'either',
  V1b: 'split',
  V2: 'split',
  V3: 'split',
  V4: 'split',
};

/** Pages given back to U and to P when an AUX area of `nr` pages, `locked` of them pinned, is unmapped for the last time. Pure. */
export function auxGiveBack(rule: AuxUnmapRule, nr: number, locked: number): { user: number; pinned: number } {
  if (rule === 'all') return { user: nr, pinned: locked };
  if (rule === 'either') return locked === 0 ? { user: nr, pinned: 0 } : { user: 0, pinned: locked };
  return { user: nr - locked, pinned: locked };
}

/** RLIM_INFINITY >> PAGE_SHIFT on 64-bit: what the kernel's lock_limit is when unlimited. */
export const RLIM_INFINITY_PAGES = 2 ** 52 - 1;

// The helpers' RLIMIT_MEMLOCK and the default page size are facts of the op
// script the reproducer runs (src/scenario/ops.ts), re-exported for the model.
import { DEFAULT_PAGE_KB, HELPER_RLIMIT_MEMLOCK_KB } from '../scenario/ops.ts';
export { DEFAULT_PAGE_KB, HELPER_RLIMIT_MEMLOCK_KB };

/** Page sizes (kB) the model accepts: 4K, 16K, 64K pages. */
export const PAGE_KBS: readonly number[] = [4, 16, 64];

/** Throws RangeError unless `pageKb` is one of PAGE_KBS. */
export function checkPageKb(pageKb: number): number {
  if (!PAGE_KBS.includes(pageKb)) throw new RangeError(`page size must be one of ${PAGE_KBS.join(', ')} kB, got ${pageKb}`);
  return pageKb;
}

/**
 * RLIMIT_MEMLOCK in kB (null = unlimited) to the kernel's lock_limit in
 * native pages (bytes >> PAGE_SHIFT), for pages of `pageKb` kB.
 */
export const rlimitPages = (kb: number | null, pageKb: number = DEFAULT_PAGE_KB): number =>
  kb === null ? RLIM_INFINITY_PAGES : Math.floor(kb / pageKb);

/**
 * The default perf_event_mlock_kb: 512 + PAGE_SIZE/1024 (kernel/events/core.c,
 * `sysctl_perf_event_mlock = 512 + (PAGE_SIZE / 1024)`): 516 on 4K pages, 528
 * on 16K, 576 on 64K, i.e. 129, 33 and 9 pages per CPU.
 */
export const defaultMlockKb = (pageKb: number = DEFAULT_PAGE_KB): number => 512 + pageKb;
