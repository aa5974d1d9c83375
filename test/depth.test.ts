// Scenario depth: the new ops (ballast via bpf, worker exit) and scenarios
// (bpf-ballast, exit-returns, buffer-sizes) from the file format through the
// simulator to real measurements on the host kernel.

import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir } from '../src/kernels/artifact.ts';
import { builtinSpecsDir, loadSpecFile } from '../src/kernels/spec.ts';
import { runMatrix } from '../src/matrix/run.ts';
import { hostOffer, hostOnlineCpus } from '../src/runner/host.ts';
import { skipReason } from '../src/scenario/skip.ts';
import { ALL_LOGICS, logicLabel, simulate } from '../src/model/index.ts';
import { builtinScenarios, compileScenario, scenarioNeeds } from '../src/scenario/load.ts';
import { toScript, userLockLimit } from '../src/scenario/ops.ts';
import type { CellResult } from '../src/results/schema.ts';
import { ConfigError } from '../src/util/errors.ts';

const byId = new Map(builtinScenarios().map((l) => [l.id, l.compiled]));
const get = (id: string) => byId.get(id)!;
const base = (ops: unknown[]): Record<string, unknown> => ({ id: 't', description: 'a test', cpus: 2, ops });

const configError = (t: Test, f: () => unknown, field: string, re: RegExp, what: string): void => {
  try {
    f();
    t.fail(`${what}: expected a ConfigError`);
  } catch (e) {
    t.ok(e instanceof ConfigError, `${what}: a ConfigError`);
    t.equal((e as ConfigError).field, field, `${what}: names ${field}`);
    t.match((e as ConfigError).message, re, `${what}: says why`);
  }
};

t.test('the file format: bpf ballast and exit', (t) => {
  const s = compileScenario(base([{ op: 'ballast', via: 'bpf', pages: 'L-8' }, { op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'exit' }, { op: 'map', buf: 'a', cpu: 1, data_pages: 2 }]), 'f.json');
  t.strictSame(s.ops, [
    { op: 'ballast', via: 'bpf', pages: 250 },
    { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
    { op: 'exit' },
    { op: 'map', buf: 'a', cpu: 1, data_pages: 2 },
  ], '"L-8" is 250 pages at 2 CPUs, and the exit frees the name "a"');
  t.match(toScript(s, 4242), /\nballast bpf 250\nmap a 0 2\nexit\nmap a 1 2\nend\n$/, 'protocol lines');

  configError(t, () => compileScenario(base([{ op: 'exit' }]), 'f.json'), 'ops[0].op', /per-user counter would die/, 'exit with no helper alive');
  configError(t, () => compileScenario(base([{ op: 'ballast', via: 'bpf', buffers: [1] }]), 'f.json'), 'ops[0].buffers', /takes "pages"/, 'bpf ballast with buffers');
  configError(t, () => compileScenario(base([{ op: 'ballast', via: 'bpf' }]), 'f.json'), 'ops[0].pages', /missing "pages"/, 'bpf ballast without pages');
  configError(t, () => compileScenario(base([{ op: 'exit', now: true }]), 'f.json'), 'ops[0].now', /unknown field/, 'exit takes no fields');
  configError(
    t,
    () => compileScenario(base([{ op: 'ballast', via: 'perf', buffers: [] }, { op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'exit' }, { op: 'unmap', buf: 'a' }]), 'f.json'),
    'ops[3].buf',
    /already unmapped/,
    'a buffer of the dead worker',
  );
  t.end();
});

t.test('buffer-sizes: every size costs data pages + 1, V0 vs the rest at the spill', (t) => {
  const s = get('buffer-sizes');
  const L = userLockLimit(516, 2);
  const maps = s.ops.flatMap((o, i) => (o.op === 'map' ? [{ i, d: o.data_pages }] : []));
  t.strictSame(maps.map((m) => m.d), [0, 1, 2, 8, 64, 0, 1, 2, 8, 64], 'sizes 0, 1, 2, 8, 64 twice: below L, then across and above it');
  const v3 = simulate(s, { accounting: 'V3', counter: 'perf' });
  const v0 = simulate(s, { accounting: 'V0', counter: 'perf' });
  // Below L: U grows by d + 1 per map, nothing pinned.
  t.strictSame(maps.slice(0, 4).map((m) => v3[m.i]!.user), [L - 79, L - 77, L - 74, L - 65]);
  // The 64-page buffer crosses L by 0 pages exactly (L-65 + 65 = L); then everything spills.
  t.strictSame(maps.slice(4).map((m) => v3[m.i]!.pinned), [0, 1, 3, 6, 15, 80], 'V1..V4: only the new pages spill');
  t.strictSame(maps.slice(4).map((m) => v0[m.i]!.pinned), [0, 1, 4, 10, 25, 105], 'V0: each map pins the whole overage again');
  t.end();
});

t.test('exit-returns: what each logic leaves behind', (t) => {
  const s = get('exit-returns');
  const probes = (logic: (typeof ALL_LOGICS)[number]) => simulate(s, logic).flatMap((e, i) => (s.ops[i]!.op === 'probe' ? [e.headroom] : []));
  for (const logic of ALL_LOGICS) {
    t.strictSame(probes(logic), logic.accounting === 'V4' ? [4, 0, 4, 0, 0, 0] : [4, 0, 4, 4, 4, 1], `${logicLabel(logic)}: probes`);
  }
  t.end();
});

// ---------------------------------------------------------------------------
// Real measurements on the host kernel (6.18: V4 with the shared counter, BPF on memcg)

t.test('host kernel: the new scenarios measured', async (t) => {
  const specs = await loadSpecFile(join(builtinSpecsDir(), 'host.json'));
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-depth-'));
  const ids = ['bpf-ballast', 'exit-returns', 'buffer-sizes'];
  const r = await runMatrix({
    kernels: specs, scenarios: ids.map(get), outDir: dir, cacheDir: defaultCacheDir(),
    jobs: 1, opTimeoutS: 60, log: () => {}, rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  const cell = (id: string): CellResult => r.cells.find((c) => c.scenario === id)!;
  const probes = (c: CellResult) => c.measured.filter((m) => m.op === 'probe').map((m) => m.headroom);
  // Expectations from the host this runs on: "any" scenarios run at its online count,
  // pinned ones (exit-returns, buffer-sizes: 2 CPUs) SKIP where the host has another count.
  const hostCpus = hostOnlineCpus();
  for (const id of ids) {
    const s = get(id);
    const why = skipReason(scenarioNeeds(s), hostOffer());
    if (why) t.match(cell(id), { verdict: 'SKIP', reason: why }, `${id}: SKIP on this host (${why})`);
    else t.equal(cell(id).verdict, 'MATCH', `${id}: ${cell(id).reason ?? 'MATCH'}`);
  }

  const bpf = cell('bpf-ballast');
  t.equal(bpf.cpus, hostCpus, 'bpf-ballast ("cpus": "any") ran at the host\'s online count');
  if (bpf.verdict !== 'SKIP') {
    const ballast = bpf.measured.find((m) => m.op === 'ballast')!;
    t.equal(ballast.mapped, 100, 'the helper created BPF maps worth 100 pages');
    const L = userLockLimit(get('bpf-ballast').mlock_kb, hostCpus);
    t.strictSame(probes(bpf).slice(0, 2), [L, L], `they do not touch perf headroom on 6.18 (memcg since 5.11): L = ${L} pages on ${hostCpus} CPUs`);
  }

  if (cell('exit-returns').verdict !== 'SKIP') {
    const ex = cell('exit-returns');
    t.strictSame(probes(ex), [4, 0, 4, 0, 0, 0], 'exit gives back, re-mmap charges stay with the uid (V4)');
    const exits = ex.measured.filter((m) => m.op === 'exit');
    t.equal(exits.length, 2);
    t.ok(exits.every((m) => m.ok && m.vmpin_kb === 0), 'the new worker pins nothing');
  }
  if (cell('buffer-sizes').verdict !== 'SKIP') {
    t.strictSame(cell('buffer-sizes').pinned_measured, [0, 0, 0, 0, 0, 1, 3, 6, 15, 80], 'VmPin per map in pages, sizes 0..64 across L');
  }
  await rm(dir, { recursive: true, force: true });
});
