// JUnit XML: one testsuite per kernel, one testcase per cell. MISMATCH and
// the run failures are <failure>, SKIP is <skipped>; MATCH and UNCHECKED pass.
// Pure.

import type { Results } from '../results/schema.ts';
import { FAILING, kernelIds } from './analysis.ts';

/** XML 1.0 text: escape markup, drop characters XML cannot carry (console excerpts have them). */
export const xmlEsc = (s: string): string =>
  s.replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '\ufffd')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderJunit(r: Results): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const all = r.cells;
  const fail = all.filter((c) => FAILING.includes(c.verdict)).length;
  const skip = all.filter((c) => c.verdict === 'SKIP').length;
  const secs = (ms: number | null | undefined): string => ((ms ?? 0) / 1000).toFixed(3);
  out.push(`<testsuites name="lockstep" tests="${all.length}" failures="${fail}" errors="0" skipped="${skip}" time="${secs(all.reduce((n, c) => n + (c.duration_ms ?? 0), 0))}">`);
  for (const k of kernelIds(r)) {
    const cells = all.filter((c) => c.kernel === k);
    const kf = cells.filter((c) => FAILING.includes(c.verdict)).length;
    const ks = cells.filter((c) => c.verdict === 'SKIP').length;
    out.push(`  <testsuite name="${xmlEsc(k)}" tests="${cells.length}" failures="${kf}" errors="0" skipped="${ks}" time="${secs(cells.reduce((n, c) => n + (c.duration_ms ?? 0), 0))}" timestamp="${xmlEsc(cells[0]?.started_at ?? r.started_at)}">`);
    for (const c of cells) {
      // classname dots are read as packages by JUnit viewers: keep a kernel id one level
      const open = `    <testcase classname="lockstep.${xmlEsc(k.replace(/\./g, '_'))}" name="${xmlEsc(c.scenario)}" time="${secs(c.duration_ms)}"`;
      const sysout = `      <system-out>${xmlEsc(`verdict ${c.verdict}; expected logic ${c.expected_logic ?? 'unknown'}; first EPERM measured ${c.first_eperm_measured ?? '-'}, expected ${c.first_eperm_expected ?? '-'}\nre-run: ${c.rerun}${c.console_log ? `\nconsole: ${c.console_log}` : ''}`)}</system-out>`;
      if (FAILING.includes(c.verdict)) {
        out.push(`${open}>`, `      <failure type="${c.verdict}" message="${xmlEsc(`${c.verdict}: ${c.reason ?? ''}`.slice(0, 500))}">${xmlEsc(c.console_excerpt ?? c.reason ?? '')}</failure>`, sysout, '    </testcase>');
      } else if (c.verdict === 'SKIP') {
        out.push(`${open}>`, `      <skipped message="${xmlEsc(c.reason ?? '')}"/>`, '    </testcase>');
      } else {
        out.push(`${open}>`, sysout, '    </testcase>');
      }
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
