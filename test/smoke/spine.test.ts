// The spine end to end on real kernels: a real Debian kernel booted in QEMU
// and the host kernel, each running real scenarios through the reproducer,
// with the measured ops asserted (not just the verdicts). The Debian cells
// are read from the smoke tier's shared run.

import t from 'tap';
import { join } from 'node:path';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { builtinSpecsDir, loadSpecFile } from '../../src/kernels/spec.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { builtinScenarios, compileAtCpus, scenarioNeeds } from '../../src/scenario/load.ts';
import { userLockLimit } from '../../src/scenario/ops.ts';
import { type CellResult, type Results, RESULTS_SCHEMA } from '../../src/results/schema.ts';
import { hostOffer, hostOnlineCpus } from '../../src/runner/host.ts';
import { skipReason } from '../../src/scenario/skip.ts';
import { BASE_RECIPE, smokeRun } from '../lib/smoke-run.ts';

const scenarios = builtinScenarios().map((l) => l.compiled);
const pickScenarios = (ids: string[]) => ids.map((id) => scenarios.find((s) => s.id === id)!);
// Only the specs this test boots, so an unrelated spec file cannot break it.
const specs = [...(await loadSpecFile(join(builtinSpecsDir(), 'debian-6.1.190.json'))), ...(await loadSpecFile(join(builtinSpecsDir(), 'host.json')))];
const spec = (id: string) => specs.find((s) => s.id === id)!;

async function run(kernels: string[], scenarioIds: string[]): Promise<{ r: Results; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-spine-'));
  const r = await runMatrix({
    kernels: kernels.map(spec), scenarios: pickScenarios(scenarioIds), outDir: dir, cacheDir: defaultCacheDir(),
    jobs: 1, opTimeoutS: 60, log: () => {}, rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  return { r, dir };
}

const cell = (r: Results, k: string, s: string): CellResult => {
  const c = r.cells.find((x) => x.kernel === k && x.scenario === s);
  if (!c) throw new Error(`no cell ${k} x ${s}`);
  return c;
};
const probes = (c: CellResult) => c.measured.filter((m) => m.op === 'probe').map((m) => m.headroom);

// The Debian kernel's cells come from the smoke tier's shared base run
// (test/lib/smoke-run.ts: host + Debian 6.1.190 over these four scenarios and
// cpu-offline), seen as if the kernel had run alone over these four.
const DEBIAN_SCENARIOS = ['shared-counter', 'remmap', 'overage', 'sysctl-lowered'];
const debianOnly = (x: Results): Results => ({
  ...x, kernels: x.kernels.filter((k) => k.id === 'debian-6.1.190'),
  cells: x.cells.filter((c) => c.kernel === 'debian-6.1.190' && DEBIAN_SCENARIOS.includes(c.scenario)),
});

t.test('Debian 6.1.190 in QEMU: shared counter, no remmap leak, incident scaled down', async (t) => {
  const shared = await smokeRun(BASE_RECIPE);
  const r = debianOnly(shared.results);
  const dir = shared.dir;
  // the VM boots "any" scenarios at 2 vCPUs by default; L follows the count each cell ran at
  const L = userLockLimit(516, cell(r, 'debian-6.1.190', 'shared-counter').cpus);
  t.equal(r.kernels[0].expected_logic, 'V3/shared');
  for (const c of r.cells) t.equal(c.verdict, 'MATCH', `${c.scenario}: ${c.reason ?? ''}`);
  t.equal(cell(r, 'debian-6.1.190', 'shared-counter').kernel_release, '6.1.0-54-cloud-amd64', 'the booted kernel is the one asked for');
  t.ok(['tcg', 'kvm'].includes(cell(r, 'debian-6.1.190', 'remmap').accel), 'accelerator recorded');

  // io_uring's registered pages come straight off perf's allowance: the counter is shared.
  const sc = cell(r, 'debian-6.1.190', 'shared-counter');
  const ballast = sc.measured.find((m) => m.op === 'ballast')!;
  t.equal(ballast.ok, true);
  const [before, afterBallast] = probes(sc);
  t.equal(before, L, 'a fresh uid starts with its whole allowance');
  t.equal(afterBallast, L - 100, 'the 100 registered pages came off perf\'s allowance');
  t.equal(sc.calibrated?.ioUringExtraPages, 0, '6.1 charges no ring pages of its own');

  // remmap: 29 extra mappings of one fd, then unmap: the allowance is whole again.
  t.equal(probes(cell(r, 'debian-6.1.190', 'remmap')).at(-1), L, 'no leak before v6.15');

  // sysctl-lowered: V3 charges each new buffer's 3 pages to VmPin, not the overage.
  const sl = cell(r, 'debian-6.1.190', 'sysctl-lowered');
  const pinned = sl.pinned_measured;
  t.ok(pinned.length >= 2);
  for (let k = 1; k < pinned.length; k++) t.equal(pinned[k] - pinned[k - 1], 3, `map ${k + 1} adds 3 pages`);

  const onDisk = debianOnly(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results);
  t.equal(onDisk.schema, RESULTS_SCHEMA);
  t.equal(onDisk.complete, true);
  t.equal(onDisk.cells.length, 4);
  t.match(await readFile(join(dir, 'table.md'), 'utf8'), /\| debian-6\.1\.190 .*\| V3\/shared \|/);
});

t.test('host kernel: V4 remap leak and shared io_uring counter, measured natively', async (t) => {
  // remmap, shared-counter, rlimit-small say "cpus": "any": they run at the host's online count
  const hostCpus = hostOnlineCpus();
  const why = skipReason(scenarioNeeds(compileAtCpus(builtinScenarios().find((s) => s.id === 'remmap')!.compiled, hostCpus)), hostOffer());
  if (why) {
    // Not a silent pass: the host cannot run these cells; the matrix would mark them SKIP with this reason.
    t.comment(`host cells would be SKIP here: ${why}`);
    const { r, dir } = await run(['host'], ['remmap']);
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    t.equal(r.cells[0].verdict, 'SKIP');
    t.equal(r.cells[0].reason, why);
    return;
  }
  const { r, dir } = await run(['host'], ['remmap', 'shared-counter', 'rlimit-small']);
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const L = userLockLimit(516, hostCpus);
  for (const c of r.cells) t.equal(c.cpus, hostCpus, `${c.scenario} ran at the host's ${hostCpus} CPUs`);
  const host = r.kernels[0];
  t.ok(host.expected_logic, 'host has an expected logic');
  for (const c of r.cells) t.equal(c.verdict, 'MATCH', `${c.scenario}: ${c.reason ?? ''}`);
  const remmapProbe = probes(cell(r, 'host', 'remmap')).at(-1)!;
  if (host.expected_logic!.startsWith('V4')) t.equal(remmapProbe, L - 29 * 3, 'v6.15+ leaks 3 pages per extra mapping');
  else t.equal(remmapProbe, L, 'no leak before v6.15');
  // rlimit-small: the first EPERM lands where the model says, on a real kernel.
  const rs = cell(r, 'host', 'rlimit-small');
  t.not(rs.first_eperm_measured, null);
  t.equal(rs.first_eperm_measured, rs.first_eperm_expected);
});
