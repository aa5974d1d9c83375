// The run's kernels: each fetched (or built) once, shared by its groups, its
// record (version, expected logic and why, provenance) added to the results
// when it is ready. A kernel's fetch or build does not hold a boot slot:
// setups run `jobs` at a time among themselves (builds are CPU-heavy), so
// downloads of later kernels overlap with the boots of earlier ones.

import PQueue from 'p-queue';
import { ensureKernel, type KernelArtifact } from '../kernels/artifact.ts';
import { resolveExpect } from '../kernels/expect.ts';
import { virtmeSourceSpec } from '../kernels/obtain/virtme-root.ts';
import { type KernelSpec, specPageKb } from '../kernels/spec.ts';
import { type Expectation, logicLabel } from '../model/index.ts';
import type { KernelRecord } from '../results/schema.ts';
import type { ConfigError } from '../util/errors.ts';
import { kernelProvenance, kernelResolution, releaseKind } from './provenance.ts';
import { runtimeOf } from './runtimes.ts';
import type { ResultsSink } from './sink.ts';

export interface PoolOptions {
  kernels: readonly KernelSpec[];
  cacheDir: string;
  jobs: number;
  runtime?: 'virtme';
  /** build source kernels with lockstep's AUX PMU (some scenario uses AUX) */
  auxPmu: boolean;
  signal?: AbortSignal;
  log: (line: string) => void;
}

/** The kernel record of an artifact: what results.json's kernels[] says of it. */
function kernelRecord(k: KernelSpec, a: KernelArtifact, exp: { logic: Expectation | null; reason: string }): KernelRecord {
  const rec: KernelRecord = {
    id: k.id, kind: k.kind, version: a.version, release: a.release, expected_logic: exp.logic ? logicLabel(exp.logic) : null,
    expect_reason: exp.reason, artifact_sha256: a.sha256, source: kernelProvenance(a).source, release_kind: releaseKind(a),
    ...(k.kind !== 'host' && k.arch && k.arch !== 'x86_64' ? { arch: k.arch } : {}),
    ...(specPageKb(k) !== 4 ? { page_kb: specPageKb(k) } : {}),
  };
  const resolution = kernelResolution(a);
  if (resolution) rec.resolution = resolution;
  return rec;
}

export class KernelPool {
  private readonly artifacts = new Map<string, Promise<KernelArtifact>>();
  private readonly logics = new Map<string, Expectation | null>();
  private readonly ready = new Map<string, Promise<unknown>>();
  private readonly setups: PQueue;
  /** the first user error of a kernel's setup (ConfigError, MissingDependencyError): thrown once the run is kept */
  setupError: ConfigError | undefined;

  constructor(private readonly o: PoolOptions, private readonly sink: ResultsSink) {
    this.setups = new PQueue({ concurrency: Math.max(1, o.jobs) });
  }

  /** The expected logic of a kernel whose artifact is ready (null: expect unknown, or not ready). */
  logic = (id: string): Expectation | null => this.logics.get(id) ?? null;

  /** Kernel `k`'s artifact, fetched or built at the first call. Rejects with the fetch's or build's error. */
  artifact(k: KernelSpec): Promise<KernelArtifact> {
    let p = this.artifacts.get(k.id);
    if (p) return p;
    const o = this.o;
    // virtme: a source kernel is built with vng's options added to its fragment
    const spec = runtimeOf(k, o.runtime) === 'virtme' && k.kind === 'source' ? virtmeSourceSpec(k, o.cacheDir) : Promise.resolve(k);
    p = spec.then((s) => ensureKernel(s, { cacheDir: o.cacheDir, log: (m) => o.log(`[${k.id}] ${m}`), signal: o.signal, auxPmu: o.auxPmu }).then((a) => {
      const exp = resolveExpect(k, a.version);
      this.logics.set(k.id, exp.logic);
      this.sink.addKernel(kernelRecord(k, a, exp), o.kernels.map((x) => x.id));
      return a;
    }));
    this.artifacts.set(k.id, p);
    return p;
  }

  /** Resolves (never rejects) once `k`'s setup has run or failed: the host and AUX-only kernels at once. */
  whenReady(k: KernelSpec): Promise<unknown> {
    if (k.kind === 'host' || (k.kind === 'source' && k.aux_only)) return Promise.resolve();
    let p = this.ready.get(k.id);
    if (!p) {
      p = this.setups.add(async () => { if (!this.setupError && !this.o.signal?.aborted) await this.artifact(k).catch(() => {}); }).catch(() => {});
      this.ready.set(k.id, p);
    }
    return p;
  }
}
