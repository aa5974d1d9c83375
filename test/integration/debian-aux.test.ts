// lockstep_aux in Debian images (issue 18 item 3): Debian's bookworm 6.1
// cloud kernel gets the module built against its own linux-headers from the
// same apt source and version, and one boot runs aux-unmap and aux-remap
// with it; every op's VmPin and probed headroom is asserted against numbers
// worked out by hand from V3's rules (36b3db03b474, shared/kernel-history.md:
// 6.1.190 charges user->locked_vm), so the cells come from the module, not
// from a SKIP. trixie's 6.12 kernel gets the module too, built with
// trixie's own gcc-14 in a Debian root (the Debian 12 host's gcc-12
// refuses the -fmin-function-alignment=16 of trixie's gcc-14 build), and
// its AUX cells MATCH.
// Heavy (downloads headers if not cached, boots QEMU): run under
// flock /tmp/lockstep-heavy.lock.

import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { cpioList } from '../../src/util/cpio.ts';
import { builtinSpecsDir, loadSpecFile } from '../../src/kernels/spec.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';

const auxScenarios = () => builtinScenarios().filter((s) => s.id === 'aux-unmap' || s.id === 'aux-remap').map((s) => s.compiled);
const rerun = (k: string, s: string): string => `lockstep run --kernels ${k} --scenarios ${s}`;

t.test('Debian 6.1: lockstep_aux built against linux-headers-6.1.0-54-cloud-amd64, loaded, AUX cells measured', async (t) => {
  const specs = await loadSpecFile(join(builtinSpecsDir(), 'debian-6.1.190.json'));
  const scenarios = auxScenarios();
  t.equal(scenarios.length, 2);
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-debian-aux-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const r = await runMatrix({ kernels: specs, scenarios, outDir: dir, cacheDir: defaultCacheDir(), anyCpus: [2], jobs: 1, opTimeoutS: 60, log: (l) => t.comment(l), rerun });

  // the artifact: the module and the packages it was built against
  const a = await ensureKernel(specs[0]!, { cacheDir: defaultCacheDir(), log: () => {}, auxPmu: true });
  const state = a.meta.aux_pmu as { module?: string; headers?: string[] };
  t.equal(state.module, 'lockstep_aux', `meta.aux_pmu: ${JSON.stringify(state)}`);
  t.equal(state.headers?.[0], 'linux-headers-6.1.0-54-cloud-amd64=6.1.190-1', 'the headers of the kernel\'s own package version');
  t.ok(state.headers?.some((h) => h.startsWith('linux-headers-6.1.0-54-common=6.1.190-1')), 'and its -common package');
  const cpio = cpioList(await readFile(a.initrdExtra!));
  t.equal(cpio.find((e) => e.name === 'lockstep/modules')?.data.toString(), 'lockstep_aux\n', 'init.sh loads it');
  const ko = cpio.find((e) => e.name === 'lib/modules/lockstep_aux.ko')!.data;
  t.match(ko.toString('latin1'), /vermagic=6\.1\.0-54-cloud-amd64 SMP/, 'built for this kernel\'s release');

  // the guest loaded it and found the PMU in sysfs
  const logs = join(dir, 'logs', 'debian-6.1.190@2cpu');
  const hello = JSON.parse((await readFile(join(logs, 'results.jsonl'), 'utf8')).split('\n')[0]!) as { aux_pmu?: number; release?: string };
  t.equal(hello.release, '6.1.0-54-cloud-amd64');
  t.ok(typeof hello.aux_pmu === 'number' && hello.aux_pmu > 0, `the guest found the PMU: type ${hello.aux_pmu}`);
  t.notMatch(await readFile(join(logs, 'console.log'), 'utf8'), /insmod lockstep_aux failed/);

  const cell = (id: string) => r.cells.find((c) => c.scenario === id)!;
  const series = (id: string) => cell(id).measured.map((m) => [m.op, m.ok, m.vmpin_kb, m.headroom ?? null]);
  // 2 vCPUs: L = 129 * 2 = 258 pages. aux-unmap: ballast to U = 254, ring (2 pages) -> U = L - 2;
  // 8-page AUX area: 2 to U, 6 pinned (24 kB); V3 gives exactly that back on unmap.
  t.strictSame(series('aux-unmap'), [
    ['ballast', true, 0, null], ['aux_ring', true, 0, null], ['probe', true, 0, 2],
    ['aux_map', true, 24, null], ['probe', true, 24, 0], ['aux_unmap', true, 0, null], ['probe', true, 0, 2],
    ['aux_map', true, 24, null], ['probe', true, 24, 0], ['aux_unmap', true, 0, null], ['probe', true, 0, 2],
    ['unmap', true, 0, null], ['probe', true, 0, 4],
  ], 'aux-unmap: VmPin (kB) and headroom (pages) after each op');
  // aux-remap: all under L; before v6.15 a second mapping of the AUX area charges nothing.
  t.strictSame(series('aux-remap'), [
    ['aux_ring', true, 0, null], ['aux_map', true, 0, null], ['probe', true, 0, 252],
    ['aux_map', true, 0, null], ['probe', true, 0, 252], ['aux_unmap', true, 0, null], ['probe', true, 0, 252],
    ['aux_unmap', true, 0, null], ['probe', true, 0, 256], ['aux_map', true, 0, null], ['probe', true, 0, 252],
    ['unmap', true, 0, null], ['probe', true, 0, 258],
  ], 'aux-remap: VmPin (kB) and headroom (pages) after each op');
  t.equal(cell('aux-unmap').verdict, 'MATCH');
  t.equal(cell('aux-remap').verdict, 'MATCH');
});

t.test('Debian trixie 6.12 (trixie-security included): the module built with trixie\'s own gcc-14 in a Debian root, and both AUX cells MATCH in one boot', async (t) => {
  const specs = await loadSpecFile(join(builtinSpecsDir(), 'debian-trixie-6.12.json'));
  const a = await ensureKernel(specs[0]!, { cacheDir: defaultCacheDir(), log: (l) => t.comment(l), auxPmu: true });
  const state = a.meta.aux_pmu as { module?: string; skip?: string; compiler?: string; headers?: string[] };
  t.equal(state.module, 'lockstep_aux', state.skip ?? 'built');
  // the host's gcc 12 refuses the headers' -fmin-function-alignment=16; the headers name gcc-14
  t.match(state.compiler, /^gcc-14 \(Debian 14\.[^)]*\) 14\.\S+( \(a Debian trixie root\))?$/, 'trixie\'s gcc-14 built it');
  t.match(state.headers?.[0], /^linux-headers-6\.12\.\d+\+deb13-cloud-amd64=/);
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-debian-aux-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const r = await runMatrix({ kernels: specs, scenarios: auxScenarios(), outDir: dir, cacheDir: defaultCacheDir(), anyCpus: [2], jobs: 1, opTimeoutS: 60, log: (l) => t.comment(l), rerun });
  t.same(r.cells.map((c) => [c.scenario, c.verdict]).sort(), [['aux-remap', 'MATCH'], ['aux-unmap', 'MATCH']], r.cells.map((c) => c.reason ?? '').join(' | '));
});
