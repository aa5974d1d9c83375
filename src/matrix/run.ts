// Running a matrix: fetch each kernel once, run each group (one boot or one
// host run) under a concurrency budget, turn outcomes into cells, and write
// results.json + table.md atomically after every group, so an interrupted or
// crashed run keeps every cell it finished.

import { mkdir } from 'node:fs/promises';
import { release as osRelease } from 'node:os';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { ensureKernel, type KernelArtifact } from '../kernels/artifact.ts';
import { resolveExpect } from '../kernels/expect.ts';
import type { KernelSpec } from '../kernels/spec.ts';
import { ensureBaseImage } from '../image/initramfs.ts';
import { type Logic, logicLabel } from '../model/index.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { scenarioHash } from '../scenario/load.ts';
import { freshHostUids, HostRuntime, hostOnlineCpus, hostSkipReason } from '../runner/host.ts';
import { kvmUsable, qemuVersion, type Accel } from '../runner/qemu.ts';
import type { GroupOutcome, Runtime } from '../runner/runtime.ts';
import { QemuRuntime } from '../runner/vm.ts';
import { RESULTS_SCHEMA, type CellResult, type KernelRecord, type Results } from '../results/schema.ts';
import { renderTable } from '../results/table.ts';
import { writeAtomic } from '../results/write.ts';
import { type CellContext, cellsFromOutcome, cellWithoutRun } from './cells.ts';
import { groupTimeoutMs, planGroups, type PlannedGroup, scheduleOrder } from './plan.ts';

export const LOCKSTEP_VERSION = '0.1.0';

export interface MatrixOptions {
  kernels: KernelSpec[];
  scenarios: CompiledScenario[];
  outDir: string;
  cacheDir: string;
  /** groups run at once */
  jobs: number;
  accel?: Accel;
  /** per-group timeout override, ms */
  timeoutMs?: number;
  opTimeoutS: number;
  signal?: AbortSignal;
  log: (line: string) => void;
  /** the command line that reproduces a cell (scenario, kernel) */
  rerun: (kernel: string, scenario: string) => string;
}

const runtimeOf = (k: KernelSpec): 'host' | 'qemu' => (k.kind === 'host' ? 'host' : 'qemu');

export async function runMatrix(o: MatrixOptions): Promise<Results> {
  await mkdir(o.outDir, { recursive: true });
  const started = new Date().toISOString();
  const needVm = o.kernels.some((k) => runtimeOf(k) === 'qemu');
  const accelInfo = needVm
    ? (o.accel ? { accel: o.accel, why: `--accel ${o.accel}` } : await kvmUsable().then((k) => ({ accel: k.ok ? 'kvm' as const : 'tcg' as const, why: k.why })))
    : { accel: 'none' as const, why: 'no VM kernels in this matrix' };
  const results: Results = {
    schema: RESULTS_SCHEMA, lockstep_version: LOCKSTEP_VERSION, started_at: started, complete: false,
    host: { release: osRelease(), cpus: hostOnlineCpus(), accel: accelInfo.accel, accel_why: accelInfo.why, emulator: needVm ? await qemuVersion() : undefined },
    kernels: [], scenarios: o.scenarios.map((s) => ({ id: s.id, hash: scenarioHash(s), cpus: s.cpus })), cells: [],
  };
  const base = needVm ? await ensureBaseImage(o.cacheDir) : undefined;
  const qemu = base && accelInfo.accel !== 'none' ? new QemuRuntime(base, accelInfo, Boolean(o.accel)) : undefined;
  const host = new HostRuntime();

  // Writes are serialised: each one snapshots the cells finished so far.
  let writing = Promise.resolve();
  const persist = (): Promise<void> => {
    writing = writing.then(async () => {
      results.cells.sort((a, b) => a.kernel.localeCompare(b.kernel) || a.scenario.localeCompare(b.scenario));
      await writeAtomic(join(o.outDir, 'results.json'), JSON.stringify(results, null, 1) + '\n');
      await writeAtomic(join(o.outDir, 'table.md'), renderTable(results));
    });
    return writing;
  };

  // Kernel artifacts: fetched (or built) once per kernel, shared by its groups.
  const artifacts = new Map<string, Promise<KernelArtifact>>();
  const logics = new Map<string, Logic | null>();
  const artifact = (k: KernelSpec): Promise<KernelArtifact> => {
    let p = artifacts.get(k.id);
    if (!p) {
      p = ensureKernel(k, { cacheDir: o.cacheDir, log: (m) => o.log(`[${k.id}] ${m}`) }).then((a) => {
        const exp = resolveExpect(k, a.version);
        logics.set(k.id, exp.logic);
        const rec: KernelRecord = {
          id: k.id, kind: k.kind, version: a.version, release: a.release, expected_logic: exp.logic ? logicLabel(exp.logic) : null,
          expect_reason: exp.reason, artifact_sha256: a.sha256,
        };
        results.kernels.push(rec);
        results.kernels.sort((x, y) => o.kernels.findIndex((s) => s.id === x.id) - o.kernels.findIndex((s) => s.id === y.id));
        return a;
      });
      artifacts.set(k.id, p);
    }
    return p;
  };

  const groups = scheduleOrder(planGroups(o.kernels.map((k) => ({ id: k.id, runtime: runtimeOf(k) })), o.scenarios));
  const total = o.kernels.length * o.scenarios.length;
  let done = 0;
  const t0 = Date.now();
  const report = (cells: CellResult[], g: PlannedGroup, extra = ''): void => {
    done += cells.length;
    const summary = cells.map((c) => `${c.scenario}=${c.verdict}`).join(' ');
    o.log(`[${done}/${total} cells, ${((Date.now() - t0) / 1000).toFixed(0)}s] ${g.key}: ${summary}${extra}`);
  };

  const queue = new PQueue({ concurrency: Math.max(1, o.jobs) });
  const runGroup = async (g: PlannedGroup): Promise<void> => {
    const spec = o.kernels.find((k) => k.id === g.kernel)!;
    const ctx = (logic: Logic | null): CellContext => ({
      kernel: g.kernel, logic, runtime: g.runtime, startedAt: new Date().toISOString(),
      scenarioHash, rerun: (s) => o.rerun(g.kernel, s),
    });
    let a: KernelArtifact;
    try {
      a = await artifact(spec);
    } catch (e) {
      const reason = `kernel artifact: ${(e as Error).message}`;
      if (!results.kernels.some((k) => k.id === spec.id)) {
        results.kernels.push({ id: spec.id, kind: spec.kind, version: 'version' in spec && spec.version ? spec.version : '?', expected_logic: null, expect_reason: reason, artifact_sha256: null });
      }
      const cells = g.scenarios.map((s) => cellWithoutRun(ctx(null), s, spec.kind === 'source' ? 'BUILD_FAIL' : 'BOOT_FAIL', reason));
      results.cells.push(...cells);
      report(cells, g);
      await persist();
      return;
    }
    const logic = logics.get(spec.id) ?? null;
    let runnable = g.scenarios;
    const skipped: CellResult[] = [];
    if (g.runtime === 'host') {
      runnable = [];
      for (const s of g.scenarios) {
        const rl = [s.rlimit_kb, ...s.ops.flatMap((op) => (op.op === 'rlimit' ? [op.memlock_kb] : []))];
        const why = hostSkipReason(s.cpus, rl) ??
          (s.ops.some((op) => op.op === 'cpu') ? 'takes CPUs offline: lockstep never hotplugs host CPUs' : null);
        if (why) skipped.push(cellWithoutRun(ctx(logic), s, 'SKIP', why));
        else runnable.push(s);
      }
    }
    let cells = skipped;
    if (runnable.length && !o.signal?.aborted) {
      const uids = g.runtime === 'host' ? freshHostUids(runnable.length) : runnable.map((_, k) => 10_000 + k);
      const logDir = join(o.outDir, 'logs', g.key);
      await mkdir(logDir, { recursive: true });
      const rt: Runtime = g.runtime === 'host' ? host : qemu!;
      const outcome: GroupOutcome = await rt.run({
        kernel: g.kernel, vmlinuz: a.vmlinuz, cpus: g.cpus, scenarios: runnable, uids,
        timeoutMs: groupTimeoutMs({ ...g, scenarios: runnable }, accelInfo.accel === 'kvm', o.timeoutMs),
        opTimeoutS: o.opTimeoutS, logDir, signal: o.signal,
      });
      cells = [...cells, ...cellsFromOutcome(ctx(logic), runnable, outcome)];
      if (outcome.accel !== 'none') { results.host.accel = outcome.accel; results.host.accel_why = outcome.accelWhy; }
      if (outcome.emulator) results.host.emulator = outcome.emulator;
      for (const c of cells) if (runnable.some((s) => s.id === c.scenario)) c.accel = outcome.accel;
      results.cells.push(...cells);
      report(cells, g, outcome.bootMs !== null ? ` (boot to first result ${(outcome.bootMs / 1000).toFixed(1)}s, group ${(outcome.wallMs / 1000).toFixed(1)}s, ${outcome.accel})` : ` (${outcome.status}: ${outcome.detail})`);
    } else {
      if (o.signal?.aborted) for (const s of runnable) cells.push(cellWithoutRun(ctx(logic), s, 'ERROR', 'run interrupted before this cell started'));
      results.cells.push(...cells);
      report(cells, g);
    }
    await persist();
  };
  for (const g of groups) {
    void queue.add(async () => {
      try {
        await runGroup(g);
      } catch (e) {
        // A bug in one group must not lose the others: record it and go on.
        const ctx: CellContext = { kernel: g.kernel, logic: null, runtime: g.runtime, startedAt: new Date().toISOString(), scenarioHash, rerun: (x) => o.rerun(g.kernel, x) };
        const cells = g.scenarios.map((s) => cellWithoutRun(ctx, s, 'ERROR', `internal error: ${(e as Error).stack ?? e}`));
        results.cells.push(...cells);
        report(cells, g);
        await persist();
      }
    });
  }
  await queue.onIdle();
  await writing;
  results.complete = !o.signal?.aborted;
  results.finished_at = new Date().toISOString();
  await persist();
  return results;
}
