// What a scenario can tell apart: simulate it under every logic and compare
// the results the way src/diff compares a measured cell with a prediction.
// Pure. Used by the tests of the built-in scenarios and by anyone choosing a
// discriminating scenario (bisect, docs).

import { ALL_LOGICS, type Logic, logicLabel } from '../model/accounting.ts';
import { type ExpectedOp, PROBE_MAX_PAGES, type SimulateOptions, simulate } from '../model/simulate.ts';
import { type MeasuredOp, diffCell } from './diff.ts';
import { type CompiledScenario, PAGE_KB } from '../scenario/ops.ts';

/**
 * The reproducer's op lines a kernel implementing exactly `expected` would
 * print (VmLck is not modelled: 0), VmPin in kB of `pageKb` kB pages (default:
 * the page size the scenario was compiled for).
 */
export function syntheticMeasured(s: CompiledScenario, expected: readonly ExpectedOp[], pageKb: number = s.page_kb ?? PAGE_KB): MeasuredOp[] {
  return s.ops.map((op, i): MeasuredOp => {
    const e = expected[i]!;
    const m: MeasuredOp = { i, op: op.op, ok: e.ok, errno: e.errno, vmpin_kb: e.pinned * pageKb, vmlck_kb: 0 };
    if (op.op === 'probe') {
      m.headroom = e.headroom!;
      m.spilled = e.ok && e.headroom! < PROBE_MAX_PAGES;
    } else if (op.op === 'ballast') {
      m.mapped = op.via === 'perf' ? op.buffers.length : op.pages;
      if (e.helperPinned !== undefined) m.helper_vmpin_kb = e.helperPinned * pageKb;
    }
    return m;
  });
}

/** Would a kernel implementing `a` diff as MATCH against the prediction of `b` on this scenario? */
export function indistinguishable(s: CompiledScenario, a: Logic, b: Logic, opts?: SimulateOptions): boolean {
  const kb = opts?.pageKb ?? PAGE_KB;
  return diffCell(s.ops, syntheticMeasured(s, simulate(s, a, opts), kb), simulate(s, b, opts), kb).verdict === 'MATCH';
}

/**
 * Partition `logics` (default all 14) into classes the scenario cannot tell
 * apart (same observable results op by op: ok, errno, VmPin, probe headroom,
 * helper VmPin), in ALL_LOGICS order.
 */
export function logicClasses(s: CompiledScenario, opts?: SimulateOptions, logics: readonly Logic[] = ALL_LOGICS): Logic[][] {
  const sims = logics.map((l) => ({ l, e: simulate(s, l, opts) }));
  const classes: { rep: ExpectedOp[]; members: Logic[] }[] = [];
  for (const { l, e } of sims) {
    const kb = opts?.pageKb ?? PAGE_KB;
    const measured = syntheticMeasured(s, e, kb);
    const c = classes.find((k) => diffCell(s.ops, measured, k.rep, kb).verdict === 'MATCH');
    if (c !== undefined) c.members.push(l);
    else classes.push({ rep: e, members: [l] });
  }
  return classes.map((c) => c.members);
}

/** "V0/shared V0/perf | V1/shared ..." */
export const classesLabel = (classes: readonly Logic[][]): string => classes.map((c) => c.map(logicLabel).join(' ')).join(' | ');

/** Worker pinned pages after each `map`, in call order (what the results plot). */
export function pinnedSeries(s: CompiledScenario, e: readonly ExpectedOp[]): number[] {
  return s.ops.flatMap((op, i) => (op.op === 'map' ? [e[i]!.pinned] : []));
}

/** 1-based call number (among `map` ops) of the first EPERM, null if none; as src/diff counts it. */
export function firstEperm(s: CompiledScenario, e: readonly ExpectedOp[]): number | null {
  let call = 0;
  for (let i = 0; i < s.ops.length; i++) {
    if (s.ops[i]!.op !== 'map') continue;
    call++;
    if (e[i]!.errno === 'EPERM') return call;
  }
  return null;
}

