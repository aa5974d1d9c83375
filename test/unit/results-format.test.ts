// results.json on disk (lockstep/results@2): provenance once per kernel, no
// expected ops that can be recomputed, and every reader still sees the full
// cells; lockstep/results@1 files still read. Pure.

import t from 'tap';
import { parseLogic, simulate } from '../../src/model/index.ts';
import { simOptionsForVersion } from '../../src/model/simulate.ts';

/** every kernel below is 6.1.192: the version's model options, as src/matrix/run.ts passes them */
const OPTS = simOptionsForVersion('6.1.192');
import { cellsFromOutcome } from '../../src/matrix/cells.ts';
import { checkResults, compactResults, RESULTS_SCHEMA, type Results } from '../../src/results/schema.ts';
import { serializeResults } from '../../src/results/write.ts';
import type { GroupOutcome } from '../../src/runner/runtime.ts';
import { syntheticMeasured } from '../../src/diff/discriminate.ts';
import { builtinScenarios, scenarioHash } from '../../src/scenario/load.ts';

const scen = builtinScenarios().map((l) => l.compiled).filter((s) => s.cpus === 2);

/** as JSON carries it (no undefined fields) */
const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

function run(): Results {
  const cells = (['V3/shared', 'V4/perf'] as const).flatMap((label, k) => {
    const logic = parseLogic(label);
    const kernel = `k${k}`;
    const map = new Map(scen.map((s) => [s.id, { scenario: s.id, ops: syntheticMeasured(s, simulate(s, logic, OPTS)), errors: [], ended: true }]));
    const o: GroupOutcome = {
      status: 'ok', detail: '', faults: [], consoleTail: '', consoleLog: 'logs/x/console.log', resultsLog: null, accel: 'tcg', accelWhy: 'simulated',
      bootMs: 1, wallMs: 2, argv: ['qemu-system-x86_64'], stream: { scenarios: map, order: scen.map((s) => s.id), done: true, garbage: [], garbageCount: 0 },
    };
    const cs = cellsFromOutcome({ kernel, logic, simOpts: OPTS, runtime: 'qemu', startedAt: '2026-01-01T00:00:00.000Z', scenarioHash, rerun: (s) => `x ${s}` }, scen, o);
    for (const c of cs) Object.assign(c, { kernel_version: '6.1.192', kernel_source: `debian:pkg${k}=1`, kernel_config_sha256: 'c'.repeat(64), kernel_artifact_sha256: String(k).repeat(64), qemu_version: 'QEMU emulator version 7.2.0', reproducer_sha256: 'r'.repeat(64), qemu_argv: ['qemu-system-x86_64', '-smp', '2'] });
    return cs;
  });
  return {
    schema: RESULTS_SCHEMA, lockstep_version: 't', started_at: '2026-01-01T00:00:00.000Z', complete: true,
    host: { release: 't', cpus: 2, accel: 'tcg', accel_why: 't' },
    kernels: [0, 1].map((k) => ({ id: `k${k}`, kind: 'image', version: '6.1.192', expected_logic: k ? 'V4/perf' : 'V3/shared', expect_reason: 't', artifact_sha256: null })),
    scenarios: scen.map((s) => ({ id: s.id, hash: scenarioHash(s), cpus: s.cpus, def: s })), cells,
  };
}

t.test('@2 round trip: smaller on disk, the same in memory', async (t) => {
  const r = run();
  const text = serializeResults(r);
  const disk = JSON.parse(text);
  t.equal(disk.schema, 'lockstep/results@2');
  t.ok(disk.cells.every((c: Record<string, unknown>) => c.expected === undefined && c.kernel_source === undefined && c.reproducer_sha256 === undefined && c.qemu_argv === undefined), 'no per-cell expectation or provenance on disk');
  t.same(disk.kernels[1].provenance, { kernel_version: '6.1.192', kernel_source: 'debian:pkg1=1', kernel_config_sha256: 'c'.repeat(64), kernel_artifact_sha256: '1'.repeat(64), qemu_version: 'QEMU emulator version 7.2.0', reproducer_sha256: 'r'.repeat(64), qemu_argv: ['qemu-system-x86_64', '-smp', '2'] });
  const v1 = JSON.stringify({ ...r, schema: 'lockstep/results@1' }, null, 1);
  t.ok(text.length < v1.length * 0.6, `@2 ${text.length} bytes vs @1 ${v1.length}`);
  t.strictSame(checkResults(disk, 'x'), plain(r), 'read back: every cell as the writer had it');
  t.strictSame(checkResults(JSON.parse(v1), 'x'), plain(r), 'an @1 file reads the same');
});

t.test('what cannot be recomputed exactly stays in the cell', async (t) => {
  const r = run();
  r.cells[0]!.expected = r.cells[0]!.expected.map((e) => ({ ...e, pinned: e.pinned + 1 }));
  r.cells[1]!.kernel_source = 'debian:other=2';
  const disk = compactResults(r);
  t.ok(Array.isArray(disk.cells[0]!.expected), 'a non-recomputable expectation is kept');
  t.equal(disk.cells[1]!.kernel_source, 'debian:other=2', 'a differing provenance value is kept');
  t.equal(disk.cells[2]!.kernel_source, undefined);
  t.strictSame(checkResults(JSON.parse(JSON.stringify(disk)), 'x'), plain(r));
});

t.test('an unknown schema is refused with one line', async (t) => {
  t.throws(() => checkResults({ ...run(), schema: 'lockstep/results@9' }, 'f.json'), /schema: unknown results schema "lockstep\/results@9" \(this lockstep reads lockstep\/results@1, lockstep\/results@2\)/);
});

t.test('kernel provenance from typed artifact metadata, one line per kind', async (t) => {
  const { kernelProvenance } = await import('../../src/matrix/provenance.ts');
  t.same(kernelProvenance({ kind: 'debian-image', meta: { package: 'linux-image-x', package_version: '6.1.190-1', config_sha256: 'c'.repeat(64), deb_sha256: 'd' } }),
    { source: 'debian:linux-image-x=6.1.190-1', config_sha256: 'c'.repeat(64) });
  t.same(kernelProvenance({ kind: 'source', meta: { source: 'debian_package:linux-source-6.1', patches: [{ file: 'a.patch', sha256: 'x' }], key: '0123456789abcdef', config_sha256: 'e'.repeat(64) } }),
    { source: 'debian_package:linux-source-6.1 + 1 patch(es), artifact 0123456789ab', config_sha256: 'e'.repeat(64) });
  t.same(kernelProvenance({ kind: 'host', meta: { uname_version: '#1 SMP Debian' } }), { source: 'host: #1 SMP Debian', config_sha256: null });
  t.same(kernelProvenance({ kind: 'image', meta: { url: 'https://x/bzImage', path: '/c/vmlinuz' } }), { source: 'https://x/bzImage', config_sha256: null });
  t.same(kernelProvenance({ kind: 'image', meta: { path: '/srv/bzImage', size: 5 } }), { source: '/srv/bzImage', config_sha256: null });
  t.same(kernelProvenance({ kind: 'debian-image', meta: { package: 7 } }), { source: 'debian:?=', config_sha256: null }, 'a field of the wrong type is not used');
});

t.test('an open counter ("V4/unknown") is written and read back, never an error (issue 24)', async (t) => {
  const { candidateLogics } = await import('../../src/model/index.ts');
  const exp = { accounting: 'V4', counter: 'unknown' } as const;
  const opts = simOptionsForVersion('7.2.11');
  // measured as the perf counter would have it: the diff picks that prediction
  const perf = candidateLogics(exp)[1]!;
  const map = new Map(scen.map((s) => [s.id, { scenario: s.id, ops: syntheticMeasured(s, simulate(s, perf, opts)), errors: [], ended: true }]));
  const o: GroupOutcome = {
    status: 'ok', detail: '', faults: [], consoleTail: '', consoleLog: null, resultsLog: null, accel: 'tcg', accelWhy: 'simulated',
    bootMs: 1, wallMs: 2, argv: ['qemu-system-x86_64'], stream: { scenarios: map, order: scen.map((s) => s.id), done: true, garbage: [], garbageCount: 0 },
  };
  const cells = cellsFromOutcome({ kernel: 'u', logic: exp, simOpts: opts, runtime: 'qemu', startedAt: '2026-01-01T00:00:00.000Z', scenarioHash, rerun: (s) => `x ${s}` }, scen, o);
  t.ok(cells.every((c) => c.verdict === 'MATCH' || c.verdict === 'SKIP'), `every cell MATCH or SKIP: ${cells.filter((c) => c.verdict !== 'MATCH' && c.verdict !== 'SKIP').map((c) => `${c.scenario}=${c.verdict} ${c.reason}`).join('; ')}`);
  const r: Results = {
    schema: RESULTS_SCHEMA, lockstep_version: 't', started_at: '2026-01-01T00:00:00.000Z', complete: true,
    host: { release: 't', cpus: 2, accel: 'tcg', accel_why: 't' },
    kernels: [{ id: 'u', kind: 'image', version: '7.2.11', expected_logic: 'V4/unknown', expect_reason: 't', artifact_sha256: null }],
    scenarios: scen.map((s) => ({ id: s.id, hash: scenarioHash(s), cpus: s.cpus, def: s })), cells,
  };
  let text = '';
  t.doesNotThrow(() => { text = serializeResults(r); }, 'the writer does not throw on an open counter');
  const disk = JSON.parse(text);
  const judged = disk.cells.filter((c: Record<string, unknown>) => (c.expected as unknown[] | undefined)?.length);
  t.ok(judged.length > 0, 'the judged cells keep their expected ops on disk');
  t.ok(judged.every((c: Record<string, unknown>) => /open counter/.test(String(c.expected_stored))), 'and say why');
  t.strictSame(checkResults(disk, 'x').cells.map((c) => c.expected), plain(cells.map((c) => c.expected)), 'read back: the same expected ops');
});

t.test('a cell whose expectation cannot be recomputed keeps it and says why', async (t) => {
  const r = run();
  r.cells[0]!.expected_logic = 'V9/bogus';
  const disk = compactResults(r);
  t.ok(Array.isArray(disk.cells[0]!.expected) && disk.cells[0]!.expected.length > 0, 'kept');
  t.match(disk.cells[0]!.expected_stored, /cannot recompute the expected ops \(not a logic label/);
});
