// Compare a generated reproducer's run in a guest with lockstep's own cell
// of the same kernel and scenario, op by op. The reproducer's side is its
// KTAP as the kernel's kunit_parser read it (one subtest per op, "op K ..."
// named, SUCCESS / FAILURE / SKIPPED) and its "# op K what: RESULT VmPin N
// [headroom H]" diagnostic lines; lockstep's side is the cell's verdict per
// op, by lockstep's own comparator (diffCell over that op alone), and its
// measured values. Pure.

import { diffCell } from '../../src/diff/index.ts';
import type { CellResult } from '../../src/results/schema.ts';
import type { CompiledScenario } from '../../src/scenario/ops.ts';
import type { KunitTest } from './kunit.ts';

export interface ReproSide {
  /** the program's exit code (null: it never finished) */
  rc: number | null;
  /** its stdout */
  stdout: string;
  /** its KTAP as kunit_parser read it (null when it printed none) */
  tree: KunitTest | null;
}

export interface ScenarioComparison {
  scenario: string;
  cellVerdict: string;
  rc: number | null;
  /** ops whose verdict was compared (0 when both skipped) */
  ops: number;
  agreements: number;
  /** one line per disagreement: which op, what each side said */
  disagreements: string[];
  /** both sides skipped the scenario */
  bothSkipped: boolean;
}

/** The reproducer's measured values per op from its "# op K what: RESULT VmPin N ..." lines. */
export function reproMeasured(stdout: string): Map<number, { result: string; vmpin: number; headroom: number | null }> {
  const out = new Map<number, { result: string; vmpin: number; headroom: number | null }>();
  for (const m of stdout.matchAll(/^# op (\d+) .*?: (.+?) VmPin (-?\d+)(?: headroom (-?\d+))?(?: helper VmPin -?\d+)?; /gm)) {
    out.set(Number(m[1]), { result: m[2]!, vmpin: Number(m[3]), headroom: m[4] === undefined ? null : Number(m[4]) });
  }
  return out;
}

/** lockstep's verdict of op `k` of a cell: its own comparator run over that op alone. */
export function lockstepOpOk(def: CompiledScenario, cell: CellResult, k: number): boolean | null {
  const m = cell.measured.find((x) => x.i === k);
  const e = cell.expected[k];
  if (!m || !e) return null;
  return diffCell([def.ops[k]!], [{ ...m, i: 0 }], [e], def.page_kb ?? 4).verdict === 'MATCH';
}

/**
 * Compare one scenario. Agreement per op: the KTAP subtest K (named "op K")
 * passed exactly when lockstep's cell matched op K, and where the cell
 * measured op K the reproducer measured the same result (ok or errno),
 * VmPin pages and, for a probe, headroom. A SKIP cell agrees only with a
 * reproducer that exited 4 with one skipped test; any other cell needs a
 * program that ran every op and exited 0 (all ops passed) or 1.
 */
export function compareScenario(def: CompiledScenario, cell: CellResult, repro: ReproSide): ScenarioComparison {
  const res: ScenarioComparison = { scenario: def.id, cellVerdict: cell.verdict, rc: repro.rc, ops: 0, agreements: 0, disagreements: [], bothSkipped: false };
  const sub = repro.tree?.subtests ?? [];
  const reproSkipped = repro.rc === 4 && sub.length === 1 && sub[0]!.status === 'SKIPPED';
  if (cell.verdict === 'SKIP' || reproSkipped) {
    if (cell.verdict === 'SKIP' && reproSkipped) res.bothSkipped = true;
    else res.disagreements.push(cell.verdict === 'SKIP' ? `lockstep SKIPs (${cell.reason}), the reproducer exited ${repro.rc} with ${sub.length} tests` : `the reproducer skipped (${repro.stdout.split('\n').find((l) => l.includes('# SKIP')) ?? `exit ${repro.rc}`}), lockstep's cell is ${cell.verdict}`);
    return res;
  }
  if (!['MATCH', 'MISMATCH'].includes(cell.verdict)) res.disagreements.push(`lockstep's cell is ${cell.verdict} (${cell.reason ?? ''}): no per-op verdict to compare`);
  if (repro.tree === null || repro.tree.errors !== 0) res.disagreements.push(`kunit_parser: ${repro.tree ? `${repro.tree.errors} errors` : 'no KTAP'}`);
  if (sub.length !== def.ops.length) res.disagreements.push(`the reproducer reported ${sub.length} tests for ${def.ops.length} ops (exit ${repro.rc})`);
  const measured = reproMeasured(repro.stdout);
  let allOk = true;
  for (let k = 0; k < def.ops.length; k++) {
    const want = lockstepOpOk(def, cell, k);
    const t = sub[k];
    if (want === null || !t) continue;
    res.ops++;
    const bad: string[] = [];
    if (!new RegExp(`^op ${k} `).test(t.name)) bad.push(`KTAP test ${k + 1} is "${t.name}", not op ${k}`);
    const got = t.status === 'SUCCESS' ? true : t.status === 'FAILURE' ? false : null;
    if (got !== true) allOk = false;
    if (got !== want) bad.push(`lockstep ${want ? 'MATCH' : 'differs'}, KTAP ${t.status}`);
    const m = cell.measured.find((x) => x.i === k)!;
    const r = measured.get(k);
    const mine = { result: m.ok ? 'ok' : m.errno, vmpin: m.vmpin_kb / (def.page_kb ?? 4), headroom: def.ops[k]!.op === 'probe' ? m.headroom ?? null : null };
    if (!r) bad.push('no "# op" line');
    else if (r.result !== mine.result || r.vmpin !== mine.vmpin || (mine.headroom !== null && r.headroom !== mine.headroom)) {
      bad.push(`measured: lockstep ${mine.result} VmPin ${mine.vmpin}${mine.headroom !== null ? ` headroom ${mine.headroom}` : ''}, reproducer ${r.result} VmPin ${r.vmpin}${r.headroom !== null ? ` headroom ${r.headroom}` : ''}`);
    }
    if (bad.length) res.disagreements.push(`op ${k} (${def.ops[k]!.op}): ${bad.join('; ')}`);
    else res.agreements++;
  }
  const wantRc = allOk && sub.length === def.ops.length ? 0 : 1;
  if (repro.rc !== wantRc) res.disagreements.push(`exit ${repro.rc}, its tests say ${wantRc}`);
  return res;
}
