// What the report, the diff and the summaries derive from results.json:
// per-kernel classification, first EPERM points, the VmPin series to plot.
// Pure: results (and the scenario definitions) in, facts out.

import { classifyKernel, type KernelClassification } from '../diff/evidence.ts';
import { type Logic, parseLogic } from '../model/accounting.ts';
import { type CompiledScenario, PAGE_KB } from '../scenario/ops.ts';
import { logicClasses, pinnedSeries } from '../diff/discriminate.ts';
import type { CellResult, CellVerdict, Results } from '../results/schema.ts';
import { isFailing } from '../diff/verdicts.ts';

/** Verdicts CI treats as a failed test case. */
/** The failing verdicts (src/results/verdicts.ts), re-exported for this folder's readers. */
export { FAILING } from '../diff/verdicts.ts';

export const cellKey = (c: Pick<CellResult, 'kernel' | 'scenario'>): string => `${c.kernel}\0${c.scenario}`;

/**
 * Scenario definitions by id: those stored in results.json, else `fallback` ones whose hash matches.
 * A `"cpus": "any"` scenario run at several counts has one def per count (same id, own hash):
 * the first stored (the run's default count) stands for the id; readers that need a cell's
 * own count look its scenario_hash up (defsByHash).
 */
export function scenarioDefs(r: Results, fallback: ReadonlyMap<string, CompiledScenario> = new Map()): Map<string, CompiledScenario> {
  const out = new Map<string, CompiledScenario>();
  for (const s of r.scenarios) {
    const d = s.def ?? fallback.get(s.hash);
    if (d && !out.has(s.id)) out.set(s.id, d);
  }
  return out;
}

/**
 * The classification of one kernel as the report, the summary and the diff
 * show it: the one classifier's answer (src/diff/evidence.ts classifyKernel,
 * label "V1|V3/shared", "ambiguous: ...", "none", "no cells"), plus the
 * surviving logics as Logic objects (null when no cell could be used) and
 * how many cells it used.
 */
export interface KernelLogic extends KernelClassification {
  fits: Logic[] | null;
  cells: number;
}

/** classifyKernel of every kernel of the run, with `defs` (by scenario id) for results written without definitions. */
export function classifyAll(r: Results, defs: ReadonlyMap<string, CompiledScenario>): Map<string, KernelLogic> {
  const known = new Map<string, CompiledScenario>();
  for (const s of r.scenarios) {
    const d = defs.get(s.id);
    if (d) known.set(s.hash, d);
  }
  return new Map(kernelIds(r).map((k) => {
    const c = classifyKernel(r, k, known);
    return [k, { ...c, fits: c.status === 'no-cells' ? null : c.logics.map(parseLogic), cells: c.scenarios.length }];
  }));
}

/** Kernel ids in report order: the kernels list, then any only seen in cells. */
import { kernelIds, scenarioIds } from '../results/ids.ts';
export { kernelIds, scenarioIds };

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
  return { total: r.cells.length, byVerdict, failing: r.cells.filter((c) => isFailing(c.verdict)).length };
}

export const epermText = (n: number | null): string => (n === null ? '-' : `#${n}`);

/**
 * One op of a cell in script order, for the per-cell plots: the worker's
 * VmPin in pages (measured VmPin kB / PAGE_KB, expected ExpectedOp.pinned) and, on
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
      pinned_measured: m ? fin(m.vmpin_kb / PAGE_KB) : null, pinned_expected: e ? e.pinned : null,
      headroom_measured: fin(m?.headroom), headroom_expected: fin(e?.headroom),
    };
  });
}

/** 0-based index of the first op where measured and expected differ (the diff's first divergence), null when none. */
export const firstDivergentOp = (c: CellResult): number | null => c.divergence?.i ?? null;
