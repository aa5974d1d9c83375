// lockstep's benchmark: measures, in one run, side by side:
//   - simulator throughput (ops/s)
//   - boot to first result per VM (TCG; KVM too where a probe VM starts)
//   - all scenarios of a kernel in one boot vs one boot per scenario
//   - the default matrix cold (empty cache) and warm
//   - planning + simulating + rendering a 200-kernel x 50-scenario matrix
//   - peak memory of the orchestrator and of each QEMU
// and prints a table with ratios. Not part of the tests: speed is measured
// here, never asserted in timed tests.
//
//   - the real Debian rows (suites, "latest"): fetch cold and warm, their matrix (--only suites; suites-fetch: fetch only)
//   - the warm default matrix booted (--no-snapshot) and restored from snapshots (issue 29)
//   node --import tsx bench/run.ts [--quick] [--only sim,boot,grouping,matrix,snapshot,scale,suites,suites-fetch]
//   (npm run bench)

import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, ensureKernel } from '../src/kernels/artifact.ts';
import { builtinSpecs, type KernelSpec } from '../src/kernels/spec.ts';
import { ensureBaseImage, writeBootInitrd } from '../src/image/initramfs.ts';
import { runMatrix } from '../src/matrix/run.ts';
import { planGroups } from '../src/matrix/plan.ts';
import { ALL_LOGICS, simulate } from '../src/model/index.ts';
import { builtinScenarios } from '../src/scenario/load.ts';
import { type CompiledScenario, hasFaultInjection, type Op } from '../src/scenario/ops.ts';
import { boot, kvmUsable, type Accel } from '../src/runner/qemu.ts';
import { renderTable } from '../src/results/table.ts';
import { RESULTS_SCHEMA, type CellResult, type Results } from '../src/results/schema.ts';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' } } });
const only = args.only ? new Set(args.only.split(',')) : null;
const want = (s: string): boolean => (only ? only.has(s) : !(args.quick && (s === 'matrix' || s === 'snapshot')));

const rows: [string, string, string][] = [];
const row = (what: string, value: string, note = ''): void => { rows.push([what, value, note]); console.error(`  ${what}: ${value} ${note}`); };
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const log = (m: string): void => console.error(`bench: ${m}`);

/** Peak RSS (VmHWM) of the QEMU whose command line mentions `marker`, sampled while it runs. */
function qemuPeakSampler(marker: string): { stop: () => number } {
  let peakKb = 0;
  const t = setInterval(() => {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (!readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) continue;
        const m = /^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch { /* gone */ }
    }
  }, 100);
  return { stop: () => { clearInterval(t); return peakKb; } };
}

// Built-in specs by id (source variants live in kernels/variant-<id>.json).
const spec = async (id: string): Promise<KernelSpec> => {
  const s = (await builtinSpecs()).find((k) => k.id === id);
  if (!s) throw new Error(`no built-in kernel ${id}`);
  return s;
};
const scenarios = builtinScenarios().map((l) => l.compiled);
const twoCpu = scenarios.filter((s) => s.cpus === 2 && !hasFaultInjection(s));

async function benchSim(): Promise<void> {
  log('simulator throughput');
  const ops: Op[] = [];
  for (let k = 0; k < 500_000; k++) { ops.push({ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'unmap', buf: 'a' }); }
  const s: CompiledScenario = { id: 'bench', cpus: 2, mlock_kb: 516, paranoid: 2, rlimit_kb: 8192, cap_ipc_lock: false, ops };
  const rates: number[] = [];
  for (const logic of ALL_LOGICS) {
    const t0 = performance.now();
    simulate(s, logic);
    rates.push(ops.length / ((performance.now() - t0) / 1000));
  }
  row('simulator, 1M map/unmap ops', `${(median(rates) / 1e6).toFixed(1)} M ops/s`, `median over the 10 logics (min ${(Math.min(...rates) / 1e6).toFixed(1)} M)`);
}

async function benchBoot(cacheDir: string): Promise<void> {
  log('boot to first result');
  const script = 'begin b uid=10000 cpus=CPUS mlock_kb=516 paranoid=2 rlimit_kb=8192 cap_ipc_lock=0\nprobe\nend\n';
  const kvm = await kvmUsable();
  const accels: Accel[] = kvm.ok ? ['kvm', 'tcg'] : ['tcg'];
  if (!kvm.ok) row('KVM', 'not used', kvm.why);
  // Debian's distribution kernel, and the minimal one built from source (kernels/config/);
  // arm64 (#19, always TCG here): Debian cloud-arm64 (4 KiB pages), Debian arm64-16k, the pre-fix stand-in at 64 KiB pages.
  for (const id of ['debian-6.1.190', 'current-6.1', 'debian-bookworm-arm64', 'debian-trixie-arm64-16k', 'pre-fix-arm64-64k']) {
    const sp = await spec(id);
    const arch = sp.kind !== 'host' ? sp.arch ?? 'x86_64' : 'x86_64';
    const base = await ensureBaseImage(cacheDir, { arch, log: (m) => log(`[${arch}] ${m}`) });
    const a = await ensureKernel(sp, { cacheDir, log: (m) => log(`[${id}] ${m}`) });
    for (const accel of arch === 'x86_64' ? accels : ['tcg' as const]) {
      for (const n of [2, 36]) {
        const times: number[] = [];
        let peak = 0;
        for (let k = 0; k < (n === 2 ? 3 : 1); k++) {
          const dir = await mkdtemp(join(tmpdir(), 'lockstep-bench-'));
          await writeBootInitrd(base, script.replace('CPUS', String(n)), [], join(dir, 'initrd'), a.initrdExtra);
          const sampler = qemuPeakSampler(dir);
          const r = await boot({ arch, vmlinuz: a.vmlinuz!, initrd: join(dir, 'initrd'), cpus: n, memMb: 1024, accel, timeoutMs: 300_000, workDir: dir });
          peak = Math.max(peak, sampler.stop());
          if (r.firstResultMs !== null) times.push(r.firstResultMs);
          await rm(dir, { recursive: true, force: true });
        }
        row(`boot to first result, ${id}, ${n} vCPU, ${accel.toUpperCase()}`, times.length ? secs(median(times)) : 'no result',
          `${times.length > 1 ? `median of ${times.length}; ` : ''}QEMU peak RSS ${(peak / 1024).toFixed(0)} MiB; initramfs ${(base.bytes / 1e6).toFixed(1)} MB`);
      }
    }
  }
}

async function matrixOnce(kernels: KernelSpec[], sc: CompiledScenario[], cacheDir: string, jobs = 2, snapshots = true): Promise<{ ms: number; r: Results }> {
  const out = await mkdtemp(join(tmpdir(), 'lockstep-bench-out-'));
  const t0 = Date.now();
  const r = await runMatrix({ kernels, scenarios: sc, outDir: out, cacheDir, jobs, opTimeoutS: 60, log: () => {}, rerun: () => '', snapshots });
  const ms = Date.now() - t0;
  await rm(out, { recursive: true, force: true });
  return { ms, r };
}

async function benchGrouping(cacheDir: string): Promise<void> {
  log('one boot for all scenarios vs one boot each');
  const k = [await spec('debian-6.1.190')];
  const ten = twoCpu.slice(0, 10);
  const one = await matrixOnce(k, ten, cacheDir, 1);
  let each = 0;
  for (const s of ten) each += (await matrixOnce(k, [s], cacheDir, 1)).ms;
  row(`${ten.length} scenarios, one boot`, secs(one.ms), `${one.r.cells.filter((c) => c.verdict === 'MATCH').length}/${ten.length} MATCH`);
  row(`${ten.length} scenarios, one boot each`, secs(each), `ratio ${(each / one.ms).toFixed(1)}x`);
}

async function benchMatrix(): Promise<void> {
  log('default matrix cold (empty kernel cache and ccache: builds everything) and warm');
  const kernels = await builtinSpecs();
  const sc = scenarios.filter((s) => !hasFaultInjection(s));
  // The ccache lives inside the cache dir, so a fresh dir is a truly cold machine.
  const cold = await mkdtemp(join(tmpdir(), 'lockstep-bench-cache-'));
  const c = await matrixOnce(kernels, sc, cold);
  const w = await matrixOnce(kernels, sc, cold);
  await rm(cold, { recursive: true, force: true });
  const ok = (r: Results): string => `${r.cells.filter((x) => x.verdict === 'MATCH' || x.verdict === 'SKIP').length}/${r.cells.length} MATCH/SKIP`;
  row(`default matrix (${kernels.length} kernels x ${sc.length} scenarios), cold cache`, secs(c.ms), ok(c.r));
  row('default matrix, warm cache', secs(w.ms), `${ok(w.r)}; cold/warm ${(c.ms / w.ms).toFixed(1)}x`);
}

/** What a cell measured, to compare two runs of it. */
const measuredKey = (c: CellResult): string => JSON.stringify([c.verdict, c.first_eperm_measured, c.pinned_measured]);

/**
 * Issue 29: the warm default matrix (kernel cache warm) booting every group
 * (--no-snapshot) and restoring saved guests, in one run, after one run
 * that saves what the cache lacks; and whether every cell measured the same.
 */
async function benchSnapshot(cacheDir: string): Promise<void> {
  log('default matrix warm: booted (--no-snapshot) vs restored snapshots');
  const kernels = await builtinSpecs();
  const sc = scenarios.filter((s) => !hasFaultInjection(s));
  const save = await matrixOnce(kernels, sc, cacheDir, 2, true);
  const booted = await matrixOnce(kernels, sc, cacheDir, 2, false);
  const restored = await matrixOnce(kernels, sc, cacheDir, 2, true);
  const ok = (r: Results): string => `${r.cells.filter((x) => x.verdict === 'MATCH' || x.verdict === 'SKIP').length}/${r.cells.length} MATCH/SKIP`;
  const key = (c: CellResult): string => `${c.kernel} ${c.scenario} ${c.console_log}`;
  const before = new Map(booted.r.cells.map((c) => [key(c), measuredKey(c)]));
  const differ = restored.r.cells.filter((c) => before.get(key(c)) !== measuredKey(c)).map(key);
  const fromSnap = restored.r.cells.filter((c) => c.vm_snapshot?.how === 'restored').length;
  row('default matrix warm, saving snapshots (first run)', secs(save.ms), ok(save.r));
  row('default matrix warm, every group booted (--no-snapshot)', secs(booted.ms), ok(booted.r));
  row('default matrix warm, groups restored from snapshots', secs(restored.ms), `${ok(restored.r)}; ${fromSnap} cells restored; booted/restored ${(booted.ms / restored.ms).toFixed(1)}x`);
  row('cells measuring differently restored vs booted', `${differ.length}/${restored.r.cells.length}`, differ.slice(0, 5).join('; ') || 'verdict, first EPERM and VmPin series all equal');
}

/** The real Debian rows (suites, "latest"): fetch cold (empty cache: apt lists + packages) all at once, warm, then one matrix run of them. */
async function benchSuites(withMatrix: boolean): Promise<void> {
  log('real Debian rows: fetch cold (empty cache) and warm; their matrix warm');
  const kernels = (await builtinSpecs()).filter((k) => k.kind === 'debian-image');
  const cold = await mkdtemp(join(tmpdir(), 'lockstep-bench-suites-'));
  const fetchAll = async (): Promise<number> => {
    const t0 = Date.now();
    await Promise.all(kernels.map((k) => ensureKernel(k, { cacheDir: cold, log: () => {} })));
    return Date.now() - t0;
  };
  const c = await fetchAll();
  const w = await fetchAll();
  row(`fetch ${kernels.length} Debian kernels (${kernels.map((k) => k.id).join(', ')}), cold cache`, secs(c), 'apt lists of each suite + .debs, concurrently');
  row('the same, warm cache (lists fresh, entries hash-checked)', secs(w), `cold/warm ${(c / w).toFixed(1)}x`);
  if (withMatrix) {
    const sc = twoCpu;
    const m = await matrixOnce(kernels, sc, cold);
    const ok = m.r.cells.filter((x) => x.verdict === 'MATCH' || x.verdict === 'SKIP').length;
    row(`real Debian rows x ${sc.length} 2-CPU scenarios, warm`, secs(m.ms), `${ok}/${m.r.cells.length} MATCH/SKIP; ${m.r.kernels.map((k) => `${k.id}=${k.version}`).join(', ')}`);
  }
  await rm(cold, { recursive: true, force: true });
}

async function benchScale(): Promise<void> {
  log('200 kernels x 50 scenarios: plan, simulate, render');
  const before = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const kernels = Array.from({ length: 200 }, (_, k) => ({ id: `k${k}`, runtime: 'qemu' as const }));
  const sc = Array.from({ length: 50 }, (_, j) => ({ ...twoCpu[j % twoCpu.length], id: `s${j}` }));
  const groups = planGroups(kernels, sc);
  const cells: CellResult[] = [];
  for (const g of groups) {
    for (const s of g.scenarios) {
      const e = simulate(s, ALL_LOGICS[cells.length % ALL_LOGICS.length]);
      cells.push({ kernel: g.kernel, scenario: s.id, verdict: 'MATCH', expected_logic: 'V3/perf', cpus: s.cpus, runtime: 'qemu', accel: 'tcg',
        first_eperm_measured: null, first_eperm_expected: null, pinned_measured: [], pinned_expected: e.map((x) => x.pinned),
        measured: [], expected: e, started_at: '', scenario_hash: '', rerun: '' });
    }
  }
  const r: Results = { schema: RESULTS_SCHEMA, lockstep_version: 'bench', started_at: '', complete: true,
    host: { release: '', cpus: 2, accel: 'tcg', accel_why: '' }, kernels: kernels.map((k) => ({ id: k.id, kind: 'image', version: '6.1.0', expected_logic: 'V3/perf', expect_reason: '', artifact_sha256: null })),
    scenarios: sc.map((s) => ({ id: s.id, hash: '', cpus: s.cpus })), cells };
  const md = renderTable(r);
  const json = JSON.stringify(r);
  const ms = performance.now() - t0;
  row('200 kernels x 50 scenarios (10000 simulated cells): plan + simulate + table + JSON', secs(ms),
    `${groups.length} groups, table ${(md.length / 1e6).toFixed(1)} MB, JSON ${(json.length / 1e6).toFixed(0)} MB, heap +${((process.memoryUsage().heapUsed - before) / 1e6).toFixed(0)} MB`);
}

const cacheDir = defaultCacheDir();
console.error(`bench: ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at start`);
if (want('sim')) await benchSim();
if (want('scale')) await benchScale();
if (want('boot')) await benchBoot(cacheDir);
if (want('grouping')) await benchGrouping(cacheDir);
if (want('matrix')) await benchMatrix();
if (want('snapshot')) await benchSnapshot(cacheDir);
if (only?.has('suites') || only?.has('suites-fetch')) await benchSuites(only.has('suites'));
row('orchestrator peak RSS', `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`, `load average ${loadavg()[0].toFixed(1)} at end`);

const w = [0, 0, 0];
for (const r of rows) r.forEach((c, i) => { w[i] = Math.max(w[i], c.length); });
console.log(`| ${'measure'.padEnd(w[0])} | ${'value'.padEnd(w[1])} | ${'note'.padEnd(w[2])} |`);
console.log(`|${'-'.repeat(w[0] + 2)}|${'-'.repeat(w[1] + 2)}|${'-'.repeat(w[2] + 2)}|`);
for (const r of rows) console.log(`| ${r[0].padEnd(w[0])} | ${r[1].padEnd(w[1])} | ${r[2].padEnd(w[2])} |`);
