// Running a matrix: fetch each kernel once, run each group (one boot or one
// host run) under a concurrency budget, turn outcomes into cells, and write
// results.json + table.md atomically after every group, so an interrupted or
// crashed run keeps every cell it finished.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir, release as osRelease, tmpdir } from 'node:os';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { ensureKernel, type KernelArtifact } from '../kernels/artifact.ts';
import { acquireLock } from '../util/lock.ts';
import { resolveExpect } from '../kernels/expect.ts';
import { AUX_SKIP_REASON } from '../kernels/source-spec.ts';
import { nrCpusOf, vmOffer } from '../kernels/obtain/source/toolchain.ts';
import { type KernelSpec, specPageKb } from '../kernels/spec.ts';
import { type BaseImage, ensureBaseImage, reproducerBinary } from '../image/initramfs.ts';
import type { Arch } from '../kernels/types.ts';
import { createHash } from 'node:crypto';
import { type Expectation, logicLabel } from '../model/index.ts';
import { type CompiledScenario, hasFaultInjection, usesAux } from '../scenario/ops.ts';
import { auxLoadSkip, auxPmuSkip } from '../kernels/obtain/aux-module.ts';
import { DEFAULT_ANY_CPUS, scenarioHash } from '../scenario/load.ts';
import { freshHostUids, HostRuntime, hostOffer, hostOnlineCpus } from '../runner/host.ts';
import { containerRuntime, hostPerfSysctls } from '../runner/container.ts';
import { containerOffer } from '../container/settings.ts';
import { type Offer, skipReason } from '../scenario/skip.ts';
import { scenarioNeeds } from '../scenario/load.ts';
import { type SimulateOptions, simOptionsForVersion } from '../model/simulate.ts';
import { kvmUsable, qemuVersion, type Accel } from '../runner/qemu.ts';
import type { GroupOutcome, Runtime } from '../runner/runtime.ts';
import { QemuRuntime } from '../runner/vm.ts';
import { VirtmeRuntime, vngVersion } from '../runner/virtme.ts';
import { readArtifactConfig, treeOfImage, virtmeDebianTree, vngBootReason, virtmeSourceSpec } from '../kernels/obtain/virtme-root.ts';
import { type CellAttempt, RESULTS_SCHEMA, type CellResult, type KernelRecord, type Results, verdictClass } from '../results/schema.ts';
import { renderTable } from '../results/table.ts';
import { serializeResults, writeAtomic } from '../results/write.ts';
import { pathRoots, portableJson } from '../results/paths.ts';
import { fileURLToPath } from 'node:url';
import { ConfigError, isUserError } from '../util/errors.ts';
import { kernelProvenance, kernelResolution, releaseKind } from './provenance.ts';
import { type CellContext, cellsFromOutcome, cellWithoutRun } from './cells.ts';
import { type SplatPolicy, splatDecider } from '../policy/splats.ts';
import { groupTimeoutMs, isVmRuntime, planGroups, type PlannedGroup, scheduleOrder } from './plan.ts';
import { matrixIdentity, shardGroups, type ShardSpec } from './shard.ts';

/** CONFIG_NR_CPUS a source kernel's fragment sets, or null (unreadable: the build step reports that). */
function nrCpusOfFile(path: string): number | null {
  try {
    return nrCpusOf(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

/** Machine-wide: one lockstep at a time runs scenarios on the host kernel. */
export const HOST_KERNEL_LOCK = join(existsSync('/run/lock') ? '/run/lock' : tmpdir(), 'lockstep-host-kernel.lock');

export const LOCKSTEP_VERSION = '0.1.0';

/** lockstep's checkout (re-run commands are written relative to it). */
export const LOCKSTEP_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** ` --cpus N` for a re-run of an "any" scenario a VM group ran at another count than the default, else '' */
function anyCpusFlag(g: PlannedGroup, scenario: string): string {
  const s = g.scenarios.find((x) => x.id === scenario);
  return isVmRuntime(g.runtime) && s?.cpus_any && g.cpus !== DEFAULT_ANY_CPUS ? ` --cpus ${g.cpus}` : '';
}

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
  /** the command line that reproduces a cell (scenario, kernel), run from lockstep's checkout; absolute paths in it are made portable */
  rerun: (kernel: string, scenario: string) => string;
  /** run only this slice of the matrix's groups (`--shard i/n`) */
  shard?: ShardSpec;
  /** which console splats fail a cell (default: MEASURE_POLICY, src/policy/splats.ts) */
  splatPolicy?: SplatPolicy;
  /** boots per group at most: cells that end TIMEOUT, BOOT_FAIL or ERROR run again in a fresh boot (default 1) */
  attempts?: number;
  /** "virtme": boot every VM kernel through virtme-ng (`run --runtime virtme`), whatever its spec says */
  runtime?: 'virtme';
  /** vCPU counts VM groups run `"cpus": "any"` scenarios at (`--cpus`; default [2]); host rows use the host's online count */
  anyCpus?: number[];
}

/**
 * Test hook: $LOCKSTEP_TEST_FAIL_FIRST_BOOTS=N makes the first N QEMU boots
 * of this process fail for real (QEMU is given a kernel image that does not
 * exist, so it exits before the guest starts: BOOT_FAIL), to exercise the
 * retries. Unset in normal use.
 */
let bootsToFail = Number(process.env.LOCKSTEP_TEST_FAIL_FIRST_BOOTS ?? 0) || 0;
const failThisBoot = (): boolean => bootsToFail-- > 0;

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

/** Every scenario of a group: those it runs and those that do not fit its kernel's page size. */
const groupScenarios = (g: PlannedGroup): CompiledScenario[] => [...g.scenarios, ...(g.unfit ?? []).map((u) => u.scenario)];

/** The runtime of a kernel: its spec's, unless `--runtime virtme` forces every x86_64 VM kernel through vng (arm64 guests stay on lockstep's own QEMU). */
const runtimeOf = (k: KernelSpec, force?: 'virtme'): 'host' | 'qemu' | 'container' | 'virtme' =>
  (k.kind === 'host' ? (k.runtime === 'container' ? 'container' : 'host') : (k.arch ?? 'x86_64') !== 'x86_64' ? 'qemu' : force ?? (k.runtime === 'virtme' ? 'virtme' : 'qemu'));

/**
 * Run the matrix and write OUT/results.json + table.md after every group.
 * Returns the results (complete: false when interrupted). Throws a
 * ConfigError/MissingDependencyError (the CLI's exit 2, one line naming
 * file, field and fix) when a kernel's setup fails on bad input or a missing
 * tool: no new group starts, running ones finish and are written first.
 * Real download, build or boot failures stay cells (BUILD_FAIL, BOOT_FAIL).
 */
export async function runMatrix(o: MatrixOptions): Promise<Results> {
  await mkdir(o.outDir, { recursive: true });
  const started = new Date().toISOString();
  const needVm = o.kernels.some((k) => runtimeOf(k, o.runtime) === 'qemu');
  const accelInfo = needVm
    ? (o.accel ? { accel: o.accel, why: `--accel ${o.accel}` } : await kvmUsable().then((k) => ({ accel: k.ok ? 'kvm' as const : 'tcg' as const, why: k.why })))
    : { accel: 'none' as const, why: 'no VM kernels in this matrix' };
  const results: Results = {
    schema: RESULTS_SCHEMA, lockstep_version: LOCKSTEP_VERSION, started_at: started, complete: false,
    host: { release: osRelease(), cpus: hostOnlineCpus(), accel: accelInfo.accel, accel_why: accelInfo.why, emulator: needVm ? await qemuVersion() : undefined },
    kernels: [], scenarios: o.scenarios.map((s) => ({ id: s.id, hash: scenarioHash(s), cpus: s.cpus, def: s })), cells: [],
  };
  results.matrix = matrixIdentity(o.kernels.map((k) => k.id), results.scenarios);
  const reproSha = await reproducerBinary().then((b) => createHash('sha256').update(b).digest('hex'), () => null);
  // The base initramfs per guest arch, built (arm64: busybox fetched) at its first boot.
  const bases = new Map<Arch, Promise<BaseImage>>();
  const baseOf = (arch: Arch): Promise<BaseImage> => {
    if (!bases.has(arch)) bases.set(arch, ensureBaseImage(o.cacheDir, { arch, log: (m) => o.log(`[guest ${arch}] ${m}`), signal: o.signal }));
    return bases.get(arch)!;
  };
  // x86_64's is checked before any boot: a missing busybox or reproducer stops the run here (exit 2)
  if (needVm && o.kernels.some((k) => runtimeOf(k, o.runtime) === 'qemu' && k.kind !== 'host' && (k.arch ?? 'x86_64') === 'x86_64')) await baseOf('x86_64');
  const qemu = needVm && accelInfo.accel !== 'none' ? new QemuRuntime(baseOf, accelInfo, Boolean(o.accel)) : undefined;
  const host = new HostRuntime();
  // vng missing: the run stops here (exit 2) with the command that installs it
  const virtme = o.kernels.some((k) => runtimeOf(k, o.runtime) === 'virtme') ? new VirtmeRuntime(`${await vngVersion()} (${await qemuVersion()})`) : undefined;
  // The Docker engine and the image, once per run; a missing engine stops the run here (exit 2, with how to start it).
  const container = o.kernels.some((k) => runtimeOf(k, o.runtime) === 'container') ? await containerRuntime((m) => o.log(`[container] ${m}`)) : undefined;
  // Read before any host group runs: a host scenario changes them for its duration.
  const hostSysctls = container ? hostPerfSysctls() : undefined;
  // Host and container groups share one kernel, its sysctls and CPUs: one at
  // a time in this run, and, through a lock file, one at a time on the
  // machine (another lockstep lowering perf_event_mlock_kb mid-scenario would
  // make this run's cells MISMATCH for nothing).
  let hostKernelBusy: Promise<unknown> = Promise.resolve();
  const onHostKernel = <T>(f: () => Promise<T>): Promise<T> => {
    const locked = async (): Promise<T> => {
      const release = await acquireLock(HOST_KERNEL_LOCK, 'the host kernel (its sysctls and per-uid counters)', { log: o.log, timeoutMs: 6 * 3600_000 });
      try { return await f(); } finally { await release(); }
    };
    const p = hostKernelBusy.then(locked, locked);
    hostKernelBusy = p.catch(() => {});
    return p;
  };

  // No path of this machine in what is written: log paths relative to the
  // results directory, the cache, checkout, $HOME and temp dir by name.
  const roots = pathRoots({ out: o.outDir, cache: o.cacheDir, repo: LOCKSTEP_ROOT, home: homedir(), tmp: tmpdir() });
  // Writes are serialised: each one snapshots the cells finished so far. A
  // write that fails is not a group's failure (its cells are measured and
  // kept in memory): it is reported once, later writes still try, and the
  // run ends with the error if the last write fails too.
  let writing = Promise.resolve();
  let writeError: Error | undefined;
  const persist = (): Promise<void> => {
    writing = writing.then(async () => {
      results.cells.sort((a, b) => a.kernel.localeCompare(b.kernel) || a.scenario.localeCompare(b.scenario));
      const portable = portableJson(results, roots);
      try {
        await writeAtomic(join(o.outDir, 'results.json'), serializeResults(portable));
        await writeAtomic(join(o.outDir, 'table.md'), renderTable(portable));
        writeError = undefined;
      } catch (e) {
        if (!writeError) o.log(`could not write ${join(o.outDir, 'results.json')}: ${(e as Error).message} (the cells stay measured; retried after the next group)`);
        writeError = e as Error;
      }
    });
    return writing;
  };

  // Kernel artifacts: fetched (or built) once per kernel, shared by its groups.
  const artifacts = new Map<string, Promise<KernelArtifact>>();
  const logics = new Map<string, Expectation | null>();
  const artifact = (k: KernelSpec): Promise<KernelArtifact> => {
    let p = artifacts.get(k.id);
    if (!p) {
      // virtme: a source kernel is built with vng's options added to its fragment
      const spec = runtimeOf(k, o.runtime) === 'virtme' && k.kind === 'source' ? virtmeSourceSpec(k, o.cacheDir) : Promise.resolve(k);
      p = spec.then((s) => ensureKernel(s, { cacheDir: o.cacheDir, log: (m) => o.log(`[${k.id}] ${m}`), signal: o.signal, auxPmu: o.scenarios.some(usesAux) }).then((a) => {
        const exp = resolveExpect(k, a.version);
        logics.set(k.id, exp.logic);
        const rec: KernelRecord = {
          id: k.id, kind: k.kind, version: a.version, release: a.release, expected_logic: exp.logic ? logicLabel(exp.logic) : null,
          expect_reason: exp.reason, artifact_sha256: a.sha256, source: kernelProvenance(a).source, release_kind: releaseKind(a),
          ...(k.kind !== 'host' && k.arch && k.arch !== 'x86_64' ? { arch: k.arch } : {}),
          ...(specPageKb(k) !== 4 ? { page_kb: specPageKb(k) } : {}),
        };
        const resolution = kernelResolution(a);
        if (resolution) rec.resolution = resolution;
        results.kernels.push(rec);
        results.kernels.sort((x, y) => o.kernels.findIndex((s) => s.id === x.id) - o.kernels.findIndex((s) => s.id === y.id));
        return a;
      }));
      artifacts.set(k.id, p);
    }
    return p;
  };

  const planned = planGroups(o.kernels.map((k) => ({ id: k.id, runtime: runtimeOf(k, o.runtime), pageKb: specPageKb(k) })), o.scenarios, { hostCpus: hostOnlineCpus(), anyCpus: o.anyCpus });
  // "any" scenarios compiled for other counts: their defs too (readers find a cell's def by scenario_hash)
  for (const s of planned.flatMap(groupScenarios)) {
    const hash = scenarioHash(s);
    if (!results.scenarios.some((x) => x.hash === hash)) results.scenarios.push({ id: s.id, hash, cpus: s.cpus, def: s });
  }
  const mine = o.shard ? shardGroups(planned, o.shard) : planned;
  if (o.shard) results.shard = { ...o.shard, groups: mine.map((g) => g.key) };
  const groups = scheduleOrder(mine);
  const total = mine.reduce((n, g) => n + groupScenarios(g).length, 0);
  let done = 0;
  const t0 = Date.now();
  const report = (cells: CellResult[], g: PlannedGroup, extra = ''): void => {
    done += cells.length;
    const summary = cells.map((c) => `${c.scenario}=${c.verdict}`).join(' ');
    o.log(`[${done}/${total} cells, ${((Date.now() - t0) / 1000).toFixed(0)}s] ${g.key}: ${summary}${extra}`);
  };

  const queue = new PQueue({ concurrency: Math.max(1, o.jobs) });
  /** the first user error of a kernel's setup (ConfigError, MissingDependencyError): thrown once the run is kept */
  let setupError: ConfigError | undefined;
  const runGroup = async (g: PlannedGroup): Promise<void> => {
    const spec = o.kernels.find((k) => k.id === g.kernel)!;
    let simOpts: SimulateOptions | undefined;
    const ctx = (logic: Expectation | null): CellContext => ({
      kernel: g.kernel, logic, runtime: g.runtime, startedAt: new Date().toISOString(),
      scenarioHash, rerun: (s) => o.rerun(g.kernel, s) + anyCpusFlag(g, s), simOpts,
      splats: o.splatPolicy ? splatDecider(o.splatPolicy, g.kernel) : undefined,
    });
    if (spec.kind === 'source' && spec.aux_only) {
      // Differs from its base logic only on AUX unmapping: nothing to build or boot without an AUX-capable PMU.
      const logic = resolveExpect(spec, spec.version).logic;
      if (!results.kernels.some((k) => k.id === spec.id)) {
        results.kernels.push({ id: spec.id, kind: spec.kind, version: spec.version, expected_logic: logic ? logicLabel(logic) : null, expect_reason: AUX_SKIP_REASON, artifact_sha256: null });
      }
      const cells = groupScenarios(g).map((s) => cellWithoutRun(ctx(logic), s, 'SKIP', AUX_SKIP_REASON));
      results.cells.push(...cells);
      report(cells, g);
      await persist();
      return;
    }
    let a: KernelArtifact;
    try {
      // an interrupt must not wait for a kernel download or build to finish
      a = await untilAborted(artifact(spec), o.signal);
    } catch (e) {
      if (isUserError(e) && !o.signal?.aborted) {
        // Bad input or a missing tool (a misspelt package, an unreadable
        // spec path): not a property of the kernel. Start no new group; the
        // run ends with this one line (exit 2) once the running ones are kept.
        setupError ??= e;
        return;
      }
      const reason = `kernel artifact: ${(e as Error).message}`;
      if (!results.kernels.some((k) => k.id === spec.id)) {
        results.kernels.push({ id: spec.id, kind: spec.kind, version: 'version' in spec && spec.version ? spec.version : '?', expected_logic: null, expect_reason: reason, artifact_sha256: null });
      }
      const cells = groupScenarios(g).map((s) => cellWithoutRun(ctx(null), s, o.signal?.aborted ? 'ERROR' : spec.kind === 'source' ? 'BUILD_FAIL' : 'BOOT_FAIL', reason));
      results.cells.push(...cells);
      report(cells, g);
      await persist();
      return;
    }
    const logic = logics.get(spec.id) ?? null;
    simOpts = simOptionsForVersion(a.version);
    // One skip rule (src/scenario/skip.ts); each runtime only says what it offers.
    const offer: Offer = g.runtime === 'host' ? hostOffer()
      : g.runtime === 'container' ? containerOffer({ onlineCpus: hostOnlineCpus(), ...hostSysctls! })
      : vmOffer(Array.isArray(a.meta.absent_options) ? (a.meta.absent_options as string[]) : [], spec.kind === 'source' ? nrCpusOfFile(spec.config) : null);
    const runnable: CompiledScenario[] = [];
    const skipped: CellResult[] = [];
    for (const u of g.unfit ?? []) skipped.push(cellWithoutRun(ctx(logic), u.scenario, 'SKIP', u.scenario.id + ' ' + u.reason));
    for (const s of g.scenarios) {
      // a Debian image whose lockstep_aux module could not be had: its AUX scenarios SKIP with why (src/kernels/obtain/debian-auxpmu.ts)
      const why = skipReason(scenarioNeeds(s), offer) ?? (usesAux(s) ? auxPmuSkip(a.meta.aux_pmu) : null);
      if (why) skipped.push(cellWithoutRun(ctx(logic), s, 'SKIP', why));
      else runnable.push(s);
    }
    // virtme: the image vng boots (a Debian kernel with its own modules beside it), or why vng cannot boot it
    let bootImage = a.vmlinuz;
    if (g.runtime === 'virtme' && runnable.length) {
      const cfg = await readArtifactConfig(a);
      // modules count where vng finds them: a Debian package's (unpacked beside it), a built tree's (modules.order beside its arch/x86/boot/bzImage)
      const tree = spec.kind === 'image' ? treeOfImage(a.vmlinuz) : null;
      const treeModules = tree !== null && existsSync(join(tree, 'modules.order'));
      const why = cfg === null ? 'no kernel config to check for the 9p/virtio options vng needs' : vngBootReason(cfg, spec.kind === 'debian-image' || treeModules);
      if (why) {
        skipped.push(...runnable.map((s) => cellWithoutRun(ctx(logic), s, 'SKIP', why)));
        runnable.length = 0;
      } else if (spec.kind === 'debian-image') {
        bootImage = await virtmeDebianTree(a, spec.suite ?? null, { cacheDir: o.cacheDir, log: (m) => o.log(`[${spec.id}] ${m}`), signal: o.signal });
      }
    }
    let cells = skipped;
    if (runnable.length && !o.signal?.aborted) {
      const rt: Runtime = g.runtime === 'host' ? host : g.runtime === 'container' ? container! : g.runtime === 'virtme' ? virtme! : qemu!;
      /** One boot (or host run) of `scenarios`: cells with their timing and the boot's provenance. */
      const runOnce = async (scenarios: CompiledScenario[], attempt: number): Promise<{ cells: CellResult[]; outcome: GroupOutcome }> => {
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
          timeoutMs: groupTimeoutMs({ ...g, scenarios }, accelInfo.accel === 'kvm', o.timeoutMs),
          opTimeoutS: o.opTimeoutS, logDir, signal: o.signal,
          onEvent: (ev) => {
            if (ev.ev === 'begin' || ev.ev === 'skip') began.set(ev.scenario, Date.now());
            if (ev.ev === 'end' || ev.ev === 'skip') ended.set(ev.scenario, Date.now());
          },
        });
        const outcome: GroupOutcome = isVmRuntime(g.runtime) ? await runIt() : await onHostKernel(runIt);
        const got = cellsFromOutcome(ctx(logic), scenarios, outcome);
        // the guest had lockstep_aux but found no PMU: say what its insmod said
        const aux = new Set(scenarios.filter(usesAux).map((s) => s.id));
        const auxSkipped = got.filter((c) => c.verdict === 'SKIP' && c.reason && aux.has(c.scenario));
        if (a.meta.aux_pmu && outcome.consoleLog && auxSkipped.length) {
          const consoleText = await readFile(outcome.consoleLog, 'utf8').catch(() => '');
          for (const c of auxSkipped) c.reason = auxLoadSkip(a.meta.aux_pmu, consoleText, c.reason!) ?? c.reason;
        }
        for (const c of got) {
          const b = began.get(c.scenario);
          const e = ended.get(c.scenario);
          if (b !== undefined) c.started_at = new Date(b).toISOString();
          c.duration_ms = b !== undefined && e !== undefined ? e - b : null;
          c.qemu_version = isVmRuntime(g.runtime) ? outcome.emulator ?? null : null;
          c.qemu_argv = isVmRuntime(g.runtime) ? outcome.argv : null;
          c.accel_why = outcome.accelWhy;
          c.accel = outcome.accel;
        }
        if (outcome.accel !== 'none') { results.host.accel = outcome.accel; results.host.accel_why = outcome.accelWhy; }
        if (outcome.emulator) results.host.emulator = outcome.emulator;
        return { cells: got, outcome };
      };
      // Infrastructure failures (TIMEOUT, BOOT_FAIL, ERROR) get another boot
      // of just their scenarios, up to o.attempts boots; every attempt is kept
      // in the cell, and a cell that passed only on a retry is flaky.
      const maxAttempts = Math.max(1, o.attempts ?? 1);
      const history = new Map<string, CellAttempt[]>();
      let pending = runnable;
      const final: CellResult[] = [];
      let last: GroupOutcome | undefined;
      for (let n = 1; pending.length; n++) {
        const { cells: got, outcome } = await runOnce(pending, n);
        last = outcome;
        for (const c of got) {
          const h = history.get(c.scenario) ?? [];
          h.push({ attempt: n, verdict: c.verdict, ...(c.reason !== undefined ? { reason: c.reason } : {}), duration_ms: c.duration_ms ?? null, console_log: c.console_log ?? null });
          history.set(c.scenario, h);
        }
        const again = n < maxAttempts && !o.signal?.aborted ? got.filter((c) => verdictClass(c.verdict) === 'infra') : [];
        final.push(...got.filter((c) => !again.includes(c)));
        if (again.length) o.log(`${g.key}: attempt ${n}: ${again.map((c) => `${c.scenario}=${c.verdict}`).join(' ')}: retrying in a fresh boot (attempt ${n + 1} of ${maxAttempts})`);
        pending = pending.filter((s) => again.some((c) => c.scenario === s.id));
      }
      for (const c of final) {
        const h = history.get(c.scenario)!;
        if (h.length < 2) continue;
        c.attempts = h;
        if (verdictClass(c.verdict) !== 'infra') c.flaky = true;
      }
      final.sort((x, y) => runnable.findIndex((s) => s.id === x.scenario) - runnable.findIndex((s) => s.id === y.scenario));
      cells = [...cells, ...final];
      results.cells.push(...cells);
      const outcome = last!;
      report(cells, g, outcome.bootMs !== null ? ` (boot to first result ${(outcome.bootMs / 1000).toFixed(1)}s, group ${(outcome.wallMs / 1000).toFixed(1)}s, ${outcome.accel})` : ` (${outcome.status}: ${outcome.detail})`);
    } else {
      if (o.signal?.aborted) for (const s of runnable) cells.push(cellWithoutRun(ctx(logic), s, 'ERROR', 'run interrupted before this cell started'));
      results.cells.push(...cells);
      report(cells, g);
    }
    for (const c of cells) {
      c.kernel_version = a.version;
      const prov = kernelProvenance(a);
      c.kernel_source = prov.source;
      c.kernel_config_sha256 = prov.config_sha256;
      c.kernel_artifact_sha256 = a.sha256;
      c.reproducer_sha256 = reproSha;
      c.accel_why ??= c.verdict === 'SKIP' ? 'not run' : accelInfo.why;
    }
    await persist();
  };
  // A kernel's fetch or build does not hold a boot slot: a group joins the
  // boot queue once its kernel is ready (or failed: runGroup reports it),
  // so downloads of later kernels overlap with the boots of earlier ones.
  // Setups run `jobs` at a time among themselves (builds are CPU-heavy).
  const setups = new PQueue({ concurrency: Math.max(1, o.jobs) });
  const ready = new Map<string, Promise<unknown>>();
  const kernelReady = (k: KernelSpec): Promise<unknown> => {
    if (k.kind === 'host' || (k.kind === 'source' && k.aux_only)) return Promise.resolve();
    let p = ready.get(k.id);
    if (!p) {
      p = setups.add(async () => { if (!setupError && !o.signal?.aborted) await artifact(k).catch(() => {}); }).catch(() => {});
      ready.set(k.id, p);
    }
    return p;
  };
  const finished: Promise<unknown>[] = [];
  for (const g of groups) {
    const spec = o.kernels.find((k) => k.id === g.kernel)!;
    finished.push(kernelReady(spec).then(() => queue.add(async () => {
      if (setupError) return;
      try {
        await runGroup(g);
      } catch (e) {
        if (isUserError(e) && !o.signal?.aborted) { setupError ??= e; return; }
        // A bug in one group must not lose the others: record it and go on.
        const ctx: CellContext = { kernel: g.kernel, logic: null, runtime: g.runtime, startedAt: new Date().toISOString(), scenarioHash, rerun: (x) => o.rerun(g.kernel, x) + anyCpusFlag(g, x) };
        const cells = groupScenarios(g).map((s) => cellWithoutRun(ctx, s, 'ERROR', `internal error: ${(e as Error).stack ?? e}`));
        results.cells.push(...cells);
        report(cells, g);
        await persist();
      }
    })));
  }
  await Promise.all(finished);
  await queue.onIdle();
  await writing;
  results.complete = !o.signal?.aborted && setupError === undefined;
  results.finished_at = new Date().toISOString();
  await persist();
  if (setupError) throw setupError;
  if (writeError) throw writeError;
  return portableJson(results, roots);
}
