// Running a matrix: fetch each kernel once, run each group (one boot or one
// host run) under a concurrency budget, turn outcomes into cells, and write
// results.json atomically after every group (table.md every 10 s and at the
// end), so an interrupted or crashed run keeps every cell it finished. The parts: the runtimes
// (runtimes.ts), the kernel pool (kernel-pool.ts), one group (group.ts) with
// its attempts policy (attempts.ts), and the results sink fed by typed
// events (sink.ts).

import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { homedir, release as osRelease, tmpdir } from 'node:os';
import PQueue from 'p-queue';
import { specPageKb } from '../kernels/spec.ts';
import { reproducerBinary } from '../image/initramfs.ts';
import { pathRoots } from '../results/paths.ts';
import { RESULTS_SCHEMA, type Results } from '../results/schema.ts';
import { LOCKSTEP_VERSION } from '../results/version.ts';
import { hostOnlineCpus } from '../runner/host.ts';
import { scenarioHash } from '../scenario/load.ts';
import { usesAux } from '../scenario/ops.ts';
import { isUserError } from '../util/errors.ts';
import { cellWithoutRun } from './cells.ts';
import { cellContext, emit, type GroupEnv, groupScenarios, runGroup } from './group.ts';
import { KernelPool } from './kernel-pool.ts';
import type { MatrixOptions } from './options.ts';
import { isVmRuntime, planGroups, type PlannedGroup, scheduleOrder } from './plan.ts';
import { type MatrixRuntimes, RUNTIME_FACTORIES, type RuntimeFactory, type RuntimeName, runtimeOf, withRuntimes } from './runtimes.ts';
import { matrixIdentity, shardGroups } from './shard.ts';
import { ResultsSink } from './sink.ts';
import { LOCKSTEP_ROOT } from '../util/repo-root.ts';

/** Machine-wide: one lockstep at a time runs scenarios on the host kernel (src/matrix/runtimes.ts). */
export { HOST_KERNEL_LOCK } from './runtimes.ts';
export type { MatrixOptions } from './options.ts';
export { type MatrixEvent, renderEvent } from './sink.ts';

export { LOCKSTEP_VERSION };

/**
 * Run the matrix and write OUT/results.json after every group (table.md every 10 s and last).
 * Returns the results (complete: false when interrupted). Throws a
 * ConfigError/MissingDependencyError (the CLI's exit 2, one line naming
 * file, field and fix) when a kernel's setup fails on bad input or a missing
 * tool: no new group starts, running ones finish and are written first.
 * Real download, build or boot failures stay cells (BUILD_FAIL, BOOT_FAIL).
 * The runtimes the kernels use are prepared first (`runtimes`: their
 * classes by name; tests give fakes) and stopped when the run ends, however
 * it ends.
 */
export async function runMatrix(o: MatrixOptions, runtimes: Readonly<Record<RuntimeName, RuntimeFactory>> = RUNTIME_FACTORIES): Promise<Results> {
  await mkdir(o.outDir, { recursive: true });
  const started = new Date().toISOString();
  return withRuntimes(o, runtimes, (rts) => runPrepared(o, rts, started));
}

/** The run itself, its runtimes prepared. */
async function runPrepared(o: MatrixOptions, rts: MatrixRuntimes, started: string): Promise<Results> {
  const results: Results = {
    schema: RESULTS_SCHEMA, lockstep_version: LOCKSTEP_VERSION, started_at: started, complete: false,
    host: { release: osRelease(), cpus: hostOnlineCpus(), accel: rts.accel.accel, accel_why: rts.accel.why, emulator: rts.emulator },
    kernels: [], scenarios: o.scenarios.map((s) => ({ id: s.id, hash: scenarioHash(s), cpus: s.cpus, def: s })), cells: [],
  };
  results.matrix = matrixIdentity(o.kernels.map((k) => k.id), results.scenarios);
  const reproSha = await reproducerBinary().then((b) => createHash('sha256').update(b).digest('hex'), () => null);
  const groups = planRun(o, results);
  // No path of this machine in what is written: log paths relative to the
  // results directory, the cache, checkout, $HOME and temp dir by name.
  const roots = pathRoots({ out: o.outDir, cache: o.cacheDir, repo: LOCKSTEP_ROOT, home: homedir(), tmp: tmpdir() });
  const sink = new ResultsSink(results, o.outDir, roots, groups.reduce((n, g) => n + groupScenarios(g).length, 0), (e) => emit(o, e));
  const pool = new KernelPool({ ...o, auxPmu: o.scenarios.some(usesAux) }, sink);
  const env: GroupEnv = { o, sink, pool, rts, reproSha };
  // --jobs VM groups (boots) at once. Host and container groups boot nothing
  // and take no boot slot: they start when their kernel is ready and run their
  // scenarios one at a time on the host kernel (onHostKernel, group.ts), so a
  // host group waiting for that lock does not keep a boot slot idle, and a
  // host group of SKIPs ends at once.
  const boots = new PQueue({ concurrency: Math.max(1, o.jobs) });
  await Promise.all(groups.map(async (g) => {
    await pool.whenReady(o.kernels.find((k) => k.id === g.kernel)!);
    const run = async (): Promise<void> => { if (!pool.setupError) await runGroupKept(env, g); };
    await (isVmRuntime(g.runtime) ? boots.add(run) : run());
  }));
  return sink.finish(!o.signal?.aborted && pool.setupError === undefined, pool.setupError);
}

/**
 * The run's groups in the order they start (one boot per kernel x CPU count,
 * this shard's only); the scenario definitions of "any" scenarios compiled
 * for other CPU counts are added to `results` (readers find a cell's def by
 * scenario_hash), and so is the shard.
 */
function planRun(o: MatrixOptions, results: Results): PlannedGroup[] {
  const planned = planGroups(o.kernels.map((k) => ({ id: k.id, runtime: runtimeOf(k, o.runtime), pageKb: specPageKb(k) })), o.scenarios, { hostCpus: hostOnlineCpus(), anyCpus: o.anyCpus });
  for (const s of planned.flatMap(groupScenarios)) {
    const hash = scenarioHash(s);
    if (!results.scenarios.some((x) => x.hash === hash)) results.scenarios.push({ id: s.id, hash, cpus: s.cpus, def: s });
  }
  const mine = o.shard ? shardGroups(planned, o.shard) : planned;
  if (o.shard) results.shard = { ...o.shard, groups: mine.map((g) => g.key) };
  return scheduleOrder(mine);
}

/** runGroup, where a bug in one group must not lose the others: its cells are ERROR with the stack, and the run goes on. */
async function runGroupKept(env: GroupEnv, g: PlannedGroup): Promise<void> {
  const { o, sink, pool } = env;
  try {
    await runGroup(env, g);
  } catch (e) {
    if (isUserError(e) && !o.signal?.aborted) { pool.setupError ??= e; return; }
    const ctx = { ...cellContext(o, g, null), splats: undefined };
    sink.add(g, groupScenarios(g).map((s) => cellWithoutRun(ctx, s, 'ERROR', `internal error: ${(e as Error).stack ?? e}`)));
    await sink.persist();
  }
}
