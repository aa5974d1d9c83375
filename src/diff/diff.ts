// Compare what the reproducer measured for one cell (kernel x scenario) with
// what the simulator expects. Pure: no I/O.

import type { Op, OpName } from '../scenario/ops.ts';
import { PAGE_KB } from '../scenario/ops.ts';
import type { ExpectedOp } from '../model/simulate.ts';

/** One `{"ev":"op",...}` line of the reproducer (harness/PROTOCOL.md), as the runner parsed it. */
export interface MeasuredOp {
  i: number;
  op: string;
  ok: boolean;
  errno: string;
  vmpin_kb: number;
  vmlck_kb: number;
  headroom?: number;
  spilled?: boolean;
  mapped?: number;
  helper_vmpin_kb?: number;
}

export type Verdict = 'MATCH' | 'MISMATCH' | 'ERROR';

/** Names of the compared fields; values are in native pages (vmpin_kb / page kB) where they are sizes. */
export type DiffField = 'ok' | 'errno' | 'pinned' | 'headroom' | 'helperPinned';

export interface Divergence {
  /** 0-based op index within the scenario */
  i: number;
  op: string;
  field: DiffField;
  measured: unknown;
  expected: unknown;
}

export interface CellDiff {
  verdict: Verdict;
  /** the first op (in script order) where a compared field differs */
  firstDivergence?: Divergence;
  /**
   * 1-based call number among the scenario's `map` ops (as in the incident
   * table: call 5 = the fifth `map`) of the first `map` that failed with
   * EPERM; null if none did. remap and probe failures are not counted.
   */
  firstEpermMeasured: number | null;
  firstEpermExpected: number | null;
  /** worker pinned pages after each `map` op, in call order (measured: vmpin_kb / page kB) */
  pinnedSeriesMeasured: number[];
  pinnedSeriesExpected: number[];
  /** ERROR only: what is wrong with the measured stream (which op index was last seen) */
  missing?: string;
}

/** Ops run by the controller, not the worker: only `ok` is compared for them. */
export const CONTROLLER_OPS: ReadonlySet<OpName> = new Set<OpName>(['sysctl', 'cpu', 'sysrq']);

/**
 * Compare a cell op by op.
 *
 * Per op, in this order: `ok`, then `errno`, then the worker's pinned pages
 * (vmpin_kb / pageKb vs expected.pinned), then for `probe` the headroom, then for
 * `ballast` the helper's pinned pages when both sides have it (the model does
 * not predict it for io_uring ballast). Controller ops (sysctl, cpu, sysrq)
 * compare `ok` only. The first differing field of the first differing op is
 * reported.
 *
 * The measured stream is indexed by `i`. If it does not hold exactly ops
 * 0..n-1 (truncated: worker killed, op timeout, reproducer died; or a
 * duplicate, out-of-range index or an op name that is not the script's), the
 * verdict is ERROR and `missing` says which op index was last seen; the
 * comparison still runs over the contiguous measured prefix so
 * `firstDivergence` and the series describe what was seen.
 */
export function diffCell(ops: readonly Op[], measured: readonly MeasuredOp[], expected: readonly ExpectedOp[], pageKb: number = PAGE_KB): CellDiff {
  const n = ops.length;
  if (expected.length !== n) throw new RangeError(`expected has ${expected.length} entries for ${n} ops`);

  // Index the measured stream by i and find the contiguous prefix 0..seen-1.
  const byI: (MeasuredOp | undefined)[] = new Array(n);
  let problem: string | undefined;
  for (const m of measured) {
    if (!Number.isInteger(m.i) || m.i < 0 || m.i >= n) {
      problem ??= `measured op i=${m.i} (${m.op}) is outside the script's ${n} ops`;
      continue;
    }
    if (byI[m.i] !== undefined) {
      problem ??= `measured op i=${m.i} (${m.op}) appears twice`;
      continue;
    }
    byI[m.i] = m;
  }
  let seen = 0;
  while (seen < n && byI[seen] !== undefined) seen++;
  for (let i = 0; i < seen; i++) {
    if (byI[i]!.op !== ops[i]!.op) {
      problem ??= `measured op i=${i} is '${byI[i]!.op}' but the script's op ${i} is '${ops[i]!.op}'`;
      seen = i;
      break;
    }
  }
  if (seen < n) {
    const last = seen === 0 ? 'no op was measured' : `last measured op is i=${seen - 1} (${ops[seen - 1]!.op})`;
    const gap = `ops ${seen}..${n - 1} of ${n} missing (first missing: i=${seen} ${ops[seen]!.op})`;
    problem = problem === undefined ? `${last}; ${gap}` : `${problem}; ${last}; ${gap}`;
  }

  const pinnedSeriesMeasured: number[] = [];
  const pinnedSeriesExpected: number[] = [];
  let firstEpermMeasured: number | null = null;
  let firstEpermExpected: number | null = null;
  let firstDivergence: Divergence | undefined;

  let call = 0;
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    const e = expected[i]!;
    const m = i < seen ? byI[i] : undefined;
    if (op.op === 'map') {
      call++;
      pinnedSeriesExpected.push(e.pinned);
      if (firstEpermExpected === null && e.errno === 'EPERM') firstEpermExpected = call;
      if (m !== undefined) {
        pinnedSeriesMeasured.push(m.vmpin_kb / pageKb);
        if (firstEpermMeasured === null && m.errno === 'EPERM') firstEpermMeasured = call;
      }
    }
    if (m === undefined || firstDivergence !== undefined) continue;
    firstDivergence = compareOp(i, op, m, e, pageKb);
  }

  const out: CellDiff = {
    verdict: problem !== undefined ? 'ERROR' : firstDivergence !== undefined ? 'MISMATCH' : 'MATCH',
    firstEpermMeasured,
    firstEpermExpected,
    pinnedSeriesMeasured,
    pinnedSeriesExpected,
  };
  if (firstDivergence !== undefined) out.firstDivergence = firstDivergence;
  if (problem !== undefined) out.missing = problem;
  return out;
}

function compareOp(i: number, op: Op, m: MeasuredOp, e: ExpectedOp, pageKb: number): Divergence | undefined {
  const d = (field: DiffField, measured: unknown, expected: unknown): Divergence => ({ i, op: op.op, field, measured, expected });
  if (m.ok !== e.ok) return d('ok', m.ok, e.ok);
  if (CONTROLLER_OPS.has(op.op)) return undefined;
  if (m.errno !== e.errno) return d('errno', m.errno, e.errno);
  const pinned = m.vmpin_kb / pageKb;
  if (pinned !== e.pinned) return d('pinned', pinned, e.pinned);
  if (op.op === 'probe' && m.headroom !== e.headroom) return d('headroom', m.headroom, e.headroom);
  if ((op.op === 'ballast' || op.op === 'handoff') && m.helper_vmpin_kb !== undefined && e.helperPinned !== undefined) {
    const hp = m.helper_vmpin_kb / pageKb;
    if (hp !== e.helperPinned) return d('helperPinned', hp, e.helperPinned);
  }
  return undefined;
}
