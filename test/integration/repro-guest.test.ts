// Issue 28, "done when": every built-in scenario's standalone reproducer,
// run as root inside a guest of three kernels of the default matrix (V0:
// the pre-fix source build, V3: Debian 6.1.190, V4: Debian sid), gives the
// same verdict per op as lockstep's own cell. A real comparison: lockstep
// runs its matrix for those kernels; `lockstep bugreport K:S --against
// <the cell's expected logic>` writes each measured cell's repro.c (a SKIP
// cell, which bugreport refuses, gets the same generator's program for the
// kernel's logic and version); gcc builds them static; one boot per kernel
// (test/lib/guest-run.ts) runs all 27; the kernel's own kunit_parser reads
// each program's KTAP; and test/lib/repro-compare.ts checks, op by op, that
// the KTAP test passed exactly where lockstep's comparator matched the op,
// and that both measured the same result, VmPin and headroom. SKIP agrees
// only with SKIP. A comparison fed a changed measurement must disagree.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { builtinSpecs } from '../../src/kernels/spec.ts';
import { generateCReproducer } from '../../src/export/creproducer.ts';
import { parseLogic } from '../../src/model/index.ts';
import { type CellResult, recomputeExpected, type Results } from '../../src/results/schema.ts';
import { readResults } from '../../src/results/write.ts';
import type { CompiledScenario } from '../../src/scenario/ops.ts';
import { extractKunit, linuxSourceTarball, parseKtap } from '../lib/kunit.ts';
import { type GuestProgram, runInGuest } from '../lib/guest-run.ts';
import { compareScenario, type ScenarioComparison } from '../lib/repro-compare.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KERNELS = ['pre-fix', 'debian-6.1.190', 'debian-sid-latest'];
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/lockstep.mjs', ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
const dir = mkdtempSync(join(tmpdir(), 'lockstep-repro-guest-'));
const runDir = join(dir, 'run');
const cacheDir = process.env.LOCKSTEP_CACHE ?? defaultCacheDir();
let results: Results;

const defOf = (r: Results, c: CellResult): CompiledScenario => {
  const d = r.scenarios.find((s) => s.hash === c.scenario_hash)?.def;
  if (!d) throw new Error(`no definition of ${c.scenario} in the run`);
  return d;
};

/** The cell's repro.c: bugreport's for a measured cell, the generator's for a SKIP cell (bugreport refuses those). */
function reproSource(r: Results, c: CellResult, out: string): string {
  const def = defOf(r, c);
  if (c.measured.length) {
    const b = cli('bugreport', `${c.kernel}:${c.scenario}`, runDir, '--against', c.expected_logic!, '--out', out);
    if (b.status !== 0) throw new Error(`bugreport ${c.kernel}:${c.scenario}: ${b.stderr}`);
    return readFileSync(join(out, 'repro.c'), 'utf8');
  }
  return generateCReproducer({
    scenario: def, reference: { logic: parseLogic(c.expected_logic!), expected: recomputeExpected(c, def, c.kernel_version) }, others: [],
    title: `perf_mmap: ${c.scenario} on ${c.kernel}`, notes: [],
  });
}

/** Root scenarios last, root-record (whose V4 leak stays on root_user until reboot) the very last. */
const guestOrder = (r: Results, cells: CellResult[]): CellResult[] => {
  const rank = (c: CellResult): number => (defOf(r, c).root ? (c.scenario === 'root-record' ? 2 : 1) : 0);
  return [...cells].sort((a, b) => rank(a) - rank(b) || a.scenario.localeCompare(b.scenario));
};

t.test("lockstep's own matrix for the three kernels", (t) => {
  const r = cli('run', '--kernels', KERNELS.join(','), '--jobs', '1', '--quiet', '--out', runDir);
  t.ok(r.status === 0 || r.status === 1, `run exit ${r.status}: ${r.stderr.slice(-2000)}`);
  return readResults(join(runDir, 'results.json')).then((res) => {
    results = res;
    t.equal(res.cells.length, KERNELS.length * 27, 'every cell');
    const logics = KERNELS.map((k) => res.kernels.find((x) => x.id === k)?.expected_logic?.split('/')[0]);
    t.strictSame(logics, ['V0', 'V3', 'V4'], 'one V0, one V3, one V4 kernel');
  });
});

const kunit = (() => {
  const tarball = linuxSourceTarball();
  if (!tarball) throw new Error('no /usr/src/linux-source-*.tar.xz: run .ci/setup.sh');
  return extractKunit(tarball);
})();
const summary: Record<string, unknown> = {};

for (const kernel of KERNELS) {
  t.test(`${kernel}: 27 reproducers in one guest agree with lockstep's cells op by op`, async (t) => {
    const r = results;
    const rec = r.kernels.find((k) => k.id === kernel)!;
    const cells = guestOrder(r, r.cells.filter((c) => c.kernel === kernel));
    const work = join(dir, kernel);
    mkdirSync(work, { recursive: true });
    const programs: GuestProgram[] = cells.map((c) => {
      const src = join(work, `${c.scenario}.c`);
      writeFileSync(src, reproSource(r, c, join(work, c.scenario)));
      const bin = join(work, c.scenario);
      const cc = spawnSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', `${bin}.bin`, src], { encoding: 'utf8' });
      if (cc.status !== 0) throw new Error(`gcc ${c.scenario}: ${cc.stderr}`);
      const binary = readFileSync(`${bin}.bin`);
      rmSync(`${bin}.bin`);
      return { name: c.scenario, binary, cpus: defOf(r, c).cpus };
    });
    const spec = (await builtinSpecs()).find((s) => s.id === kernel)!;
    const a = await ensureKernel(spec, { cacheDir, log: () => {}, auxPmu: true });
    t.equal(a.sha256, rec.artifact_sha256, 'the guest boots the kernel the run measured');
    const started = Date.now();
    const g = await runInGuest({ vmlinuz: a.vmlinuz!, initrdExtra: a.initrdExtra, programs, cacheDir, workDir: work, timeoutMs: 40 * 60_000 });
    const wallS = Math.round((Date.now() - started) / 1000);
    writeFileSync(join(work, 'console.log'), g.boot.console);
    t.equal(g.boot.status, 'exited', `the guest powered off by itself (${g.boot.status}; console ${join(work, 'console.log')})`);
    t.strictSame(g.programs.map((p) => p.name), programs.map((p) => p.name), 'every program ran, in order');
    const comparisons: ScenarioComparison[] = [];
    for (const c of cells) {
      const p = g.programs.find((x) => x.name === c.scenario);
      const ktap = join(work, `${c.scenario}.ktap`);
      writeFileSync(ktap, p?.stdout ?? '');
      const tree = p?.stdout.includes('KTAP version 1') ? parseKtap(kunit, ktap).tree : null;
      comparisons.push(compareScenario(defOf(r, c), c, { rc: p?.rc ?? null, stdout: p?.stdout ?? '', tree }));
    }
    for (const cmp of comparisons) t.strictSame(cmp.disagreements, [], `${kernel}:${cmp.scenario} (cell ${cmp.cellVerdict}, exit ${cmp.rc})`);
    const ops = comparisons.reduce((n, x) => n + x.ops, 0);
    const agree = comparisons.reduce((n, x) => n + x.agreements, 0);
    const skipped = comparisons.filter((x) => x.bothSkipped).map((x) => x.scenario);
    t.equal(g.programs.length, 27, '27 programs ran');
    const measuredOps = cells.filter((c) => c.verdict !== 'SKIP').reduce((n, c) => n + defOf(r, c).ops.length, 0);
    t.equal(ops, measuredOps, `every op of every measured cell compared (${ops})`);
    summary[kernel] = { version: rec.version, logic: rec.expected_logic, programs: g.programs.length, ops, agreements: agree, disagreements: comparisons.flatMap((x) => x.disagreements.map((d) => `${x.scenario}: ${d}`)), bothSkipped: skipped, wallS };
    t.comment(`${kernel} (${rec.version}, ${rec.expected_logic}): ${g.programs.length} programs, ${ops} ops compared, ${agree} agree, both skip: ${skipped.join(', ') || 'none'}; guest ${wallS} s`);
  });
}

t.test('the comparison can fail: one measured value changed, one verdict flipped', (t) => {
  const r = results;
  const c = r.cells.find((x) => x.kernel === 'debian-6.1.190' && x.scenario === 'overage')!;
  const def = defOf(r, c);
  const stdout = readFileSync(join(dir, 'debian-6.1.190', 'overage.ktap'), 'utf8');
  const tree = parseKtap(kunit, join(dir, 'debian-6.1.190', 'overage.ktap')).tree;
  t.strictSame(compareScenario(def, c, { rc: 0, stdout, tree }).disagreements, [], 'as measured: agree');
  const k = c.measured.findIndex((m) => m.op === 'map');
  const changed = { ...c, measured: c.measured.map((m, i) => (i === k ? { ...m, vmpin_kb: m.vmpin_kb + 4 } : m)) };
  const d = compareScenario(def, changed, { rc: 0, stdout, tree }).disagreements;
  t.ok(d.some((x) => x.startsWith(`op ${c.measured[k]!.i} (map)`) && /lockstep differs, KTAP SUCCESS/.test(x) && /measured:/.test(x)), d.join('; '));
  const skipCell = { ...c, verdict: 'SKIP' as const, reason: 'x' };
  t.match(compareScenario(def, skipCell, { rc: 0, stdout, tree }).disagreements[0], /lockstep SKIPs/);
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 1));
  t.comment(`summary: ${join(dir, 'summary.json')}`);
  t.end();
});
