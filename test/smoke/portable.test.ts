// A nightly's run, for real: the host kernel and Debian 6.1.190 in QEMU,
// whose first boot is made to fail (a real QEMU given a kernel image that
// does not exist: $LOCKSTEP_TEST_FAIL_FIRST_BOOTS). The retry boots again
// and passes: two attempts in each cell, a pass marked flaky. Then no output
// file holds a path of this machine (cwd, $HOME, the temp dir), logs link
// under --artifact-base-url, and a cell's re-run command works from the
// checkout as written.

import t from 'tap';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEBIAN_ID, lockstep, ROOT, tmp } from '../lib/faults-util.ts';

const dir = tmp('portable');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, 'run');

function files(d: string): string[] {
  return readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

t.test('a boot that fails once: retried, two attempts, a flaky pass; results without machine paths', async (t) => {
  const r = await lockstep(['run', '--kernels', `host,${DEBIAN_ID}`, '--scenarios', 'baseline,remmap', '--attempts', '2', '--jobs', '1', '--out', out,
    '--artifact-base-url', 'https://ci.example.org/runs/42/'], { env: { LOCKSTEP_TEST_FAIL_FIRST_BOOTS: '1' } });
  t.equal(r.code, 0, `every cell passed in the end: exit 0\n${r.stderr.slice(-2000)}`);
  t.match(r.stderr, /attempt 1: .*BOOT_FAIL.*retrying in a fresh boot \(attempt 2 of 2\)/);
  const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { cells: { kernel: string; scenario: string; verdict: string; flaky?: boolean; attempts?: { attempt: number; verdict: string; console_log: string | null }[]; console_log: string; rerun: string }[] };
  for (const s of ['baseline', 'remmap']) {
    const c = res.cells.find((x) => x.kernel === DEBIAN_ID && x.scenario === s)!;
    t.equal(c.verdict, 'MATCH', `${s}: a pass`);
    t.equal(c.flaky, true, `${s}: marked flaky`);
    t.same(c.attempts?.map((a) => [a.attempt, a.verdict]), [[1, 'BOOT_FAIL'], [2, 'MATCH']], `${s}: both attempts recorded`);
    t.equal(c.console_log, `logs/${DEBIAN_ID}@2cpu.attempt-2/console.log`, 'the log of the boot that counted, relative to the results directory');
    t.ok(statSync(join(out, c.console_log)).size > 1000, 'and it is there');
  }
  const h = res.cells.find((x) => x.kernel === 'host' && x.scenario === 'remmap')!;
  t.equal(h.flaky, undefined, 'the host ran once');
  t.equal(h.attempts, undefined);
  const table = readFileSync(join(out, 'table.md'), 'utf8');
  t.match(table, new RegExp(`\\| ${DEBIAN_ID} .*MATCH - \\(flaky: 2 boots\\)`), 'the table shows it');
  t.match(table, /## Retried cells/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  t.match(html, /<small class="flaky" data-attempts="2">flaky: BOOT_FAIL, then MATCH<\/small>/, 'so does the report');
  t.match(html, new RegExp(`<a href="https://ci\\.example\\.org/runs/42/logs/${DEBIAN_ID.replace(/\./g, '\\.')}%402cpu\\.attempt-2/console\\.log"><code>logs/`), 'log paths link under --artifact-base-url');

  // No absolute path of this machine in anything the run wrote.
  const needles = [ROOT.replace(/\/$/, ''), process.cwd(), homedir(), tmpdir()].filter((p) => p.length > 1);
  const all = files(out);
  t.ok(all.length >= 10, `${all.length} files`);
  for (const f of all) {
    const text = readFileSync(f, 'latin1');
    for (const n of needles) t.notOk(text.includes(n), `${f.slice(out.length + 1)} does not contain ${n}`);
  }

  // The re-run command works from the checkout as written (only the output directory added).
  t.match(h.rerun, /^node bin\/lockstep\.mjs run --kernels host --scenarios remmap$/);
  const again = await lockstep([...h.rerun.split(' ').slice(2), '--out', join(dir, 'rerun'), '--quiet']);
  t.equal(again.code, 0, again.stderr);
  const r2 = JSON.parse(readFileSync(join(dir, 'rerun', 'results.json'), 'utf8')) as { cells: { kernel: string; scenario: string; verdict: string }[] };
  t.same(r2.cells.map((c) => [c.kernel, c.scenario, c.verdict]), [['host', 'remmap', 'MATCH']]);
});
