// results.ktap through the kernel's own KTAP parser (kunit_parser.py from
// Debian's linux-source tarball): the published run (195 cells, MATCH and
// SKIP) and the same run with cells turned into every failing verdict.
// The kunit tool comes from lockstep's cache (test/lib/kunit.ts kernelTools()).

import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults, type CellVerdict, type Results } from '../../src/results/schema.ts';
import { renderKtap } from '../../src/export/ktap.ts';
import { writeReports } from '../../src/report/files.ts';
import { kernelTools, parseKtap, type KunitTest } from '../lib/kunit.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const published = (): Results => checkResults(JSON.parse(readFileSync(join(ROOT, 'results/results.json'), 'utf8')), 'results/results.json');

const { kunit } = kernelTools();
const dir = mkdtempSync(join(tmpdir(), 'lockstep-ktap-'));

const status = (v: CellVerdict): string => (v === 'SKIP' ? 'SKIPPED' : ['MATCH', 'UNCHECKED'].includes(v) ? 'SUCCESS' : 'FAILURE');
const errors = (n: KunitTest): number => n.errors + n.subtests.reduce((a, s) => a + errors(s), 0);

/** Parses `file` with kunit_parser, asserts it against `r`'s cells; returns the parsed tree. */
function check(t: Test, r: Results, file: string): KunitTest {
  const { tree } = parseKtap(kunit, file);
  t.equal(errors(tree), 0, 'the parser reports no errors');
  const kernels = [...new Set(r.cells.map((c) => c.kernel))];
  t.equal(tree.subtests.length, kernels.length, 'one subtest per kernel');
  for (const k of tree.subtests) {
    const cells = r.cells.filter((c) => c.kernel === k.name);
    t.equal(k.subtests.length, cells.length, `${k.name}: one test per cell`);
    for (const s of k.subtests) {
      const c = cells.find((x) => x.scenario === s.name);
      t.ok(c, `${k.name}/${s.name} is a cell`);
      if (c) t.equal(s.status, status(c.verdict), `${k.name}/${s.name}: ${c.verdict} -> ${s.status}`);
    }
    const bad = cells.some((c) => status(c.verdict) === 'FAILURE');
    if (bad) t.equal(k.status, 'FAILURE', `${k.name} fails with its cells`);
  }
  return tree;
}

t.test('the published run: written by writeReports beside results.tap, parsed by kunit_parser', async (t) => {
  const r = published();
  await writeReports(r, dir);
  const text = readFileSync(join(dir, 'results.ktap'), 'utf8');
  t.match(text, /^KTAP version 1\n/);
  t.match(text, /\n {4}# Subtest: /);
  t.match(text, / # SKIP /, 'SKIP directives');
  check(t, r, join(dir, 'results.ktap'));
});

t.test('every failing verdict is not ok, with kselftest-style diagnostics', (t) => {
  const r = published();
  const verdicts: CellVerdict[] = ['MISMATCH', 'PANIC', 'TIMEOUT', 'ERROR', 'BOOT_FAIL', 'BUILD_FAIL', 'UNCHECKED'];
  const k = r.cells[0]!.kernel;
  const mine = r.cells.filter((c) => c.kernel === k && c.verdict === 'MATCH');
  verdicts.forEach((v, i) => { const c = mine[i % mine.length]!; c.verdict = v; c.reason = `made ${v}\nsecond line`; c.console_excerpt = v === 'PANIC' ? 'Kernel panic - not syncing: # test\n' : undefined; });
  const f = join(dir, 'failing.ktap');
  writeFileSync(f, renderKtap(r));
  const tree = check(t, r, f); // the same parse the checks above saw, not a second kunit_parser run
  const kt = tree.subtests.find((s) => s.name === k)!;
  t.equal(kt.status, 'FAILURE');
  const bad = kt.subtests.find((s) => s.status === 'FAILURE')!;
  t.ok(bad.log.some((l) => /# .*: (MISMATCH|PANIC|TIMEOUT|ERROR|BOOT_FAIL|BUILD_FAIL): made/.test(l)), 'the diagnostic lines reach the failing test');
  t.ok(bad.log.some((l) => /# rerun: (node bin\/)?lockstep(\.mjs)? run /.test(l)), 'with its rerun command');
  t.end();
});
