// Comparing two runs: what changed per cell (verdict, first EPERM point),
// per kernel (classification), and which kernels came or went. Pure.

import type { CompiledScenario } from '../scenario/ops.ts';
import type { CellResult, Results } from '../results/schema.ts';
import { cellKey, classifyAll, epermText, kernelIds } from './analysis.ts';

export interface CellChange {
  kernel: string;
  scenario: string;
  what: ('verdict' | 'first_eperm' | 'added' | 'removed')[];
  old?: Pick<CellResult, 'verdict' | 'first_eperm_measured'>;
  new?: Pick<CellResult, 'verdict' | 'first_eperm_measured'>;
  regression: boolean;
}

export interface Comparison {
  kernelsAdded: string[];
  kernelsRemoved: string[];
  cells: CellChange[];
  classification: { kernel: string; old: string; new: string; regression: boolean }[];
  regressions: number;
}

/**
 * A regression: a MATCH cell that became anything else, or a kernel (present
 * in both runs) whose classified logic changed. Cells of kernels that were
 * added or removed are listed, never counted as regressions.
 */
export function compareResults(a: Results, b: Results, defsA: ReadonlyMap<string, CompiledScenario>, defsB: ReadonlyMap<string, CompiledScenario>): Comparison {
  const ka = kernelIds(a);
  const kb = kernelIds(b);
  const kernelsAdded = kb.filter((k) => !ka.includes(k));
  const kernelsRemoved = ka.filter((k) => !kb.includes(k));
  const both = new Set(ka.filter((k) => kb.includes(k)));
  const am = new Map(a.cells.map((c) => [cellKey(c), c]));
  const bm = new Map(b.cells.map((c) => [cellKey(c), c]));
  const pick = (c: CellResult) => ({ verdict: c.verdict, first_eperm_measured: c.first_eperm_measured });
  const cells: CellChange[] = [];
  for (const [k, o] of am) {
    if (!both.has(o.kernel)) continue;
    const n = bm.get(k);
    if (!n) { cells.push({ kernel: o.kernel, scenario: o.scenario, what: ['removed'], old: pick(o), regression: o.verdict === 'MATCH' }); continue; }
    const what: CellChange['what'] = [];
    if (o.verdict !== n.verdict) what.push('verdict');
    if (o.first_eperm_measured !== n.first_eperm_measured) what.push('first_eperm');
    if (what.length) cells.push({ kernel: o.kernel, scenario: o.scenario, what, old: pick(o), new: pick(n), regression: o.verdict === 'MATCH' && n.verdict !== 'MATCH' });
  }
  for (const [k, n] of bm) if (both.has(n.kernel) && !am.has(k)) cells.push({ kernel: n.kernel, scenario: n.scenario, what: ['added'], new: pick(n), regression: false });
  const la = classifyAll(a, defsA);
  const lb = classifyAll(b, defsB);
  const classification = [...both].flatMap((k) => {
    const o = la.get(k)!.label;
    const n = lb.get(k)!.label;
    return o === n ? [] : [{ kernel: k, old: o, new: n, regression: true }];
  });
  const regressions = cells.filter((c) => c.regression).length + classification.length;
  return { kernelsAdded, kernelsRemoved, cells, classification, regressions };
}

export function renderComparison(c: Comparison, oldName: string, newName: string): string {
  const out: string[] = [`## lockstep diff: ${oldName} -> ${newName}`, ''];
  if (!c.cells.length && !c.classification.length && !c.kernelsAdded.length && !c.kernelsRemoved.length) {
    out.push('No changes.');
    return out.join('\n') + '\n';
  }
  if (c.kernelsAdded.length) out.push(`Kernels added: ${c.kernelsAdded.join(', ')}`);
  if (c.kernelsRemoved.length) out.push(`Kernels removed: ${c.kernelsRemoved.join(', ')}`);
  for (const k of c.classification) out.push(`REGRESSION ${k.kernel}: classification changed: ${k.old} -> ${k.new}`);
  for (const x of c.cells) {
    const fmt = (v?: CellChange['old']) => (v ? `${v.verdict} EPERM ${epermText(v.first_eperm_measured)}` : 'absent');
    out.push(`${x.regression ? 'REGRESSION' : 'changed'} ${x.kernel} x ${x.scenario}: ${fmt(x.old)} -> ${fmt(x.new)} (${x.what.join(', ')})`);
  }
  out.push('', `${c.regressions} regression(s), ${c.cells.length} cell change(s).`);
  return out.join('\n') + '\n';
}
