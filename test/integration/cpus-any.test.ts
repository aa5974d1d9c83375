// Portable scenarios ("cpus": "any", issue 15 item 1): the count is open,
// the allowance and the prediction follow the CPUs a run really had. Pure
// tests of the schema, the compiler, the planner and the model's prediction,
// then one real Debian 6.1 kernel booted at 1, 2, 4 and 8 vCPUs in ONE run,
// every portable scenario asserted MATCH at every count.
// Tier: integration (its subtests moved unchanged from test/cpus-any.test.ts; the rest is in test/unit/cpus-any.test.ts).

import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { builtinSpecsDir, loadSpecFile } from '../../src/kernels/spec.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { userLockLimit, usesAux } from '../../src/scenario/ops.ts';

const loaded = builtinScenarios();
const portable = loaded.filter((l) => l.source.cpus === 'any').map((l) => l.compiled);
const get = (id: string) => loaded.find((l) => l.id === id)!.compiled;

// ---------------------------------------------------------------------------
// Real: one Debian 6.1 kernel, 1/2/4/8 vCPUs in one run (heavy: under the lock).

t.test('Debian 6.1.190 in QEMU at 1, 2, 4 and 8 vCPUs: every portable scenario MATCHes', async (t) => {
  const specs = await loadSpecFile(join(builtinSpecsDir(), 'debian-6.1.190.json'));
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-portable-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const counts = [1, 2, 4, 8];
  // memfd-secret SKIPs on Debian 6.1 whatever the count (secretmem is off there by default); the AUX
  // scenarios need lockstep_aux built against Debian's headers, which test/debian-aux.test.ts covers
  const here = portable.filter((s) => s.id !== 'memfd-secret' && !usesAux(s));
  const r = await runMatrix({
    kernels: specs, scenarios: here, outDir: dir, cacheDir: defaultCacheDir(), anyCpus: counts,
    jobs: 1, opTimeoutS: 60, log: () => {}, rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  t.equal(r.cells.length, counts.length * here.length, 'one cell per scenario and count');
  for (const n of counts) {
    const at = r.cells.filter((c) => c.cpus === n);
    t.equal(at.length, here.length, `${here.length} cells at ${n} vCPUs`);
    for (const c of at) t.equal(c.verdict, 'MATCH', `${n} vCPUs, ${c.scenario}: ${c.reason ?? ''}`);
    // the allowance measured is the one for the count the guest had
    const b = at.find((c) => c.scenario === 'baseline')!;
    const first = b.measured.find((m) => m.op === 'probe');
    if (first?.op === 'probe') t.equal(first.headroom, userLockLimit(get('baseline').mlock_kb, n), `baseline at ${n} vCPUs: L measured`);
  }
  // every count's def is stored, found by the cell's hash
  for (const c of r.cells) t.ok(r.scenarios.some((s) => s.hash === c.scenario_hash && s.def?.cpus === c.cpus), `${c.scenario}@${c.cpus}: def stored`);
});
