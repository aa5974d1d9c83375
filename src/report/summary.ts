// GitHub step summary: short markdown a reader sees on the run page. Pure.

import type { Results } from '../results/schema.ts';
import { cellKey, counts, epermText, FAILING, type KernelLogic, kernelIds, scenarioIds } from './analysis.ts';
import type { Comparison } from './compare.ts';
import { renderComparison } from './compare.ts';
import { isMeasured } from '../diff/verdicts.ts';

const ICON: Record<string, string> = {
  MATCH: '✅', MISMATCH: '❌', SKIP: '⏭️', UNCHECKED: '🔎', ERROR: '⚠️', TIMEOUT: '⏱️', PANIC: '💥', BOOT_FAIL: '🚫', BUILD_FAIL: '🚫',
};

export function renderSummary(r: Results, logic: ReadonlyMap<string, KernelLogic>, cmp?: { c: Comparison; oldName: string; newName: string }): string {
  const n = counts(r);
  const scen = scenarioIds(r);
  const byKey = new Map(r.cells.map((c) => [cellKey(c), c]));
  const out: string[] = ['## lockstep matrix', ''];
  out.push(`${n.failing ? '❌' : '✅'} ${n.total} cells: ${[...n.byVerdict].map(([v, k]) => `${v} ${k}`).join(', ')}${r.complete ? '' : ' (**incomplete**)'}.`, '');
  out.push(`| kernel | expected | classified | ${scen.join(' | ')} |`, `|---|---|---|${scen.map(() => '---').join('|')}|`);
  for (const k of kernelIds(r)) {
    const kr = r.kernels.find((x) => x.id === k);
    out.push(`| ${k} | ${kr?.expected_logic ?? 'unknown'} | ${(logic.get(k)?.label ?? '').replace(/\|/g, '\\|')} | ${scen.map((s) => {
      const c = byKey.get(`${k}\0${s}`);
      return c ? `${ICON[c.verdict] ?? ''} ${isMeasured(c.verdict) ? epermText(c.first_eperm_measured) : c.verdict}` : '';
    }).join(' | ')} |`);
  }
  const bad = r.cells.filter((c) => FAILING.includes(c.verdict));
  if (bad.length) {
    out.push('', '<details><summary>Failing cells</summary>', '');
    for (const c of bad.slice(0, 200)) out.push(`- **${c.kernel} x ${c.scenario}** ${c.verdict}: ${(c.reason ?? '').replace(/\n/g, ' ')} — \`${c.rerun}\``);
    if (bad.length > 200) out.push(`- ... and ${bad.length - 200} more`);
    out.push('', '</details>');
  }
  if (cmp) out.push('', renderComparison(cmp.c, cmp.oldName, cmp.newName).replace(/^## /, '### '));
  return out.join('\n') + '\n';
}
