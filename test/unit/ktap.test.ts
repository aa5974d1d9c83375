// results.ktap through the kernel's own KTAP parser (kunit_parser.py from
// Debian's linux-source tarball): the published run (195 cells, MATCH and
// SKIP) and the same run with cells turned into every failing verdict.
// Heavy-ish (unpacks the tarball's kunit tool): run under the shared lock.

import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults, type CellVerdict, type Results } from '../../src/results/schema.ts';
import { renderKtap } from '../../src/export/ktap.ts';
import { writeReports } from '../../src/report/files.ts';
import { extractKunit, linuxSourceTarball, parseKtap, type KunitTest } from '../lib/kunit.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const published = (): Results => checkResults(JSON.parse(readFileSync(join(ROOT, 'results/results.json'), 'utf8')), 'results/results.json');

/**
 * The kunit tool of `tarball`, unpacked once per tarball (its path, size and
 * mtime) into the temporary directory and reused by later runs: the unpack
 * reads the whole xz-compressed tarball (its kunit files sit near the end),
 * about ten seconds. The copy is renamed into place whole, so a run never
 * sees half of one.
 */
function cachedKunit(tarball: string): string {
  const st = statSync(tarball);
  const key = createHash('sha256').update(`${tarball}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16);
  const cached = join(tmpdir(), `lockstep-kunit-${key}`);
  if (existsSync(join(cached, 'kunit_parser.py'))) return cached;
  const fresh = extractKunit(tarball);
  try {
    renameSync(fresh, cached);
    const unpacked = resolve(fresh, '../../../..'); // extractKunit's own temporary directory, now empty of files
    if (basename(unpacked).startsWith('lockstep-kunit-')) rmSync(unpacked, { recursive: true, force: true });
    return cached;
  } catch {
    // another run put its copy there first (or the rename failed): use the one that is whole
    return existsSync(join(cached, 'kunit_parser.py')) ? cached : fresh;
  }
}

const tarball = linuxSourceTarball();
if (!tarball) throw new Error('no /usr/src/linux-source-*.tar.xz: run .ci/setup.sh (apt linux-source-6.1)');
const kunit = cachedKunit(tarball);
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
