// Calibration of the model inputs the simulator cannot know, and the diff of
// one cell under one logic after calibration (what the classifier in
// evidence.ts runs per candidate). Pure.

import type { CompiledScenario } from '../scenario/ops.ts';
import { type Counter, type Expectation, type Logic, candidateLogics } from '../model/accounting.ts';
import { type ExpectedOp, type SimulateOptions, simulate } from '../model/simulate.ts';
import { type CellDiff, type MeasuredOp, diffCell } from './diff.ts';

/** io_uring extra pages accepted by calibrate() (per `ballast io_uring` op). */
export const IO_URING_EXTRA_MAX = 64;

export interface Calibration {
  /** the prediction to diff against (calibrated when `calibrated` is set) */
  expected: ExpectedOp[];
  /** the model inputs that were measured rather than assumed; absent = defaults (0) */
  calibrated?: { ioUringExtraPages: number };
  /** why calibration was attempted but not applied */
  note?: string;
}

/**
 * How many pages io_uring charges to user->locked_vm besides the registered
 * buffers (its rings, on some kernels) is not something the model can know.
 * When the logic's counter is 'shared' and the scenario has `ballast io_uring`
 * (or worker `uring`) ops followed by a `probe`, infer it from the first probe
 * after the first of them:
 *
 *   x = (expectedHeadroom(with 0) - measuredHeadroom) / (io_uring ballasts before that probe)
 *
 * and accept it when x is a whole number in 0..IO_URING_EXTRA_MAX; then
 * re-simulate with it. Not attempted when `base` already sets
 * ioUringExtraPages: the version decided it (simOptionsForVersion: 0 from
 * 7.2.11 and v7.3, "io_uring: do not charge the SQ/CQ rings to RLIMIT_MEMLOCK"). Otherwise keep 0 (the cell will mismatch honestly) and
 * say why in `note`. The probe must see U below L for this to be informative:
 * a probe at headroom 0 gives x = 0.
 */
export function calibrate(s: CompiledScenario, logic: Logic, measured: readonly MeasuredOp[], base?: SimulateOptions): Calibration {
  const expected = simulate(s, logic, base);
  // The kernel's version already says how many (0 from 7.2.11 / v7.3: simOptionsForVersion): nothing to infer.
  if (logic.counter !== 'shared' || base?.ioUringExtraPages !== undefined) return { expected };
  const ops = s.ops;
  let ballasts = 0;
  let probe = -1;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if ((op.op === 'ballast' && op.via === 'io_uring') || op.op === 'uring') ballasts++;
    else if (op.op === 'probe' && ballasts > 0) {
      probe = i;
      break;
    }
  }
  if (probe < 0) return { expected };
  const m = measured.find((x) => x.i === probe);
  if (m === undefined || m.op !== 'probe' || typeof m.headroom !== 'number') {
    return { expected, note: `no measured headroom for probe op ${probe}: io_uring extra pages not calibrated` };
  }
  const diff = expected[probe]!.headroom! - m.headroom;
  const x = diff / ballasts;
  if (!Number.isInteger(x) || x < 0 || x > IO_URING_EXTRA_MAX) {
    return {
      expected,
      note:
        `probe op ${probe}: expected headroom ${expected[probe]!.headroom} with 0 io_uring extra pages, measured ${m.headroom}; ` +
        `inferred ${x} extra pages per io_uring ballast (x${ballasts}) is not a whole number in 0..${IO_URING_EXTRA_MAX}: not applied`,
    };
  }
  if (x === 0) return { expected, calibrated: { ioUringExtraPages: 0 } };
  const opts: SimulateOptions = { ...base, ioUringExtraPages: x };
  return { expected: simulate(s, logic, opts), calibrated: { ioUringExtraPages: x } };
}

export interface Cell {
  scenario: CompiledScenario;
  measured: readonly MeasuredOp[];
}

export interface CalibratedDiff extends CellDiff {
  /** the expected ops the diff used (after calibration) */
  expected: ExpectedOp[];
  calibrated?: { ioUringExtraPages: number };
  calibrationNote?: string;
}

/** calibrate + diffCell for one cell under one logic. */
export function diffCalibrated(cell: Cell, logic: Logic, opts?: SimulateOptions): CalibratedDiff {
  const c = calibrate(cell.scenario, logic, cell.measured, opts);
  const d: CalibratedDiff = { ...diffCell(cell.scenario.ops, cell.measured, c.expected, opts?.pageKb), expected: c.expected };
  if (c.calibrated !== undefined) d.calibrated = c.calibrated;
  if (c.note !== undefined) d.calibrationNote = c.note;
  return d;
}

export interface ExpectedDiff extends CalibratedDiff {
  /** the logic whose prediction the verdict is against */
  logic: Logic;
  /**
   * Only for an expectation whose counter is 'unknown': what the cell says
   * about it, e.g. "counter: unknown, measured perf" (only the perf
   * prediction MATCHes), "counter: unknown, not told apart by this cell",
   * "counter: unknown, neither prediction fits".
   */
  counterNote?: string;
}

/**
 * diffCalibrated against an expectation. A known counter is one diff. An
 * unknown counter carries both predictions (shared, then perf): the verdict
 * is MATCH when either matches (the one that matched is `logic`); when both
 * match, or neither, `logic` is the shared one, or the one whose first
 * divergence comes later. The classifier, over all of a kernel's cells,
 * decides the counter; one cell never turns an unknown into a MISMATCH of
 * its own making.
 */
export function diffExpected(cell: Cell, e: Expectation, opts?: SimulateOptions): ExpectedDiff {
  const cands = candidateLogics(e);
  const diffs = cands.map((logic) => ({ logic, d: diffCalibrated(cell, logic, opts) }));
  if (diffs.length === 1) return { ...diffs[0]!.d, logic: diffs[0]!.logic };
  const matching = diffs.filter((x) => x.d.verdict === 'MATCH');
  const at = (x: { d: CalibratedDiff }): number => x.d.firstDivergence?.i ?? Infinity;
  const best = matching[0] ?? diffs.reduce((a, b) => (at(b) > at(a) ? b : a));
  const counters = (xs: typeof diffs): Counter[] => xs.map((x) => x.logic.counter);
  const note =
    matching.length === 1 ? `counter: unknown, measured ${counters(matching)[0]}`
      : matching.length > 1 ? 'counter: unknown, not told apart by this cell'
        : 'counter: unknown, neither prediction fits';
  return { ...best.d, logic: best.logic, counterNote: note };
}
