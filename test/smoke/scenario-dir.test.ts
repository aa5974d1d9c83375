// One bad file in a --scenario-file directory does not block the others
// (#16 item 7): `lockstep run` reports it (file, field, fix), runs the rest
// on a real kernel (the host's, natively: no VM) and exits 2 at the end.
// Changes host sysctls while it runs: run it under the shared lock.
// Tier: smoke (its subtests moved unchanged from test/scenario-dir.test.ts; the rest is in test/unit/scenario-dir.test.ts).

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'lockstep-scendir-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const scen = join(dir, 'scenarios');
mkdirSync(scen);
const good = { id: 'good-probe', description: 'cites issue #25 (samply); a probe', cpus: 'any', ops: [{ op: 'probe' }] };
writeFileSync(join(scen, 'a-good.json'), JSON.stringify(good));
writeFileSync(join(scen, 'b-bad.json'), JSON.stringify({ ...good, id: 'bad', ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 3 }] }));
writeFileSync(join(scen, 'c-dup.json'), JSON.stringify(good));
writeFileSync(join(scen, 'd-good.json'), JSON.stringify({ ...good, id: 'good-two' }));

t.test('lockstep run: reports the bad files, runs the rest, exits 2', { skip: process.getuid?.() === 0 ? false : 'the host runtime needs root' }, (t) => {
  const kspec = join(dir, 'host.json');
  writeFileSync(kspec, JSON.stringify({ id: 'host', kind: 'host' }));
  const out = join(dir, 'out');
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'lockstep.mjs'), 'run', '--no-builtin-kernels', '--kernel-spec', kspec, '--no-builtin-scenarios', '--scenario-file', scen, '--out', out, '--quiet'], { encoding: 'utf8', timeout: 600_000 });
  t.equal(r.status, 2, `exit 2 (stderr: ${r.stderr})`);
  const lines = r.stderr.split('\n');
  t.ok(lines.some((l) => /^lockstep run: .*b-bad\.json: ops\[0\]\.data_pages: data_pages 3 is neither 0 nor a power of two.*\. Fix: \S/.test(l)), 'the bad file: file, field and fix on one line');
  t.ok(lines.some((l) => /^lockstep run: .*c-dup\.json: id: duplicate scenario id "good-probe".*\. Fix: \S/.test(l)), 'the duplicate: file, field and fix');
  t.ok(lines.some((l) => /2 scenario files could not be loaded .*exit 2/.test(l)), 'a closing line says why the exit is 2');
  const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { cells: { scenario: string; verdict: string }[] };
  t.strictSame(res.cells.map((c) => c.scenario).sort(), ['good-probe', 'good-two'], 'the good scenarios ran');
  for (const c of res.cells) t.ok(['MATCH', 'SKIP'].includes(c.verdict), `${c.scenario}: ${c.verdict}`);
  t.end();
});
