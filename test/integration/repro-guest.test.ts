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
import { kernelTools, parseKtap, parseKtapFiles } from '../lib/kunit.ts';
import { runBatch } from '../lib/cli-batch.ts';
import { runOnCores } from '../lib/on-cores.ts';
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

/**
 * Each cell's repro.c, in the order of `cells`: bugreport's for a measured
 * cell (all of them through one lockstep process, test/lib/cli-batch.ts), the
 * generator's for a SKIP cell (bugreport refuses those).
 */
async function reproSources(r: Results, cells: CellResult[], work: string): Promise<string[]> {
  const measured = cells.filter((c) => c.measured.length);
  const runs = await runBatch(measured.map((c) => ['bugreport', `${c.kernel}:${c.scenario}`, runDir, '--against', c.expected_logic!, '--out', join(work, c.scenario)]), { cwd: ROOT, timeoutMs: 600_000 });
  return cells.map((c) => {
    const k = measured.indexOf(c);
    if (k >= 0) {
      if (runs[k]!.code !== 0) throw new Error(`bugreport ${c.kernel}:${c.scenario}: ${runs[k]!.stderr}`);
      return readFileSync(join(work, c.scenario, 'repro.c'), 'utf8');
    }
    return generateCReproducer({
      scenario: defOf(r, c), reference: { logic: parseLogic(c.expected_logic!), expected: recomputeExpected(c, defOf(r, c), c.kernel_version) }, others: [],
      title: `perf_mmap: ${c.scenario} on ${c.kernel}`, notes: [],
    });
  });
}

/** Each cell's reproducer built static by gcc (as many at once as there are cores), as GuestPrograms in the order of `cells`. Throws naming the first that does not compile. */
async function buildPrograms(r: Results, cells: CellResult[], work: string): Promise<GuestProgram[]> {
  const sources = await reproSources(r, cells, work);
  cells.forEach((c, k) => writeFileSync(join(work, `${c.scenario}.c`), sources[k]!));
  const bin = (c: CellResult) => join(work, `${c.scenario}.bin`);
  const cc = await runOnCores(cells.map((c) => ['gcc', '-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', bin(c), join(work, `${c.scenario}.c`)]));
  return cells.map((c, k) => {
    if (cc[k]!.code !== 0) throw new Error(`gcc ${c.scenario}: ${cc[k]!.stderr}`);
    const binary = readFileSync(bin(c));
    rmSync(bin(c));
    return { name: c.scenario, binary, cpus: defOf(r, c).cpus };
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

const { kunit } = kernelTools();
const summary: Record<string, unknown> = {};

for (const kernel of KERNELS) {
  t.test(`${kernel}: 27 reproducers in one guest agree with lockstep's cells op by op`, async (t) => {
    const r = results;
    const rec = r.kernels.find((k) => k.id === kernel)!;
    const cells = guestOrder(r, r.cells.filter((c) => c.kernel === kernel));
    const work = join(dir, kernel);
    mkdirSync(work, { recursive: true });
    const programs = await buildPrograms(r, cells, work);
    const spec = (await builtinSpecs()).find((s) => s.id === kernel)!;
    const a = await ensureKernel(spec, { cacheDir, log: () => {}, auxPmu: true });
    t.equal(a.sha256, rec.artifact_sha256, 'the guest boots the kernel the run measured');
    const started = Date.now();
    const g = await runInGuest({ vmlinuz: a.vmlinuz!, initrdExtra: a.initrdExtra, programs, cacheDir, workDir: work, timeoutMs: 40 * 60_000 });
    const wallS = Math.round((Date.now() - started) / 1000);
    writeFileSync(join(work, 'console.log'), g.boot.console);
    t.equal(g.boot.status, 'exited', `the guest powered off by itself (${g.boot.status}; console ${join(work, 'console.log')})`);
    t.strictSame(g.programs.map((p) => p.name), programs.map((p) => p.name), 'every program ran, in order');
    const outputs = cells.map((c) => g.programs.find((x) => x.name === c.scenario));
    cells.forEach((c, k) => writeFileSync(join(work, `${c.scenario}.ktap`), outputs[k]?.stdout ?? ''));
    const withKtap = cells.filter((_, k) => outputs[k]?.stdout.includes('KTAP version 1'));
    const trees = parseKtapFiles(kunit, withKtap.map((c) => join(work, `${c.scenario}.ktap`)));
    const comparisons: ScenarioComparison[] = cells.map((c, k) => {
      const p = outputs[k];
      const j = withKtap.indexOf(c);
      return compareScenario(defOf(r, c), c, { rc: p?.rc ?? null, stdout: p?.stdout ?? '', tree: j >= 0 ? trees[j]!.tree : null });
    });
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
