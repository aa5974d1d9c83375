// JUnit XML: one testsuite per kernel, one testcase per cell. MISMATCH and
// PANIC are <failure>, the infrastructure verdicts (ERROR, TIMEOUT,
// BOOT_FAIL, BUILD_FAIL: verdictClass 'infra') are <error>, SKIP is
// <skipped>; MATCH and UNCHECKED pass. Only the elements and attributes the
// Jenkins JUnit XSD allows (<testsuites> carries no `skipped`; GitLab and
// Jenkins count <error> into `errors`). test/unit/golden/junit-lockstep.xsd
// states those rules and test/unit/junit.test.ts validates with xmllint. Pure.

import { verdictClass, type Results } from '../results/schema.ts';
import { kernelIds } from './analysis.ts';
import { VERDICT_FACTS } from '../diff/verdicts.ts';

/** XML 1.0 text: escape markup, drop characters XML cannot carry (console excerpts have them). */
export const xmlEsc = (s: string): string =>
  s.replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '\ufffd')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

type Cell = Results['cells'][number];

const secs = (ms: number | null | undefined): string => ((ms ?? 0) / 1000).toFixed(3);

/** tests, failures (MISMATCH/PANIC), errors (infra verdicts), skipped and time of some cells. */
function counts(cells: readonly Cell[]): { tests: number; failures: number; errors: number; skipped: number; time: string } {
  const n = (k: string): number => cells.filter((c) => verdictClass(c.verdict) === k).length;
  return { tests: cells.length, failures: n('fail'), errors: n('infra'), skipped: n('skip'), time: secs(cells.reduce((s, c) => s + (c.duration_ms ?? 0), 0)) };
}

function testcase(k: string, c: Cell): string[] {
  // classname dots are read as packages by JUnit viewers: keep a kernel id one level
  const open = `    <testcase classname="lockstep.${xmlEsc(k.replace(/\./g, '_'))}" name="${xmlEsc(c.scenario)}" time="${secs(c.duration_ms)}">`;
  const sysout = `      <system-out>${xmlEsc(`verdict ${c.verdict}; expected logic ${c.expected_logic ?? 'unknown'}; first EPERM measured ${c.first_eperm_measured ?? '-'}, expected ${c.first_eperm_expected ?? '-'}\nre-run: ${c.rerun}${c.console_log ? `\nconsole: ${c.console_log}` : ''}`)}</system-out>`;
  // the JUnit element of each verdict: the verdict table (src/diff/verdicts.ts)
  const el = VERDICT_FACTS[c.verdict].junit;
  if (el === 'skipped') return [open, `      <skipped message="${xmlEsc(c.reason ?? '')}"/>`, '    </testcase>'];
  if (el === null) return [open, sysout, '    </testcase>'];
  const body = `      <${el} type="${c.verdict}" message="${xmlEsc(`${c.verdict}: ${c.reason ?? ''}`.slice(0, 500))}">${xmlEsc(c.console_excerpt ?? c.reason ?? '')}</${el}>`;
  return [open, body, sysout, '    </testcase>'];
}

/**
 * junit.xml for a run: `<testsuites>` (name, tests, failures, errors, time),
 * one `<testsuite>` per kernel (adds skipped, timestamp = its first cell's
 * started_at), one `<testcase>` per cell; time in seconds with 3 decimals.
 * Failure/error/skip split: verdictClass in src/results/schema.ts.
 */
export function renderJunit(r: Results): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const all = counts(r.cells);
  out.push(`<testsuites name="lockstep" tests="${all.tests}" failures="${all.failures}" errors="${all.errors}" time="${all.time}">`);
  for (const k of kernelIds(r)) {
    const cells = r.cells.filter((c) => c.kernel === k);
    const s = counts(cells);
    out.push(`  <testsuite name="${xmlEsc(k)}" tests="${s.tests}" failures="${s.failures}" errors="${s.errors}" skipped="${s.skipped}" time="${s.time}" timestamp="${xmlEsc(cells[0]?.started_at ?? r.started_at)}">`);
    for (const c of cells) out.push(...testcase(k, c));
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
