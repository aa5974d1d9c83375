// A TAP version 14 stream: one test point per cell, SKIP as a directive,
// failures with a YAML diagnostic block. Pure.

import type { Results } from '../results/schema.ts';
import { FAILING } from './analysis.ts';

const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ').replace(/#/g, '\\#');
const yamlStr = (s: string): string => JSON.stringify(s);

export function renderTap(r: Results): string {
  const out = ['TAP version 14', `1..${r.cells.length}`];
  r.cells.forEach((c, i) => {
    const name = `${c.kernel} x ${c.scenario}: ${c.verdict}`;
    if (c.verdict === 'SKIP') { out.push(`ok ${i + 1} - ${oneLine(name)} # SKIP ${oneLine(c.reason ?? '')}`); return; }
    const ok = !FAILING.includes(c.verdict);
    out.push(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${oneLine(name)}`);
    if (!ok) {
      out.push('  ---', `  verdict: ${c.verdict}`, `  reason: ${yamlStr(c.reason ?? '')}`,
        `  first_eperm: { measured: ${c.first_eperm_measured ?? 'null'}, expected: ${c.first_eperm_expected ?? 'null'} }`,
        `  rerun: ${yamlStr(c.rerun)}`, '  ...');
    }
  });
  return out.join('\n') + '\n';
}
