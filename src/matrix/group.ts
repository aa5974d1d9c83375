// One planned group (one kernel at one CPU count: one boot, or one host run)
// from its kernel's artifact to its cells: the scenarios that cannot run
// there SKIP with why, the rest run in one boot (more when an attempt fails
// for infrastructure), and every cell gets the kernel's provenance.

import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KernelArtifact } from '../kernels/artifact.ts';
import { resolveExpect } from '../kernels/expect.ts';
import { auxLoadSkip, auxPmuSkip } from '../kernels/obtain/aux-module.ts';
import { readArtifactConfig, treeOfImage, virtmeDebianTree, vngBootReason } from '../kernels/obtain/virtme-root.ts';
import type { KernelSpec } from '../kernels/spec.ts';
import { AUX_SKIP_REASON } from '../kernels/source-spec.ts';
import { type Expectation, logicLabel } from '../model/index.ts';
import { type SimulateOptions, simOptionsForVersion } from '../model/simulate.ts';
import { splatDecider } from '../policy/splats.ts';
import type { CellResult } from '../results/schema.ts';
import { freshHostUids } from '../runner/host.ts';
import type { GroupOutcome } from '../runner/runtime.ts';
import { DEFAULT_ANY_CPUS, scenarioHash, scenarioNeeds } from '../scenario/load.ts';
import { type CompiledScenario, usesAux } from '../scenario/ops.ts';
import { skipReason } from '../scenario/skip.ts';
import { isUserError } from '../util/errors.ts';
import { runAttempts, type RunOnce } from './attempts.ts';
import { type CellContext, cellsFromOutcome, cellWithoutRun } from './cells.ts';
import type { KernelPool } from './kernel-pool.ts';
import type { MatrixOptions } from './options.ts';
import { groupTimeoutMs, isVmRuntime, type PlannedGroup } from './plan.ts';
import { kernelProvenance } from './provenance.ts';
import type { MatrixRuntimes } from './runtimes.ts';
import { type MatrixEvent, renderEvent, type ResultsSink } from './sink.ts';

/** What every group of a run shares. */
export interface GroupEnv {
  o: MatrixOptions;
  sink: ResultsSink;
  pool: KernelPool;
  rts: MatrixRuntimes;
  /** sha256 of the reproducer binary, or null when it could not be read */
  reproSha: string | null;
}

/**
 * Test hook: $LOCKSTEP_TEST_FAIL_FIRST_BOOTS=N makes the first N QEMU boots
 * of this process fail for real (QEMU is given a kernel image that does not
 * exist, so it exits before the guest starts: BOOT_FAIL), to exercise the
 * retries. Unset in normal use.
 */
let bootsToFail = Number(process.env.LOCKSTEP_TEST_FAIL_FIRST_BOOTS ?? 0) || 0;
const failThisBoot = (): boolean => bootsToFail-- > 0;

/** Every scenario of a group: those it runs and those that do not fit its kernel's page size. */
export const groupScenarios = (g: PlannedGroup): CompiledScenario[] => [...g.scenarios, ...(g.unfit ?? []).map((u) => u.scenario)];

/** ` --cpus N` for a re-run of an "any" scenario a VM group ran at another count than the default, else '' */
function anyCpusFlag(g: PlannedGroup, scenario: string): string {
  const s = g.scenarios.find((x) => x.id === scenario);
  return isVmRuntime(g.runtime) && s?.cpus_any && g.cpus !== DEFAULT_ANY_CPUS ? ` --cpus ${g.cpus}` : '';
}

/** The context cells of group `g` are made in (src/matrix/cells.ts). */
export function cellContext(o: MatrixOptions, g: PlannedGroup, logic: Expectation | null, simOpts?: SimulateOptions): CellContext {
  return {
    kernel: g.kernel, logic, runtime: g.runtime, startedAt: new Date().toISOString(),
    scenarioHash, rerun: (s) => o.rerun(g.kernel, s) + anyCpusFlag(g, s), simOpts,
    splats: o.splatPolicy ? splatDecider(o.splatPolicy, g.kernel) : undefined,
  };
}

/** `p`, or a rejection as soon as `signal` aborts (p keeps running; its late failure is swallowed). */
function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  p.catch(() => { /* reported by whoever still awaits it */ });
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('run interrupted while the kernel was being fetched or built'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); });
  });
}

/**
 * Run group `g` and add its cells to the sink (written at once). A user
 * error of its kernel's setup (bad input, a missing tool) becomes the pool's
 * setupError and adds no cell; other failures to get the kernel are
 * BUILD_FAIL / BOOT_FAIL cells. Throws only on a bug.
 */
export async function runGroup(env: GroupEnv, g: PlannedGroup): Promise<void> {
  const { o, sink, pool } = env;
  const spec = o.kernels.find((k) => k.id === g.kernel)!;
  if (spec.kind === 'source' && spec.aux_only) return auxOnlyGroup(env, g, spec);
  let a: KernelArtifact;
  try {
    // an interrupt must not wait for a kernel download or build to finish
    a = await untilAborted(pool.artifact(spec), o.signal);
  } catch (e) {
    if (isUserError(e) && !o.signal?.aborted) {
      // Bad input or a missing tool (a misspelt package, an unreadable spec
      // path): not a property of the kernel. Start no new group; the run ends
      // with this one line (exit 2) once the running ones are kept.
      pool.setupError ??= e;
      return;
    }
    return artifactFailed(env, g, spec, e as Error);
  }
  const ctx = cellContext(o, g, pool.logic(spec.id), simOptionsForVersion(a.version));
  const { runnable, skipped } = partition(env, g, spec, a, ctx);
  const bootImage = runnable.length ? await virtmeImage(env, g, spec, a, ctx, runnable, skipped) : a.vmlinuz;
  let cells = skipped;
  if (runnable.length && !o.signal?.aborted) {
    const { cells: ran, last } = await runAttempts(runnable, bootOnce(env, g, spec, a, bootImage, ctx), {
      maxAttempts: o.attempts ?? 1, aborted: () => Boolean(o.signal?.aborted),
      onRetry: (attempt, of, retried) => emit(o, { type: 'retry', group: g.key, attempt, of, cells: retried }),
    });
    cells = [...cells, ...ran];
    stamp(env, a, cells);
    const restored = cells.some((c) => c.vm_snapshot?.how === 'restored');
    sink.add(g, cells, { bootMs: last.bootMs, wallMs: last.wallMs, accel: last.accel, status: last.status, detail: last.detail, restored });
  } else {
    if (o.signal?.aborted) for (const s of runnable) cells.push(cellWithoutRun(ctx, s, 'ERROR', 'run interrupted before this cell started'));
    stamp(env, a, cells);
    sink.add(g, cells);
  }
  await sink.persist();
}

/** An event to o.onEvent, or its text (renderEvent) to o.log. */
export function emit(o: MatrixOptions, e: MatrixEvent): void {
  if (o.onEvent) o.onEvent(e);
  else o.log(renderEvent(e));
}

/** A kernel that differs from its base logic only on AUX unmapping: nothing to build or boot without an AUX-capable PMU. */
async function auxOnlyGroup(env: GroupEnv, g: PlannedGroup, spec: Extract<KernelSpec, { kind: 'source' }>): Promise<void> {
  const logic = resolveExpect(spec, spec.version).logic;
  env.sink.addKernel({ id: spec.id, kind: spec.kind, version: spec.version, expected_logic: logic ? logicLabel(logic) : null, expect_reason: AUX_SKIP_REASON, artifact_sha256: null });
  env.sink.add(g, groupScenarios(g).map((s) => cellWithoutRun(cellContext(env.o, g, logic), s, 'SKIP', AUX_SKIP_REASON)));
  await env.sink.persist();
}

/** The kernel could not be had (a failed download or build): every cell says why. */
async function artifactFailed(env: GroupEnv, g: PlannedGroup, spec: KernelSpec, e: Error): Promise<void> {
  const { o, sink } = env;
  const reason = `kernel artifact: ${e.message}`;
  sink.addKernel({ id: spec.id, kind: spec.kind, version: 'version' in spec && spec.version ? spec.version : '?', expected_logic: null, expect_reason: reason, artifact_sha256: null });
  const verdict = o.signal?.aborted ? 'ERROR' : spec.kind === 'source' ? 'BUILD_FAIL' : 'BOOT_FAIL';
  sink.add(g, groupScenarios(g).map((s) => cellWithoutRun(cellContext(o, g, null), s, verdict, reason)));
  await sink.persist();
}

/** The group's scenarios split into those that run and SKIP cells for the rest (one skip rule: src/scenario/skip.ts). */
function partition(env: GroupEnv, g: PlannedGroup, spec: KernelSpec, a: KernelArtifact, ctx: CellContext): { runnable: CompiledScenario[]; skipped: CellResult[] } {
  const offer = env.rts.offerFor(g, spec, a);
  const runnable: CompiledScenario[] = [];
  const skipped: CellResult[] = [];
  for (const u of g.unfit ?? []) skipped.push(cellWithoutRun(ctx, u.scenario, 'SKIP', u.scenario.id + ' ' + u.reason));
  for (const s of g.scenarios) {
    // a Debian image whose lockstep_aux module could not be had: its AUX scenarios SKIP with why (src/kernels/obtain/debian-auxpmu.ts)
    const why = skipReason(scenarioNeeds(s), offer) ?? (usesAux(s) ? auxPmuSkip(a.meta.aux_pmu) : null);
    if (why) skipped.push(cellWithoutRun(ctx, s, 'SKIP', why));
    else runnable.push(s);
  }
  return { runnable, skipped };
}

/**
 * The image group `g` boots: the artifact's, or under virtme a Debian kernel
 * with its own modules beside it. When vng cannot boot the kernel, every
 * runnable scenario moves to `skipped` with why (both arrays are changed).
 */
async function virtmeImage(env: GroupEnv, g: PlannedGroup, spec: KernelSpec, a: KernelArtifact, ctx: CellContext, runnable: CompiledScenario[], skipped: CellResult[]): Promise<string | null> {
  if (g.runtime !== 'virtme') return a.vmlinuz;
  const { o } = env;
  const cfg = await readArtifactConfig(a);
  // modules count where vng finds them: a Debian package's (unpacked beside it), a built tree's (modules.order beside its arch/x86/boot/bzImage)
  const tree = spec.kind === 'image' ? treeOfImage(a.vmlinuz) : null;
  const treeModules = tree !== null && existsSync(join(tree, 'modules.order'));
  const why = cfg === null ? 'no kernel config to check for the 9p/virtio options vng needs' : vngBootReason(cfg, spec.kind === 'debian-image' || treeModules);
  if (why) {
    skipped.push(...runnable.map((s) => cellWithoutRun(ctx, s, 'SKIP', why)));
    runnable.length = 0;
    return a.vmlinuz;
  }
  if (spec.kind !== 'debian-image') return a.vmlinuz;
  return virtmeDebianTree(a, spec.suite ?? null, { cacheDir: o.cacheDir, log: (m) => o.log(`[${spec.id}] ${m}`), signal: o.signal });
}

/** One boot (or host run) of some of the group's scenarios: cells with their timing and the boot's provenance. */
function bootOnce(env: GroupEnv, g: PlannedGroup, spec: KernelSpec, a: KernelArtifact, bootImage: string | null, ctx: CellContext): RunOnce {
  const { o, rts } = env;
  const rt = rts.runtimeFor(g);
  return async (scenarios, attempt) => {
    const uids = !isVmRuntime(g.runtime) ? freshHostUids(scenarios.length) : scenarios.map((_, k) => 10_000 + k);
    const logDir = join(o.outDir, 'logs', attempt === 1 ? g.key : `${g.key}.attempt-${attempt}`);
    await mkdir(logDir, { recursive: true });
    // Per-scenario begin/end times, from the stream as it arrives.
    const began = new Map<string, number>();
    const ended = new Map<string, number>();
    const runIt = (): Promise<GroupOutcome> => rt.run({
      kernel: g.kernel, vmlinuz: g.runtime === 'qemu' && failThisBoot() ? join(logDir, 'no-such-vmlinuz (LOCKSTEP_TEST_FAIL_FIRST_BOOTS)') : bootImage,
      ...(spec.kind !== 'host' && spec.arch ? { arch: spec.arch } : {}), ...(a.initrdExtra ? { initrdExtra: a.initrdExtra } : {}),
      cpus: g.cpus, scenarios, uids,
      timeoutMs: groupTimeoutMs({ ...g, scenarios }, rts.accel.accel === 'kvm', o.timeoutMs),
      opTimeoutS: o.opTimeoutS, logDir, signal: o.signal,
      onEvent: (ev) => {
        if (ev.ev === 'begin' || ev.ev === 'skip') began.set(ev.scenario, Date.now());
        if (ev.ev === 'end' || ev.ev === 'skip') ended.set(ev.scenario, Date.now());
      },
    });
    const outcome: GroupOutcome = isVmRuntime(g.runtime) ? await runIt() : await rts.onHostKernel(runIt);
    const got = cellsFromOutcome(ctx, scenarios, outcome);
    await explainAuxSkips(a, scenarios, outcome, got);
    for (const c of got) {
      const b = began.get(c.scenario);
      const e = ended.get(c.scenario);
      if (b !== undefined) c.started_at = new Date(b).toISOString();
      c.duration_ms = b !== undefined && e !== undefined ? e - b : null;
      c.qemu_version = isVmRuntime(g.runtime) ? outcome.emulator ?? null : null;
      c.qemu_argv = isVmRuntime(g.runtime) ? outcome.argv : null;
      if (outcome.snapshot !== undefined) c.vm_snapshot = outcome.snapshot;
      c.accel_why = outcome.accelWhy;
      c.accel = outcome.accel;
    }
    const host = env.sink.results.host;
    if (outcome.accel !== 'none') { host.accel = outcome.accel; host.accel_why = outcome.accelWhy; }
    if (outcome.emulator) host.emulator = outcome.emulator;
    return { cells: got, outcome };
  };
}

/** The guest had lockstep_aux but found no PMU: its AUX SKIPs say what its insmod said (the console is read only then). */
async function explainAuxSkips(a: KernelArtifact, scenarios: readonly CompiledScenario[], outcome: GroupOutcome, got: CellResult[]): Promise<void> {
  const aux = new Set(scenarios.filter(usesAux).map((s) => s.id));
  const auxSkipped = got.filter((c) => c.verdict === 'SKIP' && c.reason && aux.has(c.scenario));
  if (!a.meta.aux_pmu || !outcome.consoleLog || !auxSkipped.length) return;
  const consoleText = await readFile(outcome.consoleLog, 'utf8').catch(() => '');
  for (const c of auxSkipped) c.reason = auxLoadSkip(a.meta.aux_pmu, consoleText, c.reason!) ?? c.reason;
}

/** What every cell of a kernel shares: its version, source, config and artifact hashes, the reproducer's. */
function stamp(env: GroupEnv, a: KernelArtifact, cells: CellResult[]): void {
  const prov = kernelProvenance(a);
  for (const c of cells) {
    c.kernel_version = a.version;
    c.kernel_source = prov.source;
    c.kernel_config_sha256 = prov.config_sha256;
    c.kernel_artifact_sha256 = a.sha256;
    c.reproducer_sha256 = env.reproSha;
    c.accel_why ??= c.verdict === 'SKIP' ? 'not run' : env.rts.accel.why;
  }
}
