// Comparing two runs, in KernelCI's terms: per cell (kernel x scenario) a
// regression, a fix, an unstable cell (infrastructure failed on one side), a
// new or missing cell, or one still failing; per kernel, whether the one
// classifier's label changed. Pure.

import type { CellResult, Results } from '../results/schema.ts';
import { verdictClass } from '../results/schema.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { cellKey, classifyAll, epermText, kernelIds } from './analysis.ts';

/**
 * - regression: the cell ran on the new side and its behaviour got worse: a
 *   passing (or skipped, or infrastructure-failed) cell that now MISMATCHes
 *   or PANICs;
 * - fixed: a failing cell (behaviour or infrastructure) that now passes;
 * - unstable: infrastructure failed on the new side (TIMEOUT, BOOT_FAIL,
 *   BUILD_FAIL, ERROR) where the old side had a judgement: says nothing
 *   about the kernel;
 * - still_failing: failed on both sides (behaviour or infrastructure);
 * - new / missing: the cell exists on one side only (missing: the new run
 *   lost a cell the old one had; `lockstep diff` fails on it, issue 26);
 * - changed: both sides pass (or skip) but something else moved (the first
 *   EPERM point, SKIP <-> MATCH): listed, never counted against the run.
 */
export type CellCategory = 'regression' | 'fixed' | 'unstable' | 'still_failing' | 'new' | 'missing' | 'changed';

export const CATEGORIES: readonly CellCategory[] = ['regression', 'fixed', 'unstable', 'still_failing', 'new', 'missing', 'changed'];

type CellFacts = Pick<CellResult, 'verdict' | 'first_eperm_measured'>;

export interface CellChange {
  kernel: string;
  scenario: string;
  category: CellCategory;
  what: ('verdict' | 'first_eperm' | 'added' | 'removed')[];
  old: CellFacts | null;
  new: CellFacts | null;
}

export interface KernelChange {
  kernel: string;
  /** the one classifier's labels (src/diff/evidence.ts) */
  old: string;
  new: string;
  /**
   * regression: the label changed on what was measured; unstable: one side
   * had no usable cell, or the new side classified fewer cells and still
   * allows every old candidate (infrastructure lost information);
   * narrowed: the new side ran at least the old side's cells and its logics
   * are a strict subset of the old ones (cells that could not run before,
   * e.g. AUX cells once lockstep_aux builds, ruled candidates out; nothing
   * the old cells allowed was contradicted, no new candidate appeared)
   */
  category: 'unchanged' | 'regression' | 'unstable' | 'narrowed';
}

/** A kernel present in both runs whose version moved (a "latest" row that followed its suite). */
export interface KernelVersionChange {
  kernel: string;
  old: string;
  new: string;
}

export interface Comparison {
  /** kernels whose version (upstream, or the Debian package version when that is all that moved) differs */
  kernelVersions: KernelVersionChange[];
  kernelsAdded: string[];
  kernelsRemoved: string[];
  /** cells with a category, in old-run order then new cells; a still_failing cell whose verdict and EPERM point did not move has `what` [] */
  cells: CellChange[];
  /** every kernel present in both runs, changed or not */
  classification: KernelChange[];
  /** cells per category, plus kernels whose classification regressed (in `regression`) or went unstable */
  counts: Record<CellCategory, number>;
  /** behaviour regressions: regression cells + regressed classifications */
  regressions: number;
  /** unstable cells + kernels without usable cells on one side */
  unstable: number;
}

/** The category of one cell present on both sides, or null when nothing changed. */
export function cellCategory(o: CellFacts, n: CellFacts): CellCategory | null {
  const a = verdictClass(o.verdict);
  const b = verdictClass(n.verdict);
  const failed = a === 'fail' || a === 'infra';
  if (b === 'fail') return a === 'fail' ? 'still_failing' : 'regression';
  if (b === 'infra') return failed ? 'still_failing' : 'unstable';
  if (failed) return 'fixed';
  return o.verdict !== n.verdict || o.first_eperm_measured !== n.first_eperm_measured ? 'changed' : null;
}

/**
 * Compare two runs. Cells of kernels present in only one run are `new` or
 * `missing` (and the kernel is listed as added or removed); they are never
 * regressions. A kernel present in both whose classified label changed is a
 * regression when both sides had cells to classify, unstable otherwise (all
 * of its cells failed to run on one side).
 */
export function compareResults(a: Results, b: Results, defsA: ReadonlyMap<string, CompiledScenario>, defsB: ReadonlyMap<string, CompiledScenario>): Comparison {
  const ka = kernelIds(a);
  const kb = kernelIds(b);
  const kernelsAdded = kb.filter((k) => !ka.includes(k));
  const kernelsRemoved = ka.filter((k) => !kb.includes(k));
  const both = ka.filter((k) => kb.includes(k));
  const am = new Map(a.cells.map((c) => [cellKey(c), c]));
  const bm = new Map(b.cells.map((c) => [cellKey(c), c]));
  const pick = (c: CellResult): CellFacts => ({ verdict: c.verdict, first_eperm_measured: c.first_eperm_measured });
  const cells: CellChange[] = [];
  for (const [k, o] of am) {
    const n = bm.get(k);
    if (!n) { cells.push({ kernel: o.kernel, scenario: o.scenario, category: 'missing', what: ['removed'], old: pick(o), new: null }); continue; }
    const category = cellCategory(o, n);
    if (category === null) continue;
    const what: CellChange['what'] = [];
    if (o.verdict !== n.verdict) what.push('verdict');
    if (o.first_eperm_measured !== n.first_eperm_measured) what.push('first_eperm');
    cells.push({ kernel: o.kernel, scenario: o.scenario, category, what, old: pick(o), new: pick(n) });
  }
  for (const [k, n] of bm) if (!am.has(k)) cells.push({ kernel: n.kernel, scenario: n.scenario, category: 'new', what: ['added'], old: null, new: pick(n) });
  const la = classifyAll(a, defsA);
  const lb = classifyAll(b, defsB);
  const classification: KernelChange[] = both.map((k) => {
    const o = la.get(k)!;
    const n = lb.get(k)!;
    // Fewer cells classified tonight (infrastructure) and no old candidate ruled out: less known, nothing contradicted.
    const lessKnown = n.scenarios.length < o.scenarios.length && o.logics.every((l) => n.logics.includes(l));
    // More cells classified and fewer candidates, all of them old ones: more known, nothing contradicted.
    const narrowed = n.scenarios.length >= o.scenarios.length && n.logics.length > 0 && n.logics.length < o.logics.length && n.logics.every((l) => o.logics.includes(l));
    const category = o.label === n.label ? 'unchanged' : o.status === 'no-cells' || n.status === 'no-cells' || lessKnown ? 'unstable' : narrowed ? 'narrowed' : 'regression';
    return { kernel: k, old: o.label, new: n.label, category };
  });
  const counts = Object.fromEntries(CATEGORIES.map((c) => [c, cells.filter((x) => x.category === c).length])) as Record<CellCategory, number>;
  const regressions = counts.regression + classification.filter((k) => k.category === 'regression').length;
  const unstable = counts.unstable + classification.filter((k) => k.category === 'unstable').length;
  return { kernelVersions: versionChanges(a, b, both), kernelsAdded, kernelsRemoved, cells, classification, counts, regressions, unstable };
}

/** Kernels of both runs whose version moved: "7.2.13 -> 7.2.14" (or the Debian versions when only they differ). */
function versionChanges(a: Results, b: Results, both: readonly string[]): KernelVersionChange[] {
  const out: KernelVersionChange[] = [];
  for (const id of both) {
    const x = a.kernels.find((k) => k.id === id);
    const y = b.kernels.find((k) => k.id === id);
    if (!x || !y) continue;
    if (x.version !== y.version) out.push({ kernel: id, old: x.version, new: y.version });
    else if (x.resolution && y.resolution && x.resolution.package_version !== y.resolution.package_version) {
      out.push({ kernel: id, old: x.resolution.package_version, new: y.resolution.package_version });
    }
  }
  return out;
}

const LABEL: Record<CellCategory, string> = {
  regression: 'REGRESSION', fixed: 'FIXED', unstable: 'UNSTABLE', still_failing: 'STILL FAILING', new: 'NEW', missing: 'MISSING', changed: 'changed',
};

export function renderComparison(c: Comparison, oldName: string, newName: string): string {
  const out: string[] = [`## lockstep diff: ${oldName} -> ${newName}`, ''];
  const kernelChanges = c.classification.filter((k) => k.category !== 'unchanged');
  const changed = c.cells.filter((x) => x.what.length);
  const same = c.counts.still_failing - changed.filter((x) => x.category === 'still_failing').length;
  const asBefore = same ? ` ${same} cell(s) still failing as before.` : '';
  const moved = new Map(c.kernelVersions.map((v) => [v.kernel, `${v.kernel}: ${v.old} -> ${v.new}`]));
  for (const v of moved.values()) out.push(`Kernel version ${v}`);
  if (!changed.length && !kernelChanges.length && !c.kernelsAdded.length && !c.kernelsRemoved.length) {
    out.push(`No changes.${asBefore}`);
    return out.join('\n') + '\n';
  }
  if (c.kernelsAdded.length) out.push(`Kernels added: ${c.kernelsAdded.join(', ')}`);
  if (c.kernelsRemoved.length) out.push(`Kernels removed: ${c.kernelsRemoved.join(', ')}`);
  for (const k of kernelChanges) {
    const what = k.category === 'narrowed' ? 'classification narrowed (more cells ran, fewer candidates, none new)' : 'classification changed';
    out.push(`${k.category === 'regression' ? 'REGRESSION' : k.category === 'narrowed' ? 'narrowed' : 'UNSTABLE'} ${k.kernel}: ${what}: ${k.old} -> ${k.new}${moved.has(k.kernel) ? ` [${moved.get(k.kernel)}]` : ''}`);
  }
  const fmt = (v: CellFacts | null) => (v ? `${v.verdict} EPERM ${epermText(v.first_eperm_measured)}` : 'absent');
  const beside = (k: string): string => (moved.has(k) ? ` [${moved.get(k)}]` : '');
  for (const x of changed) out.push(`${LABEL[x.category]} ${x.kernel} x ${x.scenario}: ${fmt(x.old)} -> ${fmt(x.new)} (${x.what.join(', ')})${beside(x.kernel)}`);
  const lost = c.counts.missing ? ` ${c.counts.missing} cell(s) of ${oldName} missing from ${newName}.` : '';
  out.push('', `${c.regressions} regression(s), ${changed.length} cell change(s).${lost}${asBefore} ` +
    `By category: ${CATEGORIES.map((k) => `${k} ${c.counts[k]}`).join(', ')}; unstable classifications ${kernelChanges.filter((k) => k.category === 'unstable').length}, narrowed ${kernelChanges.filter((k) => k.category === 'narrowed').length}.`);
  return out.join('\n') + '\n';
}

/** `lockstep diff --json`: the comparison with both run names. */
export function comparisonJson(c: Comparison, oldName: string, newName: string): object {
  return {
    old: oldName, new: newName,
    kernel_versions: c.kernelVersions,
    kernels_added: c.kernelsAdded, kernels_removed: c.kernelsRemoved,
    counts: c.counts, regressions: c.regressions, unstable: c.unstable,
    classification: c.classification, cells: c.cells,
  };
}
