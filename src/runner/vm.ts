// The QEMU runtime: one boot runs every scenario of a group. KVM when it
// really works here, TCG otherwise; a KVM boot that shows no sign of life
// falls back to TCG once, and the result says which accelerator ran it.

import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir as tmpDir } from 'tmp-promise';
import { toScript } from '../scenario/ops.ts';
import type { Offer } from '../scenario/skip.ts';
import { type BaseImage, ensureBaseImage, writeBootInitrd } from '../image/initramfs.ts';
import type { KernelArtifact } from '../kernels/artifact.ts';
import { nrCpusOf, vmOffer } from '../kernels/obtain/source/toolchain.ts';
import type { KernelSpec } from '../kernels/spec.ts';
import type { Arch } from '../kernels/types.ts';
import { type Accel, boot, type BootRequest, extraCmdlineFromEnv, kvmUsable, qemuVersion } from './qemu.ts';
import { snapshotBudget, SnapshotStore } from './snapshot.ts';
import { bootViaSnapshot } from './vm-snapshot.ts';
import { type GroupOutcome, type GroupRequest, groupStatus, type Runtime, StopSwitch } from './runtime.ts';
import { machineKey, recordKvmBroken } from './kvm-verdict.ts';
import { consoleFaults, StreamParser, tail } from './stream.ts';

/**
 * How long a KVM guest may take to start the reproducer before KVM counts as
 * broken here (ms). A working KVM guest gets there in 1-3 s even at 36 vCPUs.
 */
const KVM_FIRST_RESULT_MS = 30_000;

/** Guest memory: the incident's ballast pins 128 MiB of ring buffers. */
export const GUEST_MEM_MB = 1024;

/** Why an arm64 guest runs under TCG: KVM runs only guests of the host's own arch. */
const crossArchWhy = (arch: Arch): string => `${arch} guest on an ${process.arch === 'x64' ? 'x86_64' : process.arch} host: TCG`;

/** CONFIG_NR_CPUS a source kernel's fragment sets, or null (unreadable: the build step reports that). */
function nrCpusOfFile(path: string): number | null {
  try {
    return nrCpusOf(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * What a VM booting kernel `spec` offers a scenario (QEMU and virtme alike):
 * the options its config lacks (artifact meta absent_options) and, for a
 * source kernel, the CONFIG_NR_CPUS of its fragment (src/kernels/obtain/source/toolchain.ts vmOffer).
 */
export function vmKernelOffer(spec: KernelSpec, a: KernelArtifact): Offer {
  return vmOffer(Array.isArray(a.meta.absent_options) ? (a.meta.absent_options as string[]) : [], spec.kind === 'source' ? nrCpusOfFile(spec.config) : null);
}

/** What the QEMU runtime is set up with: the run's cache, the user's --accel, whether x86_64 guests boot. */
export interface QemuSetup {
  cacheDir: string;
  /** --accel: the accelerator the user chose (a failing KVM boot is then not retried on TCG); absent: probe KVM */
  accel?: Accel;
  /** some kernel of the run is an x86_64 guest: its base image is built (checked) in prepare(), before any boot */
  x86Guests: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
  /** false (`run --no-snapshot`): boot every group; default: restore saved guests (src/runner/vm-snapshot.ts) */
  snapshots?: boolean;
}

/**
 * lockstep's own QEMU boot. prepare(): the accelerator (--accel, or the KVM
 * probe), QEMU's version line, the x86_64 base initramfs (a missing busybox
 * or reproducer stops the run: exit 2) and $LOCKSTEP_EXTRA_CMDLINE; other
 * arches' base images are made at their first boot. stop() ends any boot
 * still going.
 */
export class QemuRuntime implements Runtime {
  readonly name = 'qemu' as const;
  private accel?: Promise<{ accel: Accel; why: string }>;
  private readonly versions = new Map<Arch, Promise<string>>();
  /** the base initramfs per guest arch, made at its first use */
  private readonly bases = new Map<Arch, Promise<BaseImage>>();
  /** the first KVM boot of this runtime: later boots wait for its verdict before trying KVM themselves */
  private kvmTrial?: Promise<void>;
  /** $LOCKSTEP_EXTRA_CMDLINE, checked once in prepare() so a bad value stops the run before any boot */
  private extraCmdline?: string;
  private prepared?: Promise<void>;
  private readonly halt = new StopSwitch();
  private readonly forced: boolean;
  /** QEMU's version line (x86_64's emulator), after prepare() */
  emulator?: string;
  /** the saved guests after prepare(), or null with --no-snapshot */
  private store: SnapshotStore | null = null;

  constructor(private readonly setup: QemuSetup) {
    this.forced = setup.accel !== undefined;
  }

  /** The accelerator and why, after prepare() (a KVM boot that showed no life changes it to TCG). */
  accelChoice(): Promise<{ accel: Accel; why: string }> {
    return this.chooseAccel();
  }

  prepare(): Promise<void> {
    this.prepared ??= (async () => {
      const a = this.setup.accel;
      if (a && !this.accel) this.accel = Promise.resolve({ accel: a, why: `--accel ${a}` });
      await this.chooseAccel();
      this.emulator = await qemuVersion();
      // x86_64's is checked before any boot: a missing busybox or reproducer stops the run here (exit 2)
      if (this.setup.x86Guests) await this.baseOf('x86_64');
      this.extraCmdline = extraCmdlineFromEnv();
      // $LOCKSTEP_SNAPSHOT_GB is checked here too: a bad value stops the run before any boot
      if (this.setup.snapshots !== false) this.store = new SnapshotStore(this.setup.cacheDir, snapshotBudget());
    })();
    return this.prepared;
  }

  offer(_group: unknown, spec: KernelSpec, a: KernelArtifact): Offer {
    return vmKernelOffer(spec, a);
  }

  async stop(): Promise<void> {
    this.halt.stop();
  }

  private baseOf(arch: Arch): Promise<BaseImage> {
    const { cacheDir, log, signal } = this.setup;
    if (!this.bases.has(arch)) this.bases.set(arch, ensureBaseImage(cacheDir, { arch, log: (m) => log(`[guest ${arch}] ${m}`), signal }));
    return this.bases.get(arch)!;
  }

  private chooseAccel(): Promise<{ accel: Accel; why: string }> {
    this.accel ??= kvmUsable().then((k) => (k.ok ? { accel: 'kvm' as const, why: k.why } : { accel: 'tcg' as const, why: k.why }));
    return this.accel;
  }

  async run(request: GroupRequest): Promise<GroupOutcome> {
    await this.prepare();
    const req = this.halt.watch(request);
    if (!req.vmlinuz) throw new Error(`qemu runtime needs a kernel image for ${req.kernel}`);
    const arch = req.arch ?? 'x86_64';
    if (!this.versions.has(arch)) this.versions.set(arch, qemuVersion(arch));
    const emulator = await this.versions.get(arch)!;
    const base = await this.baseOf(arch);
    const script = req.scenarios.map((s, k) => toScript(s, req.uids[k])).join('');
    await writeFile(join(req.logDir, 'script.ops'), script);
    // One private temp dir per VM, removed even when the boot fails.
    const tmp = await tmpDir({ unsafeCleanup: true, prefix: 'lockstep-vm-' });
    // Until one KVM boot has shown life, boots wait for the first one: when
    // KVM hangs here only that one pays the first-result deadline.
    let endTrial: (() => void) | undefined;
    const native = arch === 'x86_64';
    if (native && (await this.chooseAccel()).accel === 'kvm' && !this.forced) {
      if (this.kvmTrial) await this.kvmTrial;
      else this.kvmTrial = new Promise<void>((res) => { endTrial = res; });
    }
    let { accel, why } = native ? await this.chooseAccel() : { accel: 'tcg' as Accel, why: crossArchWhy(arch) };
    try {
      const initrd = join(tmp.path, 'initrd');
      const snapshots = this.store !== null;
      // with snapshots the initramfs carries no script: the guest waits for it (harness/PROTOCOL.md)
      // (and its op timeout, so runs with another --op-timeout restore the same guest)
      await writeBootInitrd(base, snapshots ? '' : script, snapshots ? ['--allow-uid-0', '--script-from-out'] : ['--op-timeout', String(req.opTimeoutS), '--allow-uid-0'], initrd, req.initrdExtra);
      const attempt = async (a: Accel) => {
        const parser = new StreamParser();
        const b: BootRequest = {
          arch, vmlinuz: req.vmlinuz!, initrd, cpus: req.cpus, memMb: GUEST_MEM_MB, accel: a,
          timeoutMs: req.timeoutMs, workDir: tmp.path, signal: req.signal, extraCmdline: this.extraCmdline,
          // a KVM guest that cannot even start the reproducer by then is broken here
          firstResultDeadlineMs: a === 'kvm' && !this.forced ? KVM_FIRST_RESULT_MS : undefined,
          onResultLine: (l) => { for (const ev of parser.push(l + '\n')) req.onEvent?.(ev); },
        };
        const via = this.store
          ? await bootViaSnapshot(this.store, { ...b, scriptOpTimeoutS: req.opTimeoutS }, script, emulator, (m) => this.setup.log(`[${req.kernel}] ${m}`))
          : await boot(b).then((r) => ({ r, console: r.console, snapshot: null }));
        const { r } = via;
        // a line cut by the guest's death has no newline: hand it over so it counts as garbage
        const rest = r.results.slice(r.results.lastIndexOf('\n') + 1);
        if (rest) parser.push(rest);
        return { r, stream: parser.end(), console: via.console, snapshot: via.snapshot };
      };
      let first: Awaited<ReturnType<typeof attempt>>;
      try { first = await attempt(accel); } finally { endTrial?.(); }
      let { r, stream, console, snapshot } = first;
      if (accel === 'kvm' && (r.status === 'no-first-result' || (r.status === 'exited' && r.firstResultMs === null && !stream.hello))) {
        why = `kvm boot gave no result (${r.status}${r.stderr ? `: ${tail(r.stderr, 1)}` : ''}); fell back to tcg`;
        accel = 'tcg';
        this.accel = Promise.resolve({ accel, why });
        recordKvmBroken(machineKey(emulator), why);
        ({ r, stream, console, snapshot } = await attempt('tcg'));
      }
      const consoleLog = join(req.logDir, 'console.log');
      const resultsLog = join(req.logDir, 'results.jsonl');
      await writeFile(consoleLog, console);
      await writeFile(resultsLog, r.results);
      const faults = consoleFaults(console);
      const { status, detail } = groupStatus({ why: r.status === 'no-first-result' ? 'other' : r.status, who: 'QEMU', exitCode: r.exitCode, exitSignal: r.exitSignal, stderr: r.stderr, timeoutMs: req.timeoutMs }, stream, req.signal?.aborted === true);
      return {
        status, detail, stream, faults, consoleTail: tail(console, 40), consoleLog, resultsLog,
        accel, accelWhy: why, bootMs: r.firstResultMs, wallMs: r.wallMs, argv: r.argv, emulator, snapshot,
      };
    } finally {
      endTrial?.();
      await tmp.cleanup();
    }
  }
}
