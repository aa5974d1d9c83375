// The runtimes one run needs, made once: the accelerator choice, the guest
// base images per arch, QEMU, the host, vng and the Docker engine; which
// runtime a group uses, what it offers a scenario, and the machine-wide lock
// that keeps host-kernel groups one at a time.

import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KernelArtifact } from '../kernels/artifact.ts';
import type { Arch } from '../kernels/arch.ts';
import { nrCpusOf, vmOffer } from '../kernels/obtain/source/toolchain.ts';
import type { KernelSpec } from '../kernels/spec.ts';
import { type BaseImage, ensureBaseImage } from '../image/initramfs.ts';
import { containerOffer } from '../container/settings.ts';
import { containerRuntime, hostPerfSysctls } from '../runner/container.ts';
import { HostRuntime, hostOffer, hostOnlineCpus } from '../runner/host.ts';
import { type Accel, kvmUsable, qemuVersion } from '../runner/qemu.ts';
import type { Runtime } from '../runner/runtime.ts';
import { QemuRuntime } from '../runner/vm.ts';
import { VirtmeRuntime, vngVersion } from '../runner/virtme.ts';
import type { Offer } from '../scenario/skip.ts';
import { acquireLock } from '../util/lock.ts';
import type { PlannedGroup } from './plan.ts';

/** Machine-wide: one lockstep at a time runs scenarios on the host kernel. */
export const HOST_KERNEL_LOCK = join(existsSync('/run/lock') ? '/run/lock' : tmpdir(), 'lockstep-host-kernel.lock');

export type RuntimeName = 'host' | 'qemu' | 'container' | 'virtme';

/** The runtime of a kernel: its spec's, unless `--runtime virtme` forces every x86_64 VM kernel through vng (arm64 guests stay on lockstep's own QEMU). */
export const runtimeOf = (k: KernelSpec, force?: 'virtme'): RuntimeName =>
  (k.kind === 'host' ? (k.runtime === 'container' ? 'container' : 'host') : (k.arch ?? 'x86_64') !== 'x86_64' ? 'qemu' : force ?? (k.runtime === 'virtme' ? 'virtme' : 'qemu'));

/** CONFIG_NR_CPUS a source kernel's fragment sets, or null (unreadable: the build step reports that). */
function nrCpusOfFile(path: string): number | null {
  try {
    return nrCpusOf(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

export interface RuntimesOptions {
  kernels: readonly KernelSpec[];
  cacheDir: string;
  accel?: Accel;
  runtime?: 'virtme';
  signal?: AbortSignal;
  log: (line: string) => void;
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
}

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
 * Make the runtimes `o.kernels` need. Throws MissingDependencyError /
 * ConfigError (exit 2) before any boot when one cannot run: no busybox or
 * reproducer for x86_64 guests, no vng, no Docker engine.
 */
export async function prepareRuntimes(o: RuntimesOptions): Promise<MatrixRuntimes> {
  const uses = (r: RuntimeName): boolean => o.kernels.some((k) => runtimeOf(k, o.runtime) === r);
  const needVm = uses('qemu');
  const accel = needVm
    ? (o.accel ? { accel: o.accel, why: `--accel ${o.accel}` } : await kvmUsable().then((k) => ({ accel: k.ok ? 'kvm' as const : 'tcg' as const, why: k.why })))
    : { accel: 'none' as const, why: 'no VM kernels in this matrix' };
  const emulator = needVm ? await qemuVersion() : undefined;
  // The base initramfs per guest arch, built (arm64: busybox fetched) at its first boot.
  const bases = new Map<Arch, Promise<BaseImage>>();
  const baseOf = (arch: Arch): Promise<BaseImage> => {
    if (!bases.has(arch)) bases.set(arch, ensureBaseImage(o.cacheDir, { arch, log: (m) => o.log(`[guest ${arch}] ${m}`), signal: o.signal }));
    return bases.get(arch)!;
  };
  // x86_64's is checked before any boot: a missing busybox or reproducer stops the run here (exit 2)
  if (o.kernels.some((k) => runtimeOf(k, o.runtime) === 'qemu' && k.kind !== 'host' && (k.arch ?? 'x86_64') === 'x86_64')) await baseOf('x86_64');
  const qemu = needVm && accel.accel !== 'none' ? new QemuRuntime(baseOf, accel, Boolean(o.accel)) : undefined;
  const host = new HostRuntime();
  // vng missing: the run stops here (exit 2) with the command that installs it
  const virtme = uses('virtme') ? new VirtmeRuntime(`${await vngVersion()} (${await qemuVersion()})`) : undefined;
  // The Docker engine and the image, once per run; a missing engine stops the run here (exit 2, with how to start it).
  const container = uses('container') ? await containerRuntime((m) => o.log(`[container] ${m}`)) : undefined;
  // Read before any host group runs: a host scenario changes them for its duration.
  const hostSysctls = container ? hostPerfSysctls() : undefined;
  return {
    accel, ...(emulator ? { emulator } : {}),
    runtimeFor: (g) => (g.runtime === 'host' ? host : g.runtime === 'container' ? container! : g.runtime === 'virtme' ? virtme! : qemu!),
    // One skip rule (src/scenario/skip.ts); each runtime only says what it offers.
    offerFor: (g, spec, a) => (g.runtime === 'host' ? hostOffer()
      : g.runtime === 'container' ? containerOffer({ onlineCpus: hostOnlineCpus(), ...hostSysctls! })
      : vmOffer(Array.isArray(a.meta.absent_options) ? (a.meta.absent_options as string[]) : [], spec.kind === 'source' ? nrCpusOfFile(spec.config) : null)),
    onHostKernel: hostKernelSerializer(o.log),
  };
}
