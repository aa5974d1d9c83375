// One bad file in a --scenario-file directory does not block the others
// (#16 item 7): `lockstep run` reports it (file, field, fix), runs the rest
// on a real kernel (the host's, natively: no VM) and exits 2 at the end.
// Changes host sysctls while it runs: run it under the shared lock.
// Tier: unit (its subtests moved unchanged from test/scenario-dir.test.ts; the rest is in test/smoke/scenario-dir.test.ts).

import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioDirEach } from '../../src/scenario/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-scendir-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const scen = join(dir, 'scenarios');
mkdirSync(scen);
const good = { id: 'good-probe', description: 'cites issue #25 (samply); a probe', cpus: 'any', ops: [{ op: 'probe' }] };
writeFileSync(join(scen, 'a-good.json'), JSON.stringify(good));
writeFileSync(join(scen, 'b-bad.json'), JSON.stringify({ ...good, id: 'bad', ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 3 }] }));
writeFileSync(join(scen, 'c-dup.json'), JSON.stringify(good));
writeFileSync(join(scen, 'd-good.json'), JSON.stringify({ ...good, id: 'good-two' }));

t.test('the loader keeps the good files and names each bad one', (t) => {
  const r = loadScenarioDirEach(scen);
  t.strictSame(r.loaded.map((s) => s.id), ['good-probe', 'good-two']);
  t.strictSame(r.errors.map((e) => [e.file.replace(`${scen}/`, ''), e.field]), [['b-bad.json', 'ops[0].data_pages'], ['c-dup.json', 'id']]);
  t.end();
});
