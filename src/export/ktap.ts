// results.ktap: the run as KTAP version 1 (Documentation/dev-tools/ktap.rst),
// nested kernel -> scenario, the way kselftest prints it: a KTAP version line
// and a "# Subtest:" header per kernel, "# SKIP <reason>" directives, and
// "# " diagnostic lines before the result line they explain. Readable by the
// kernel's own tools/testing/kunit/kunit_parser.py. Pure.

import type { CellResult, Results } from '../results/schema.ts';
import { FAILING } from '../diff/verdicts.ts';
import { kernelIds, scenarioIds } from '../results/ids.ts';

/** A KTAP test name: no '#', no line breaks, no leading/trailing blanks (the parser splits on " # "). */
export const ktapName = (s: string): string => s.replace(/[\r\n]+/g, ' ').replace(/#/g, '_').replace(/\s+/g, '_').trim() || '_';
const diag = (s: string): string[] => s.split(/\r?\n/).filter((l) => l.trim()).slice(0, 40).map((l) => `# ${l.replace(/\s+$/, '')}`);

function cellLines(c: CellResult, n: number): string[] {
  const name = ktapName(c.scenario);
  if (c.verdict === 'SKIP') return [`ok ${n} ${name} # SKIP ${(c.reason ?? 'not applicable').replace(/[\r\n]+/g, ' ')}`];
  const out: string[] = [];
  const failing = FAILING.includes(c.verdict);
  if (failing || c.verdict === 'UNCHECKED') {
    out.push(`# ${c.scenario}: ${c.verdict}${c.reason ? `: ${c.reason.split(/\r?\n/)[0]}` : ''}`);
    out.push(`# first EPERM: measured ${c.first_eperm_measured ?? '-'}, expected ${c.first_eperm_expected ?? '-'}`);
    if (c.divergence) out.push(...diag(`divergence: ${JSON.stringify(c.divergence)}`));
    if (c.console_excerpt) out.push(...diag(c.console_excerpt));
    out.push(`# rerun: ${c.rerun}`);
  }
  out.push(`${failing ? 'not ok' : 'ok'} ${n} ${name}`);
  return out;
}

/**
 * The KTAP text of a run: `1..K` kernels, each a subtest with `1..S` of its
 * cells (in the results' kernel and scenario order). A kernel is `not ok`
 * when any of its cells is failing (FAILING: MISMATCH, ERROR, TIMEOUT, PANIC,
 * BOOT_FAIL, BUILD_FAIL); `ok ... # SKIP` when every cell was skipped.
 */
export function renderKtap(r: Results): string {
  const kernels = kernelIds(r).filter((k) => r.cells.some((c) => c.kernel === k));
  const order = scenarioIds(r);
  const out = ['KTAP version 1', `# lockstep ${r.lockstep_version}: ${r.cells.length} cells, host ${r.host.release}`, `1..${kernels.length}`];
  kernels.forEach((k, i) => {
    const cells = r.cells.filter((c) => c.kernel === k).sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario));
    const rec = r.kernels.find((x) => x.id === k);
    out.push('    KTAP version 1', `    # Subtest: ${ktapName(k)}`, `    1..${cells.length}`);
    if (rec) out.push(`    # ${k}: ${rec.release ?? rec.version}, expected logic ${rec.expected_logic ?? 'unknown'}`);
    cells.forEach((c, j) => out.push(...cellLines(c, j + 1).map((l) => `    ${l}`)));
    const bad = cells.some((c) => FAILING.includes(c.verdict));
    const allSkip = cells.every((c) => c.verdict === 'SKIP');
    out.push(`${bad ? 'not ok' : 'ok'} ${i + 1} ${ktapName(k)}${allSkip ? ' # SKIP every scenario skipped' : ''}`);
  });
  return out.join('\n') + '\n';
}
