// The runtimes one run needs, one class each behind src/runner/runtime.ts's
// Runtime: only those the matrix's kernels use are made and prepared (in a
// fixed order, before any boot), and stopped when the run ends. Also which
// runtime a group uses and the machine-wide lock that keeps host-kernel
// groups one at a time.

import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KernelArtifact } from '../kernels/artifact.ts';
import type { KernelSpec } from '../kernels/spec.ts';
import { ContainerRuntime } from '../runner/container.ts';
import { HostRuntime } from '../runner/host.ts';
import type { Accel } from '../runner/qemu.ts';
import type { Runtime, RuntimeName } from '../runner/runtime.ts';
import { QemuRuntime } from '../runner/vm.ts';
import { VirtmeRuntime } from '../runner/virtme.ts';
import type { Offer } from '../scenario/skip.ts';
import { acquireLock } from '../util/lock.ts';
import type { PlannedGroup } from './plan.ts';

/** Machine-wide: one lockstep at a time runs scenarios on the host kernel. */
export const HOST_KERNEL_LOCK = join(existsSync('/run/lock') ? '/run/lock' : tmpdir(), 'lockstep-host-kernel.lock');

export type { RuntimeName } from '../runner/runtime.ts';

/** The runtime of a kernel: its spec's, unless `--runtime virtme` forces every x86_64 VM kernel through vng (arm64 guests stay on lockstep's own QEMU). */
export const runtimeOf = (k: KernelSpec, force?: 'virtme'): RuntimeName =>
  (k.kind === 'host' ? (k.runtime === 'container' ? 'container' : 'host') : (k.arch ?? 'x86_64') !== 'x86_64' ? 'qemu' : force ?? (k.runtime === 'virtme' ? 'virtme' : 'qemu'));

export interface RuntimesOptions {
  kernels: readonly KernelSpec[];
  cacheDir: string;
  accel?: Accel;
  runtime?: 'virtme';
  signal?: AbortSignal;
  log: (line: string) => void;
  /** false: QEMU boots every group (`run --no-snapshot`); default: it restores saved guests */
  snapshots?: boolean;
}

export interface MatrixRuntimes {
  accel: { accel: Accel | 'none'; why: string };
  /** QEMU's version line when the run boots VMs */
  emulator?: string;
  /** the runtime that runs group `g` */
  runtimeFor(g: PlannedGroup): Runtime;
  /** what group `g`'s runtime offers a scenario (src/scenario/skip.ts decides the skip) */
  offerFor(g: PlannedGroup, spec: KernelSpec, a: KernelArtifact): Offer;
  /** run `f` holding the host kernel (this run's and the machine's lock) */
  onHostKernel<T>(f: () => Promise<T>): Promise<T>;
  /** stop every prepared runtime (each once, however often this is called) */
  stop(): Promise<void>;
}

/** Makes the runtime of one name for a run (tests give fakes). */
export type RuntimeFactory = (o: RuntimesOptions) => Runtime;

/**
 * The runtime classes by name, and the order they are prepared in (QEMU's
 * KVM probe and base image first, the Docker engine last: the order of the
 * checks a user meets).
 */
export const RUNTIME_FACTORIES: Readonly<Record<RuntimeName, RuntimeFactory>> = {
  qemu: (o) => new QemuRuntime({
    cacheDir: o.cacheDir, log: o.log, signal: o.signal, ...(o.accel ? { accel: o.accel } : {}), snapshots: o.snapshots !== false,
    x86Guests: o.kernels.some((k) => runtimeOf(k, o.runtime) === 'qemu' && k.kind !== 'host' && (k.arch ?? 'x86_64') === 'x86_64'),
  }),
  host: () => new HostRuntime(),
  virtme: () => new VirtmeRuntime(),
  container: (o) => new ContainerRuntime(undefined, undefined, undefined, (m) => o.log(`[container] ${m}`)),
};

/** `f` one at a time in this process and, through HOST_KERNEL_LOCK, on the machine. */
function hostKernelSerializer(log: (line: string) => void): <T>(f: () => Promise<T>) => Promise<T> {
  let busy: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>): Promise<T> => {
    const locked = async (): Promise<T> => {
      const release = await acquireLock(HOST_KERNEL_LOCK, 'the host kernel (its sysctls and per-uid counters)', { log, timeoutMs: 6 * 3600_000 });
      try { return await f(); } finally { await release(); }
    };
    const p = busy.then(locked, locked);
    busy = p.catch(() => {});
    return p;
  };
}

/**
 * Make and prepare the runtimes `o.kernels` use, in RUNTIME_FACTORIES' order;
 * the others are never made. Throws MissingDependencyError / ConfigError
 * (exit 2) before any boot when one cannot run: no busybox or reproducer for
 * x86_64 guests, no vng, no Docker engine; the runtimes prepared before it
 * are stopped first. The caller stops the result (MatrixRuntimes.stop) when
 * the run ends.
 */
export async function prepareRuntimes(o: RuntimesOptions, factories: Readonly<Record<RuntimeName, RuntimeFactory>> = RUNTIME_FACTORIES): Promise<MatrixRuntimes> {
  const used = new Set(o.kernels.map((k) => runtimeOf(k, o.runtime)));
  const made = new Map<RuntimeName, Runtime>();
  const stopAll = onceOnly(() => Promise.all([...made.values()].map((r) => r.stop())).then(() => {}));
  try {
    for (const name of Object.keys(factories) as RuntimeName[]) {
      if (!used.has(name)) continue;
      const rt = factories[name](o);
      made.set(name, rt);
      await rt.prepare();
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  const qemu = made.get('qemu');
  const accel = qemu?.accelChoice ? await qemu.accelChoice() : { accel: 'none' as const, why: qemu ? `the ${qemu.name} runtime picks no accelerator` : 'no VM kernels in this matrix' };
  const emulator = qemu?.emulator;
  const runtimeFor = (g: PlannedGroup): Runtime => made.get(g.runtime)!;
  return {
    accel, ...(emulator ? { emulator } : {}),
    runtimeFor,
    // One skip rule (src/scenario/skip.ts); each runtime only says what it offers.
    offerFor: (g, spec, a) => runtimeFor(g).offer(g, spec, a),
    onHostKernel: hostKernelSerializer(o.log),
    stop: stopAll,
  };
}

/**
 * prepareRuntimes, then `body` with them, then stop every prepared runtime,
 * whether `body` resolves or throws (its result or error passes through).
 */
export async function withRuntimes<T>(o: RuntimesOptions, factories: Readonly<Record<RuntimeName, RuntimeFactory>>, body: (rts: MatrixRuntimes) => Promise<T>): Promise<T> {
  const rts = await prepareRuntimes(o, factories);
  try {
    return await body(rts);
  } finally {
    await rts.stop();
  }
}

/** `f` run at its first call only; later calls get the first call's promise. */
function onceOnly(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
}
