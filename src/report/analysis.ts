// What the report, the diff and the summaries derive from results.json:
// per-kernel classification, first EPERM points, the VmPin series to plot.
// Pure: results (and the scenario definitions) in, facts out.

import { classify } from '../diff/classify.ts';
import { ALL_LOGICS, type Logic } from '../model/accounting.ts';
import { simOptionsForVersion } from '../model/simulate.ts';
import { type CompiledScenario, PAGE_KB } from '../scenario/ops.ts';
import { logicClasses, pinnedSeries } from '../scenario/discriminate.ts';
import type { CellResult, CellVerdict, Results } from '../results/schema.ts';

/** Verdicts that mean "the scenario ran to its end and was measured". */
const FINISHED: readonly CellVerdict[] = ['MATCH', 'MISMATCH', 'UNCHECKED'];

/** Verdicts CI treats as a failed test case. */
export const FAILING: readonly CellVerdict[] = ['MISMATCH', 'ERROR', 'TIMEOUT', 'PANIC', 'BOOT_FAIL', 'BUILD_FAIL'];

export const cellKey = (c: Pick<CellResult, 'kernel' | 'scenario'>): string => `${c.kernel}\0${c.scenario}`;

/** Scenario definitions by id: those stored in results.json, else `fallback` ones whose hash matches. */
export function scenarioDefs(r: Results, fallback: ReadonlyMap<string, CompiledScenario> = new Map()): Map<string, CompiledScenario> {
  const out = new Map<string, CompiledScenario>();
  for (const s of r.scenarios) {
    const d = s.def ?? fallback.get(s.hash);
    if (d) out.set(s.id, d);
  }
  return out;
}

export interface KernelLogic {
  kernel: string;
  /** the logics that explain every finished cell; null when nothing could be classified */
  fits: Logic[] | null;
  /** "V3/shared", "ambiguous: V1/V3 (shared)", "none fits", "not classified (...)" */
  label: string;
  /** cells the classification used */
  cells: number;
}

/** "V1/V3 (shared)" style: accountings that fit, grouped by counter. */
export function fitsLabel(fits: readonly Logic[]): string {
  if (!fits.length) return 'none fits';
  if (fits.length === 1) return `${fits[0]!.accounting}/${fits[0]!.counter}`;
  const byCounter = new Map<string, string[]>();
  for (const l of fits) byCounter.set(l.counter, [...(byCounter.get(l.counter) ?? []), l.accounting]);
  return `ambiguous: ${[...byCounter].map(([c, a]) => `${a.join('/')} (${c})`).join('; ')}`;
}

/**
 * classify() over the kernel's finished, non-SKIP cells whose scenario
 * definition is known, with the simulator options its version implies (as
 * the table's classified column and `lockstep classify` do).
 */
export function classifyKernel(r: Results, kernel: string, defs: ReadonlyMap<string, CompiledScenario>, candidates: readonly Logic[] = ALL_LOGICS): KernelLogic {
  const cells = r.cells.filter((c) => c.kernel === kernel && FINISHED.includes(c.verdict) && c.measured.length && defs.has(c.scenario));
  if (!cells.length) {
    const why = r.cells.some((c) => c.kernel === kernel && FINISHED.includes(c.verdict)) ? 'scenario definitions missing' : 'no finished cells';
    return { kernel, fits: null, label: `not classified (${why})`, cells: 0 };
  }
  const version = r.kernels.find((k) => k.id === kernel)?.version;
  const opts = version ? simOptionsForVersion(version) : undefined;
  const fits = classify(cells.map((c) => ({ scenario: defs.get(c.scenario)!, measured: c.measured })), candidates, opts);
  return { kernel, fits, label: fitsLabel(fits), cells: cells.length };
}

export function classifyAll(r: Results, defs: ReadonlyMap<string, CompiledScenario>): Map<string, KernelLogic> {
  return new Map(kernelIds(r).map((k) => [k, classifyKernel(r, k, defs)]));
}

/** Kernel ids in report order: the kernels list, then any only seen in cells. */
export function kernelIds(r: Results): string[] {
  const ids = r.kernels.map((k) => k.id);
  for (const c of r.cells) if (!ids.includes(c.kernel)) ids.push(c.kernel);
  return ids;
}

export function scenarioIds(r: Results): string[] {
  const ids = r.scenarios.map((s) => s.id);
  for (const c of r.cells) if (!ids.includes(c.scenario)) ids.push(c.scenario);
  return ids;
}

/** Worker VmPin (pages) after each map call, measured. */
export function measuredSeries(c: CellResult): number[] {
  if (c.pinned_measured.length) return c.pinned_measured;
  return c.measured.filter((m) => m.op === 'map').map((m) => m.vmpin_kb / PAGE_KB);
}

/** The same, as the kernel's expected logic predicts it ([] when unknown). */
export function expectedSeries(c: CellResult, def?: CompiledScenario): number[] {
  if (c.pinned_expected.length) return c.pinned_expected;
  if (def && c.expected.length === def.ops.length) return pinnedSeries(def, c.expected);
  return [];
}

/** Scenarios the plots prefer: they separate the logics the incident is about. */
export const PREFERRED_PLOT_SCENARIOS = ['sysctl-lowered', 'incident', 'overage', 'remmap'];

/**
 * The scenario to plot: the first preferred one that has VmPin data in this
 * run, else the one whose definition splits the logics into the most classes.
 */
export function choosePlotScenario(r: Results, defs: ReadonlyMap<string, CompiledScenario>): string | null {
  const withData = scenarioIds(r).filter((s) => r.cells.some((c) => c.scenario === s && (measuredSeries(c).length || expectedSeries(c, defs.get(s)).length)));
  if (!withData.length) return null;
  const pref = PREFERRED_PLOT_SCENARIOS.find((p) => withData.includes(p));
  if (pref) return pref;
  const score = (s: string): number => { const d = defs.get(s); return d ? logicClasses(d).length : 0; };
  return [...withData].sort((a, b) => score(b) - score(a) || (a < b ? -1 : 1))[0]!;
}

export interface Counts { total: number; byVerdict: Map<CellVerdict, number>; failing: number }

export function counts(r: Results): Counts {
  const byVerdict = new Map<CellVerdict, number>();
  for (const c of r.cells) byVerdict.set(c.verdict, (byVerdict.get(c.verdict) ?? 0) + 1);
  return { total: r.cells.length, byVerdict, failing: r.cells.filter((c) => FAILING.includes(c.verdict)).length };
}

export const epermText = (n: number | null): string => (n === null ? '-' : `#${n}`);

/**
 * One op of a cell in script order, for the per-cell plots: the worker's
 * VmPin in pages (measured VmPin kB / 4, expected ExpectedOp.pinned) and, on
 * probe ops, the headroom (fresh 1-page maps that did not spill). null where
 * the op has no such value (not run, not a probe, VmPin unreadable).
 */
export interface OpPoint {
  i: number;
  op: string;
  pinned_measured: number | null;
  pinned_expected: number | null;
  headroom_measured: number | null;
  headroom_expected: number | null;
}

/** The cell's ops as OpPoints (expected values from the kernel's expected logic; [] when neither side has ops). */
export function opSeries(c: CellResult, def?: CompiledScenario): OpPoint[] {
  const byI = new Map(c.measured.map((m) => [m.i, m]));
  const n = Math.max(c.expected.length, def?.ops.length ?? 0, ...c.measured.map((m) => m.i + 1));
  const fin = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : v);
  return Array.from({ length: n }, (_, i) => {
    const m = byI.get(i); const e = c.expected[i];
    return {
      i, op: m?.op ?? def?.ops[i]?.op ?? '?',
      pinned_measured: m ? fin(m.vmpin_kb / 4) : null, pinned_expected: e ? e.pinned : null,
      headroom_measured: fin(m?.headroom), headroom_expected: fin(e?.headroom),
    };
  });
}

/** 0-based index of the first op where measured and expected differ (the diff's first divergence), null when none. */
export const firstDivergentOp = (c: CellResult): number | null => c.divergence?.i ?? null;
