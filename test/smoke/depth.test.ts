// Scenario depth: the new ops (ballast via bpf, worker exit) and scenarios
// (bpf-ballast, exit-returns, buffer-sizes) from the file format through the
// simulator to real measurements on the host kernel.
// Tier: smoke (its subtests moved unchanged from test/depth.test.ts; the rest is in test/unit/depth.test.ts).

import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { builtinSpecsDir, loadSpecFile } from '../../src/kernels/spec.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { hostOffer, hostOnlineCpus } from '../../src/runner/host.ts';
import { skipReason } from '../../src/scenario/skip.ts';
import { builtinScenarios, scenarioNeeds } from '../../src/scenario/load.ts';
import { userLockLimit } from '../../src/scenario/ops.ts';
import type { CellResult } from '../../src/results/schema.ts';

const byId = new Map(builtinScenarios().map((l) => [l.id, l.compiled]));
const get = (id: string) => byId.get(id)!;
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
