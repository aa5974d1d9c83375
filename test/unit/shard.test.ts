// Sharding and merging. Pure logic first (assignment, identity, refusals,
// a 200 kernels x 50 scenarios matrix planned, sharded, merged and reported
// from simulated cells), then a real matrix (host + Debian 6.1.190 in QEMU)
// run whole and as 3 shards through the CLI, merged, and compared cell by cell.
// Tier: unit (its subtests moved unchanged from test/shard.test.ts; the rest is in test/smoke/shard.test.ts).

import t from 'tap';
import { ALL_LOGICS, logicLabel, simulate } from '../../src/model/index.ts';
import { cellsFromOutcome } from '../../src/matrix/cells.ts';
import { planGroups } from '../../src/matrix/plan.ts';
import { assignShards, matrixIdentity, mergeResults, parseShard, shardGroups } from '../../src/matrix/shard.ts';
import { classifyAll, scenarioDefs } from '../../src/report/analysis.ts';
import { renderHtml } from '../../src/report/html.ts';
import { renderJunit } from '../../src/report/junit.ts';
import { renderTap } from '../../src/report/tap.ts';
import { RESULTS_SCHEMA, checkResults, type CellResult, type Results } from '../../src/results/schema.ts';
import type { GroupOutcome } from '../../src/runner/runtime.ts';
import { syntheticMeasured } from '../../src/diff/discriminate.ts';
import { builtinScenarios, scenarioHash } from '../../src/scenario/load.ts';
import type { CompiledScenario } from '../../src/scenario/ops.ts';
import { ConfigError } from '../../src/util/errors.ts';

const builtins = builtinScenarios().map((l) => l.compiled);

t.test('parseShard', async (t) => {
  t.same(parseShard('2/4'), { index: 2, count: 4 });
  t.same(parseShard('1/1'), { index: 1, count: 1 });
  for (const bad of ['0/4', '5/4', '2', 'a/b', '1/0', '-1/2', '1/1001']) t.throws(() => parseShard(bad), ConfigError, bad);
});

// A synthetic matrix: 50 scenarios (the built-ins under new ids, with 2/4/8 CPUs) and N kernels.
const scenarios50: CompiledScenario[] = Array.from({ length: 50 }, (_, j) => {
  const b = builtins.filter((s) => s.cpus === 2 && !s.ops.some((o) => o.op === 'cpu'))[j % 12]!;
  // pinned copies: a spread copy of an "any" built-in has no source to recompile from
  const { cpus_any: _any, ...pinned } = b;
  return { ...pinned, id: `s${String(j).padStart(2, '0')}-${b.id}`, cpus: [2, 4, 8][j % 3]! };
});
const kernelsN = (n: number) => Array.from({ length: n }, (_, k) => ({ id: `k${String(k).padStart(3, '0')}`, runtime: (k === 0 ? 'host' : 'qemu') as 'host' | 'qemu' }));

t.test('shard assignment: every group exactly once, independent of list order, balanced', async (t) => {
  const groups = planGroups(kernelsN(40), scenarios50.slice(0, 9));
  for (const n of [1, 2, 3, 4, 7, 200]) {
    const seen = new Map<string, number>();
    for (let i = 1; i <= n; i++) for (const g of shardGroups(groups, { index: i, count: n })) seen.set(g.key, (seen.get(g.key) ?? 0) + 1);
    t.equal(seen.size, groups.length, `${n} shards cover all ${groups.length} groups`);
    t.ok([...seen.values()].every((v) => v === 1), `${n} shards: no group twice`);
  }
  const a = assignShards(groups, 4);
  const shuffled = [...groups].reverse().sort((x, y) => (x.kernel.charCodeAt(3) % 3) - (y.kernel.charCodeAt(3) % 3));
  t.same([...assignShards(shuffled, 4)].sort(), [...a].sort(), 'assignment does not depend on the order of the groups');
  // Every scenario of a group lands together: shard sets of cells never split a boot.
  const loads = [1, 2, 3, 4].map((i) => shardGroups(groups, { index: i, count: 4 }).length);
  t.ok(Math.max(...loads) - Math.min(...loads) <= 2, `balanced group counts ${loads}`);
});

t.test('matrix identity: order-independent, content-sensitive', async (t) => {
  const s = builtins.slice(0, 3).map((x) => ({ id: x.id, hash: scenarioHash(x) }));
  const a = matrixIdentity(['host', 'debian-6.1.190'], s);
  t.equal(matrixIdentity(['debian-6.1.190', 'host'], [...s].reverse()).hash, a.hash);
  t.not(matrixIdentity(['host'], s).hash, a.hash, 'a kernel fewer');
  t.not(matrixIdentity(['host', 'debian-6.1.190'], [{ ...s[0]!, hash: 'x' }, ...s.slice(1)]).hash, a.hash, 'same ids, changed scenario content');
});

/** Cells as the executor would make them from a kernel that implements `logic` exactly. */
function simulatedCells(kernel: string, logic: (typeof ALL_LOGICS)[number], scen: CompiledScenario[], cpus: number): CellResult[] {
  const map = new Map(scen.map((s) => [s.id, { scenario: s.id, ops: syntheticMeasured(s, simulate(s, logic)), errors: [], ended: true }]));
  const outcome: GroupOutcome = {
    status: 'ok', detail: '', faults: [], consoleTail: '', consoleLog: null, resultsLog: null, accel: 'tcg', accelWhy: 'simulated',
    bootMs: 1000, wallMs: 2000, argv: ['qemu-system-x86_64', '-smp', String(cpus)],
    stream: { scenarios: map, order: scen.map((s) => s.id), done: true, garbage: [], garbageCount: 0 },
  };
  return cellsFromOutcome({ kernel, logic, runtime: 'qemu', startedAt: '2026-01-01T00:00:00.000Z', scenarioHash, rerun: (s) => `lockstep run --kernels ${kernel} --scenarios ${s}` }, scen, outcome);
}

t.test('200 kernels x 50 scenarios: planned, sharded, merged, classified and reported from simulated cells', async (t) => {
  const kernels = kernelsN(200);
  const groups = planGroups(kernels, scenarios50);
  t.equal(groups.length, 600, '200 kernels x 3 CPU counts');
  const scen = scenarios50.map((s) => ({ id: s.id, hash: scenarioHash(s), cpus: s.cpus, def: s }));
  const matrix = matrixIdentity(kernels.map((k) => k.id), scen);
  const logicOf = (k: string) => ALL_LOGICS[Number(k.slice(1)) % ALL_LOGICS.length]!;
  const N = 8;
  const shards: Results[] = [];
  for (let i = 1; i <= N; i++) {
    const mine = shardGroups(groups, { index: i, count: N });
    const cells = mine.flatMap((g) => simulatedCells(g.kernel, logicOf(g.kernel), g.scenarios, g.cpus));
    const ks = [...new Set(mine.map((g) => g.kernel))];
    shards.push(checkResults(JSON.parse(JSON.stringify({
      schema: RESULTS_SCHEMA, lockstep_version: 'test', started_at: `2026-01-01T00:00:0${i}.000Z`, finished_at: `2026-01-01T01:00:0${i}.000Z`, complete: true,
      host: { release: 'sim', cpus: 2, accel: 'tcg', accel_why: 'simulated' },
      kernels: ks.map((id) => ({ id, kind: 'image', version: '6.1.0', expected_logic: logicLabel(logicOf(id)), expect_reason: 'simulated', artifact_sha256: null })),
      scenarios: scen, matrix, shard: { index: i, count: N, groups: mine.map((g) => g.key) }, cells,
    })), `shard-${i}`));
  }
  const { merged, warnings } = mergeResults(shards.map((r, i) => ({ path: `shard-${i + 1}`, results: r })));
  t.same(warnings, []);
  t.equal(merged.cells.length, 200 * 50, 'every cell once');
  t.ok(merged.complete);
  t.equal(merged.started_at, '2026-01-01T00:00:01.000Z');
  t.equal(merged.finished_at, '2026-01-01T01:00:08.000Z');
  t.ok(merged.cells.every((c) => c.verdict === 'MATCH'), 'simulated kernels match their own logic');
  t.same(merged.kernels.map((k) => k.id), kernels.map((k) => k.id), 'kernels in matrix order');

  const defs = scenarioDefs(merged);
  const logic = classifyAll(merged, defs);
  for (const k of ['k000', 'k001', 'k007', 'k199']) {
    const fits = logic.get(k)!.fits!;
    t.ok(fits.some((l) => logicLabel(l) === logicLabel(logicOf(k))), `${k}: its own logic fits (${logic.get(k)!.label})`);
  }
  const html = renderHtml(merged, { defs, logic });
  t.equal((html.match(/<svg /g) ?? []).length, 200, 'one plot per kernel');
  t.equal((html.match(/<td class="cell /g) ?? []).length, 10_000, 'one table cell per result cell');
  t.equal((renderJunit(merged).match(/<testcase /g) ?? []).length, 10_000);
  t.match(renderTap(merged), /^TAP version 14\n1\.\.10000\n/);

  t.throws(() => mergeResults([{ path: 'a', results: shards[0]! }, { path: 'b', results: shards[0]! }]), /also in a/, 'overlap refused');
  const other = { ...shards[1]!, matrix: matrixIdentity(['k000'], scen) };
  t.throws(() => mergeResults([{ path: 'a', results: shards[0]! }, { path: 'b', results: other }]), /different matrix/, 'other matrix refused');
  const partial = mergeResults(shards.slice(0, 3).map((r, i) => ({ path: `s${i}`, results: r })));
  t.notOk(partial.merged.complete, 'missing shards: incomplete');
  t.match(partial.warnings.join('\n'), /missing shard\(s\) 4\/8, 5\/8/);
});

// ---------------------------------------------------------------------------
// Real: host + Debian 6.1.190 under QEMU, 5 scenarios in two CPU counts (4 boots).
