// The classifier: which logic a kernel behaves like, from its measured cells
// only, with the evidence. Pure tests over synthetic kernels (what a kernel
// implementing exactly one logic would print), then real measurements of
// three kernels that differ: the host (6.18, V4/shared), Debian 6.1.190
// (V3/shared) and Debian 6.1.192 (V3/perf), each once with its expected
// logic (MATCH cells) and once with expect: unknown (UNCHECKED cells).
// Tier: integration (its subtests moved unchanged from test/classify.test.ts; the rest is in test/unit/classify.test.ts, test/smoke/classify.test.ts).

import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyKernel } from '../../src/diff/evidence.ts';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { usesAux } from '../../src/scenario/ops.ts';

const scenarios = builtinScenarios().map((l) => l.compiled);
const two = scenarios.filter((s) => s.cpus === 2);
t.test('every kernel of the default matrix is classified as the logic it is meant to implement, from its cells alone', async (t) => {
  // The built-in specs: host, host-container, the Debian kernels and the
  // variant kernels built from linux-source-6.1 (cached by test/build.test.ts;
  // built here otherwise). The 2-CPU built-ins run on every one of them.
  const { builtinSpecs } = await import('../../src/kernels/spec.ts');
  const specs = await builtinSpecs();
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-classify-all-'));
  const r = await runMatrix({
    kernels: specs, scenarios: two, outDir: dir, cacheDir: defaultCacheDir(),
    jobs: 2, opTimeoutS: 60, log: (l) => t.comment(l), rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  // Where AUX cells ran (source kernels: lockstep_aux built in; Debian images whose headers build it)
  // V1 and V1a stand alone and V1b|V3 stay one class; elsewhere (no PMU: the AUX cells SKIP) the V1
  // family is one class, V1|V3.
  const auxIds = new Set(two.filter(usesAux).map((s) => s.id));
  const classOf = (label: string, aux: boolean): string => (aux ? label.replace(/^(V1b|V3)\//, 'V1b|V3/') : label.replace(/^(V1a|V1b|V1|V3)\//, 'V1|V3/'));
  for (const k of r.kernels) {
    const c = classifyKernel(r, k.id);
    const cells = r.cells.filter((x) => x.kernel === k.id);
    const auxRan = cells.some((x) => auxIds.has(x.scenario) && x.verdict !== 'SKIP');
    if (k.kind === 'source') t.ok(auxRan, `${k.id}: the AUX scenarios ran (the PMU is built in)`);
    for (const x of cells.filter((x) => auxIds.has(x.scenario) && x.verdict === 'SKIP')) t.match(x.reason, /lockstep_aux PMU/, `${k.id}: ${x.scenario} SKIPs with the measured reason`);
    t.ok(k.expected_logic, `${k.id}: has an expected logic`);
    // an open counter ("V3/unknown": a stable line where nothing is known of the perf_mlock split, e.g. bullseye's newest 5.10)
    // is settled by the measurement: the accounting must be the expected one, the counter either of the two
    const open = /^(.+)\/unknown$/.exec(k.expected_logic!);
    const want = open ? ['shared', 'perf'].map((ctr) => classOf(`${open[1]}/${ctr}`, auxRan)) : [classOf(k.expected_logic!, auxRan)];
    t.ok(want.includes(c.label), `${k.id}: classified ${c.label}, expected ${k.expected_logic} (${want.join(' or ')}), from ${c.scenarios.length} cells`);
  }
  const labels = new Set(r.kernels.map((k) => classifyKernel(r, k.id).label));
  t.ok(['V0/shared', 'V2/shared', 'V4/shared', 'V1/shared', 'V1a/shared', 'V1b|V3/shared', 'V1b|V3/perf', 'V1|V3/perf'].every((l) => labels.has(l)), `the matrix spans the logics: ${[...labels].join(', ')}`);
  await rm(dir, { recursive: true, force: true });
});
