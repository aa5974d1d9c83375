// The build/boot side of bisect, behind one interface: given a position
// (a kernel spec, or a kernel tree at some commit), make one attempt at
// measuring the scenario on it. The real implementation boots through the
// matrix executor (src/matrix/run.ts) with one kernel and one scenario, so a
// bisect step is exactly a `lockstep run` cell and leaves the same
// results.json and logs. How a tree becomes a bootable image is a BuildFn,
// supplied by whoever builds kernels (src/kernels/ source builds).

import { join } from 'node:path';
import { runMatrix } from '../matrix/run.ts';
import { vmOffer } from '../kernels/obtain/source/toolchain.ts';
import { scenarioNeeds } from '../scenario/load.ts';
import { skipReason } from '../scenario/skip.ts';
import type { ImageSpec, KernelSpec } from '../kernels/spec.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import type { Accel } from '../runner/qemu.ts';
import { attemptOfCell } from './behaviour.ts';
import { judgeStep, type Mark } from './decide.ts';
import type { AttemptRecord, BisectState, StepRecord } from './state.ts';

/** Build the tree as it is checked out now. A failed build is an answer, not an exception. */
export type BuildFn = (
  tree: string,
  opts: { log: (line: string) => void; signal?: AbortSignal },
) => Promise<{ vmlinuz: string; version: string; /** fragment options the release lacks (CONFIG_IO_URING before 5.1) */ absentOptions?: string[] } | { buildFailed: string }>;

/** What a position is, for the environment. */
export type Target =
  | { kind: 'spec'; spec: KernelSpec }
  | { kind: 'tree'; tree: string; /** full commit sha, for ids and messages */ commit: string };

export interface BisectEnv {
  /** One attempt; build/boot/run problems come back as the record's attempt, never as a throw. */
  attempt(target: Target, outDir: string): Promise<AttemptRecord>;
}

export interface MatrixEnvOptions {
  scenario: CompiledScenario;
  cacheDir: string;
  accel?: Accel;
  timeoutMs?: number;
  opTimeoutS: number;
  build?: BuildFn;
  signal?: AbortSignal;
  log: (line: string) => void;
  /** false: boot every attempt instead of restoring a saved guest (src/runner/vm-snapshot.ts); default true */
  snapshots?: boolean;
}

/** The real environment: build (trees only), then one matrix cell. */
export function matrixEnv(o: MatrixEnvOptions): BisectEnv {
  return {
    async attempt(target, outDir) {
      const t0 = Date.now();
      const started_at = new Date().toISOString();
      let spec: KernelSpec;
      if (target.kind === 'spec') {
        spec = target.spec;
      } else {
        if (!o.build) throw new Error('bisect over a tree needs a build function');
        const b = await o.build(target.tree, { log: o.log, signal: o.signal });
        if ('buildFailed' in b) {
          return { attempt: { status: 'build_failed', reason: b.buildFailed }, verdict: 'BUILD_FAIL', started_at, wall_ms: Date.now() - t0, out_dir: outDir };
        }
        const lacks = skipReason(scenarioNeeds(o.scenario), vmOffer(b.absentOptions ?? []));
        if (lacks) return { attempt: { status: 'unjudgeable', verdict: 'SKIP', reason: lacks }, verdict: 'SKIP', started_at, wall_ms: Date.now() - t0, out_dir: outDir };
        const img: ImageSpec = {
          id: `bisect-${target.commit.slice(0, 12)}`, kind: 'image', path: b.vmlinuz, version: b.version,
          expect: { mode: 'unknown' }, origin: `bisect of ${target.tree}`, at: '',
          description: `${target.tree} at ${target.commit}`,
        };
        spec = img;
      }
      const r = await runMatrix({
        kernels: [spec], scenarios: [o.scenario], outDir, cacheDir: o.cacheDir, jobs: 1,
        accel: o.accel, timeoutMs: o.timeoutMs, opTimeoutS: o.opTimeoutS, signal: o.signal,
        ...(o.snapshots === false ? { snapshots: false } : {}),
        log: (l) => o.log(l),
        rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
      });
      const cell = r.cells.find((c) => c.scenario === o.scenario.id);
      if (!cell) {
        return { attempt: { status: 'infra', verdict: 'ERROR', reason: 'the run produced no cell' }, verdict: 'ERROR', started_at, wall_ms: Date.now() - t0, out_dir: outDir };
      }
      const { attempt, behaviour } = attemptOfCell(o.scenario, cell);
      const rec: AttemptRecord = { attempt, verdict: cell.verdict, started_at, wall_ms: Date.now() - t0, out_dir: outDir };
      if (behaviour) rec.behaviour = behaviour;
      if (cell.kernel_release) rec.kernel_release = cell.kernel_release;
      return rec;
    },
  };
}

export interface JudgeOptions {
  env: BisectEnv;
  state: BisectState;
  /** key into state.steps (kernel id or commit sha) */
  key: string;
  label: string;
  target: Target;
  /** is this the reference (position 0 / the good end)? */
  isReference: boolean;
  maxAttempts: number;
  /** directory for this position's attempts (attempt-N below it) */
  outDir: string;
  save: () => Promise<void>;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Judge one position: reuse a saved mark, else attempt until judgeStep
 * (pure) gives a mark, saving the state after every attempt. Returns null
 * when interrupted before a mark.
 */
export async function judgePosition(o: JudgeOptions): Promise<{ mark: Mark; why: string; step: StepRecord } | null> {
  const steps = o.state.steps;
  const step: StepRecord = steps[o.key] ?? (steps[o.key] = { label: o.label, attempts: [] });
  if (step.mark !== undefined) {
    o.log(`${o.label}: ${step.mark} (saved: ${step.why ?? ''})`);
    return { mark: step.mark, why: step.why ?? '', step };
  }
  const reference = o.isReference ? null : (o.state.reference?.key ?? null);
  if (!o.isReference && reference === null) throw new Error('judging a position before the reference was measured');
  for (;;) {
    const d = judgeStep(step.attempts.map((a) => a.attempt), reference, o.maxAttempts);
    if (d.kind === 'mark') {
      step.mark = d.mark;
      step.why = d.why;
      if (o.isReference && d.mark === 'old') {
        const last = step.attempts[step.attempts.length - 1]!;
        o.state.reference = last.behaviour ?? null;
      }
      await o.save();
      return { mark: d.mark, why: d.why, step };
    }
    if (o.signal?.aborted) return null;
    if (step.attempts.length) o.log(`${o.label}: retrying (${d.why})`);
    const n = step.attempts.length + 1;
    const rec = await o.env.attempt(o.target, join(o.outDir, `attempt-${n}`));
    if (o.signal?.aborted && rec.attempt.status !== 'measured') return null; // an interrupted boot says nothing about the kernel
    step.attempts.push(rec);
    o.log(`${o.label}: attempt ${n}: ${rec.verdict}${rec.behaviour ? ` fits ${rec.behaviour.fits.join(' ') || 'no logic'}` : ''} (${(rec.wall_ms / 1000).toFixed(1)}s)`);
    await o.save();
  }
}
