// The lockstep_aux software PMU in a real guest (issue 18): one boot of the
// fix-5 kernel (Debian linux-source-6.1 with V3 on user->locked_vm, the PMU
// built in by the source build) runs aux-unmap and aux-remap; every op's VmPin
// and every probed per-user headroom is asserted against numbers worked out
// by hand from the kernel's rules (shared/kernel-history.md), not from the
// simulator, and the cells must also MATCH the model.
// Heavy (builds the kernel if it is not cached, boots QEMU): run under
// flock /tmp/lockstep-heavy.lock.

import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { builtinSpecsDir, loadSpecFile } from '../../src/kernels/spec.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';

t.test('lockstep_aux in a guest: AUX map, unmap, map again; VmPin and probed headroom after each op', async (t) => {
  const specs = await loadSpecFile(join(builtinSpecsDir(), 'variant-fix-5.json'));
  const loaded = builtinScenarios().filter((s) => s.id === 'aux-unmap' || s.id === 'aux-remap');
  t.equal(loaded.length, 2);
  // Both are "cpus": "any": run at the 2 vCPUs of the boot, so L = 129 * 2 = 258 pages.
  const scenarios = loaded.map((s) => s.compiled);
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-aux-pmu-'));
  const r = await runMatrix({
    kernels: specs, scenarios, outDir: dir, cacheDir: defaultCacheDir(), anyCpus: [2],
    jobs: 1, opTimeoutS: 60, log: (l) => t.comment(l), rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  const hello = (await readFile(join(dir, 'logs', 'fix-5@2cpu', 'results.jsonl'), 'utf8')).split('\n')[0]!;
  const type = (JSON.parse(hello) as { aux_pmu?: number }).aux_pmu;
  t.ok(typeof type === 'number' && type > 0, `the guest found the PMU in sysfs: type ${type}`);
  const cell = (id: string) => r.cells.find((c) => c.scenario === id)!;
  const series = (id: string) => cell(id).measured.map((m) => [m.op, m.ok, m.vmpin_kb, m.headroom ?? null]);

  // aux-unmap: ballast L-4 = 254 -> U 254; ring of 1 data page (2 pages to U) -> U 256 = L - 2;
  // 8-page AUX area: 2 to U (U = L), 6 pinned (24 kB); V3 (36b3db03b474) gives exactly that back.
  t.strictSame(series('aux-unmap'), [
    ['ballast', true, 0, null],
    ['aux_ring', true, 0, null],
    ['probe', true, 0, 2],
    ['aux_map', true, 24, null],
    ['probe', true, 24, 0],
    ['aux_unmap', true, 0, null],
    ['probe', true, 0, 2],
    ['aux_map', true, 24, null],
    ['probe', true, 24, 0],
    ['aux_unmap', true, 0, null],
    ['probe', true, 0, 2],
    ['unmap', true, 0, null],
    ['probe', true, 0, 4],
  ], 'aux-unmap: VmPin (kB) and headroom (pages) after each op');
  t.equal(cell('aux-unmap').verdict, 'MATCH', 'and the model agrees');

  // aux-remap: ring 2 pages + AUX 4 pages, all under L; a second mapping of the AUX area charges
  // nothing before v6.15; unmapping both gives the 4 back; a third mapping charges them again.
  t.strictSame(series('aux-remap'), [
    ['aux_ring', true, 0, null],
    ['aux_map', true, 0, null],
    ['probe', true, 0, 252],
    ['aux_map', true, 0, null],
    ['probe', true, 0, 252],
    ['aux_unmap', true, 0, null],
    ['probe', true, 0, 252],
    ['aux_unmap', true, 0, null],
    ['probe', true, 0, 256],
    ['aux_map', true, 0, null],
    ['probe', true, 0, 252],
    ['unmap', true, 0, null],
    ['probe', true, 0, 258],
  ], 'aux-remap: VmPin (kB) and headroom (pages) after each op');
  t.equal(cell('aux-remap').verdict, 'MATCH', 'and the model agrees');
  await rm(dir, { recursive: true, force: true });
});
