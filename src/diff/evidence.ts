// Classification with evidence: which logic(s) explain every measured cell of
// one kernel, and which scenario ruled out which candidates (and on what op).
// Pure: compiled scenarios and measured ops in, a report out.

import { ALL_LOGICS, type Logic, logicLabel } from '../model/accounting.ts';
import { type SimulateOptions, simOptionsForVersion } from '../model/simulate.ts';
import { type CompiledScenario, usesAux } from '../scenario/ops.ts';
import { type Cell, diffCalibrated } from './classify.ts';
import type { MeasuredOp } from './diff.ts';
import { type CellVerdict, isMeasured } from './verdicts.ts';

/** One measured cell: its compiled scenario and the reproducer's ops. */
export type EvidenceCell = Cell;

/** One scenario ruling out a group of candidates for the same observed reason. */
export interface Refutation {
  scenario: string;
  /** logic labels ruled out, in ALL_LOGICS order */
  ruledOut: string[];
  /** "op 5 (map): pinned measured 3, predicted 131" */
  because: string;
}

export type ClassStatus = 'identified' | 'ambiguous' | 'none' | 'no-cells';

export interface Classification {
  status: ClassStatus;
  /** "V3/perf", "V1|V3/shared", "ambiguous: V1|V3/shared, V4/shared", "none", "no cells" */
  label: string;
  /** the logics that match every cell, in ALL_LOGICS order */
  logics: string[];
  /** the same, grouped into classes the cells cannot tell apart (groupClasses: V1|V3 without AUX cells, V1b|V3 with) */
  classes: string[];
  /** the scenarios whose cells were used */
  scenarios: string[];
  evidence: Refutation[];
}

/** V1's arithmetic family: V1 (d44248a41337), V1a, V1b and V3 compute the same split for every mapping. */
const V1_FAMILY = ['V1', 'V1a', 'V1b', 'V3'] as const;

/**
 * Group the logics left into classes the cells run cannot tell apart.
 * V1, V1a, V1b and V3 compute the same split for every mapping (ring buffer
 * or AUX area); V1, V1a and V1b differ only on AUX unmap. So:
 * - without AUX cells (`auxRan` false) they are one class, labelled
 *   "V1|V3/<counter>" (standing for all four);
 * - with AUX cells V1 and V1a stand alone, while V1b and V3 stay one class,
 *   "V1b|V3/<counter>": they give an AUX area back the same way
 *   (36b3db03b474) and no op sequence tells them apart.
 */
export function groupClasses(logics: readonly Logic[], auxRan = false): string[] {
  const labels = new Set(logics.map(logicLabel));
  const out: string[] = [];
  const done = new Set<string>();
  for (const l of logics) {
    const lab = logicLabel(l);
    if (done.has(lab)) continue;
    const fam = (V1_FAMILY as readonly string[]).includes(l.accounting);
    const members = !fam ? [] : auxRan ? (l.accounting === 'V1b' || l.accounting === 'V3' ? ['V1b', 'V3'] : []) : [...V1_FAMILY];
    const present = members.filter((a) => labels.has(`${a}/${l.counter}`));
    if (present.length < 2) {
      out.push(lab);
      continue;
    }
    for (const a of present) done.add(`${a}/${l.counter}`);
    out.push(auxRan ? `${present.join('|')}/${l.counter}` : present.length === V1_FAMILY.length ? `V1|V3/${l.counter}` : `${present.join('|')}/${l.counter}`);
  }
  return out;
}

const show = (v: unknown): string => (typeof v === 'string' ? v || '""' : JSON.stringify(v));

/**
 * Classify one kernel's cells. For every cell, each candidate whose prediction
 * differs is ruled out by that scenario (independently of the other cells, so
 * the evidence names every scenario that tells a candidate apart); the
 * logics left are those no cell ruled out.
 */
export function classifyWithEvidence(cells: readonly EvidenceCell[], candidates: readonly Logic[] = ALL_LOGICS, opts?: SimulateOptions): Classification {
  const scenarios = cells.map((c) => c.scenario.id);
  if (cells.length === 0) return { status: 'no-cells', label: 'no cells', logics: [], classes: [], scenarios, evidence: [] };
  const out = new Set<string>();
  const evidence: Refutation[] = [];
  for (const c of cells) {
    const groups = new Map<string, string[]>();
    for (const logic of candidates) {
      const d = diffCalibrated(c, logic, opts);
      if (d.verdict === 'MATCH') continue;
      const lab = logicLabel(logic);
      out.add(lab);
      const f = d.firstDivergence;
      const because = f
        ? `op ${f.i} (${f.op}): ${f.field} measured ${show(f.measured)}, predicted ${show(f.expected)}`
        : `the measured stream is incomplete (${d.missing ?? 'ops missing'})`;
      const g = groups.get(because);
      if (g) g.push(lab);
      else groups.set(because, [lab]);
    }
    for (const [because, ruledOut] of groups) evidence.push({ scenario: c.scenario.id, ruledOut, because });
  }
  const left = candidates.filter((l) => !out.has(logicLabel(l)));
  const classes = groupClasses(left, cells.some((c) => usesAux(c.scenario)));
  const logics = left.map(logicLabel);
  if (classes.length === 0) return { status: 'none', label: 'none', logics, classes, scenarios, evidence };
  if (classes.length === 1) return { status: 'identified', label: classes[0]!, logics, classes, scenarios, evidence };
  return { status: 'ambiguous', label: `ambiguous: ${classes.join(', ')}`, logics, classes, scenarios, evidence };
}

/**
 * The logics (of `candidates`, default all 14) under which every cell diffs
 * as MATCH after calibration, in ALL_LOGICS order: classifyWithEvidence's
 * answer as Logic objects. More than one means the cells cannot tell them
 * apart (V1 and V3 never differ on ring buffers); none means no model
 * explains them. A cell whose stream is incomplete matches no logic, so
 * callers leave errored or skipped cells out rather than read an empty list
 * as "no logic fits".
 */
export function classify(cells: readonly Cell[], candidates: readonly Logic[] = ALL_LOGICS, opts?: SimulateOptions): Logic[] {
  if (!cells.length) return [...candidates]; // nothing rules anything out
  const fits = new Set(classifyWithEvidence(cells, candidates, opts).logics);
  return candidates.filter((l) => fits.has(logicLabel(l)));
}

/** "sysctl-lowered ruled out V2/shared, V2/perf: op 5 (map): pinned measured 3, predicted 131" */
export const refutationText = (r: Refutation): string => `${r.scenario} ruled out ${r.ruledOut.join(', ')}: ${r.because}`;

// ---------------------------------------------------------------------------
// From a results file (structural types: no dependency on the writer)

interface ResultsCellLike {
  kernel: string;
  scenario: string;
  verdict: string;
  scenario_hash: string;
  measured: readonly MeasuredOp[];
}
export interface ResultsLike {
  kernels: readonly { id: string; version?: string; /** page size in kB when not 4 (arm64 16K/64K builds) */ page_kb?: number }[];
  scenarios: readonly { id: string; hash: string; def?: CompiledScenario }[];
  cells: readonly ResultsCellLike[];
}

/** Verdicts whose measured stream is complete and can be diffed under any logic. */


export interface KernelClassification extends Classification {
  kernel: string;
  /** cells left out, and why (skipped, errored, scenario definition unknown) */
  ignored: { scenario: string; reason: string }[];
}

/**
 * Classify one kernel of a run from its measured cells only. The compiled
 * scenarios come from the results (`scenarios[].def`) or from `known` (by
 * hash: a scenario file changed since the run does not match and is left
 * out). The simulator options are those the kernel's recorded version
 * implies (simOptionsForVersion) at its recorded page size (page_kb, 4 kB
 * when absent), unless `opts` says otherwise.
 *
 * This is lockstep's one classifier of a run: table.md's classified column,
 * report.html, `lockstep classify`, `lockstep diff` and the step summary all
 * print its `label` ("V3/perf", "V1|V3/shared", "ambiguous: ...", "none",
 * "no cells").
 */
export function classifyKernel(r: ResultsLike, kernel: string, known: ReadonlyMap<string, CompiledScenario> = new Map(), opts?: SimulateOptions): KernelClassification {
  if (opts === undefined) {
    const rec = r.kernels.find((k) => k.id === kernel);
    if (rec?.version) opts = simOptionsForVersion(rec.version);
    if (rec?.page_kb !== undefined && rec.page_kb !== 4) opts = { ...opts, pageKb: rec.page_kb };
  }
  const defs = new Map<string, CompiledScenario>(known);
  for (const s of r.scenarios) if (s.def) defs.set(s.hash, s.def);
  const cells: EvidenceCell[] = [];
  const ignored: { scenario: string; reason: string }[] = [];
  for (const c of r.cells) {
    if (c.kernel !== kernel) continue;
    if (!isMeasured(c.verdict as CellVerdict)) {
      ignored.push({ scenario: c.scenario, reason: `verdict ${c.verdict}` });
      continue;
    }
    const def = defs.get(c.scenario_hash);
    if (!def) {
      ignored.push({ scenario: c.scenario, reason: `no definition of scenario ${c.scenario} with hash ${c.scenario_hash.slice(0, 12)} (changed since the run? pass the scenario file)` });
      continue;
    }
    cells.push({ scenario: def, measured: c.measured });
  }
  cells.sort((a, b) => a.scenario.id.localeCompare(b.scenario.id));
  return { kernel, ...classifyWithEvidence(cells, ALL_LOGICS, opts), ignored };
}
