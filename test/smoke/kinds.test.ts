// Smoke coverage of what the other smoke runs do not take: a plain "image"
// spec (a bzImage by path, its expectation worked out from the version it
// declares), and an expectation with an open counter ("V3/unknown": the same
// bzImage declared as 6.6.100, a release lockstep knows no counter fact for;
// issue 24: such a run once crashed the results writer), each booted once,
// and every output command run over the real results: report (HTML, JUnit,
// TAP, table.md), table, classify, diff, export kcidb and export ktap.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import { DEBIAN_SPEC, ROOT } from '../lib/faults-util.ts';
import { smokeRun, type SmokeRecipe } from '../lib/smoke-run.ts';

const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin', 'lockstep.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, GITHUB_STEP_SUMMARY: '' } });

// Debian 6.1.190's vmlinuz (a cache hit when another smoke file fetched it), given as an image.
const deb = await ensureKernel(parseSpec(DEBIAN_SPEC, 'kinds'), { cacheDir: defaultCacheDir(), log: () => {} });
const recipe: SmokeRecipe = {
  name: 'image',
  kernelSpecFiles: [],
  extraSpecs: [
    { id: 'image-6.1.190', kind: 'image', version: '6.1.190', path: deb.vmlinuz, description: 'Debian 6.1.190 as a plain bzImage' },
    { id: 'image-open-counter', kind: 'image', version: '6.6.100', path: deb.vmlinuz, description: 'the same bzImage declared as 6.6.100: no counter fact, V3/unknown' },
  ],
  scenarios: ['baseline', 'remmap'],
};
const shared = await smokeRun(recipe);
// the commands write beside results.json: work on a copy, the shared run stays as made
const dir = mkdtempSync(join(tmpdir(), 'lockstep-kinds-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const run = join(dir, 'run');
cpSync(shared.dir, run, { recursive: true });

t.test('image specs: booted, judged against the expectation of their declared version, an open counter included', (t) => {
  t.equal(shared.code, 0, shared.stderr.slice(-1500));
  const k = (id: string) => shared.results.kernels.find((x) => x.id === id);
  t.match(k('image-6.1.190'), { kind: 'image', version: '6.1.190', expected_logic: 'V3/shared' });
  t.match(k('image-open-counter'), { kind: 'image', version: '6.6.100', expected_logic: 'V3/unknown' });
  t.equal(shared.results.cells.length, 4, '2 kernels x 2 scenarios');
  for (const c of shared.results.cells) t.equal(c.verdict, 'MATCH', `${c.kernel} x ${c.scenario}: ${c.reason ?? ''}`);
  t.equal(shared.results.cells[0]!.qemu_argv![0], 'qemu-system-x86_64');
  // on disk, the open counter's cells keep their expected ops and say why (issue 24)
  const disk = JSON.parse(readFileSync(join(shared.dir, 'results.json'), 'utf8')) as { cells: { kernel: string; expected?: unknown[]; expected_stored?: string }[] };
  const open = disk.cells.filter((c) => c.kernel === 'image-open-counter' && c.expected?.length);
  t.ok(open.length > 0, 'judged open-counter cells keep their expected ops');
  for (const c of open) t.match(c.expected_stored, /open counter/, 'and say why');
  t.end();
});

t.test('every output command over the real results', (t) => {
  const rep = cli('report', run, '--out', join(dir, 'report'));
  t.equal(rep.status, 0, rep.stderr);
  for (const f of ['report.html', 'table.md', 'junit.xml', 'results.tap', 'results.json']) t.ok(existsSync(join(dir, 'report', f)), `report writes ${f}`);
  const tap = cli('report', run, '--tap', '--out', join(dir, 'tap'));
  t.equal(tap.status, 0, tap.stderr);
  t.match(tap.stdout, /^ok \d+ .*image-6\.1\.190/m, 'TAP names the kernel');
  const table = cli('table', run);
  t.equal(table.status, 0, table.stderr);
  t.match(table.stdout, /image-6\.1\.190/);
  const cls = cli('classify', '--json', run);
  t.equal(cls.status, 0, cls.stderr);
  t.doesNotThrow(() => JSON.parse(cls.stdout), 'classify --json is JSON');
  const diff = cli('diff', run, join(run, 'results.json'));
  t.equal(diff.status, 0, diff.stdout + diff.stderr);
  t.match(diff.stdout, /No changes\./);
  const kcidb = cli('export', 'kcidb', run);
  t.equal(kcidb.status, 0, kcidb.stderr);
  t.match(JSON.parse(readFileSync(join(run, 'kcidb.json'), 'utf8')), { version: { major: 5 } });
  const ktap = cli('export', 'ktap', run);
  t.equal(ktap.status, 0, ktap.stderr);
  t.match(ktap.stdout, /^KTAP version 1$/m);
  t.match(ktap.stdout, /image-6\.1\.190/);
  t.end();
});
