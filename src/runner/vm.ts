// The QEMU runtime: one boot runs every scenario of a group. KVM when it
// really works here, TCG otherwise; a KVM boot that shows no sign of life
// falls back to TCG once, and the result says which accelerator ran it.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir as tmpDir } from 'tmp-promise';
import { toScript } from '../scenario/ops.ts';
import { type BaseImage, writeBootInitrd } from '../image/initramfs.ts';
import type { Arch } from '../kernels/types.ts';
import { type Accel, boot, extraCmdlineFromEnv, kvmUsable, qemuVersion } from './qemu.ts';
import { type GroupOutcome, type GroupRequest, groupStatus, type Runtime } from './runtime.ts';
import { machineKey, recordKvmBroken } from './kvm-verdict.ts';
import { consoleFaults, StreamParser, tail } from './stream.ts';

/**
 * How long a KVM guest may take to start the reproducer before KVM counts as
 * broken here (ms). A working KVM guest gets there in 1-3 s even at 36 vCPUs.
 */
const KVM_FIRST_RESULT_MS = 30_000;

/** Guest memory: the incident's ballast pins 128 MiB of ring buffers. */
export const GUEST_MEM_MB = 1024;

/** Where the runtime gets the base initramfs of an arch (ensureBaseImage, cached per arch by the caller). */
export type BaseImages = (arch: Arch) => Promise<BaseImage>;

/** Why an arm64 guest runs under TCG: KVM runs only guests of the host's own arch. */
const crossArchWhy = (arch: Arch): string => `${arch} guest on an ${process.arch === 'x64' ? 'x86_64' : process.arch} host: TCG`;

export class QemuRuntime implements Runtime {
  readonly name = 'qemu' as const;
  private accel?: Promise<{ accel: Accel; why: string }>;
  private readonly versions = new Map<Arch, Promise<string>>();
  private readonly bases: BaseImages;
  /** the first KVM boot of this runtime: later boots wait for its verdict before trying KVM themselves */
  private kvmTrial?: Promise<void>;
  /** $LOCKSTEP_EXTRA_CMDLINE, checked once here so a bad value stops the run before any boot */
  private readonly extraCmdline = extraCmdlineFromEnv();

  /**
   * `decided`: the accelerator already chosen (by --accel, or by the run's
   * KVM probe) and why; without it the runtime probes KVM itself.
   * `forced`: the user asked for it, so a failing KVM boot is not retried on TCG.
   */
  constructor(base: BaseImage | BaseImages, decided?: { accel: Accel; why: string }, private readonly forced = false) {
    this.bases = typeof base === 'function' ? base : async () => base;
    if (decided) this.accel = Promise.resolve(decided);
  }

  private chooseAccel(): Promise<{ accel: Accel; why: string }> {
    this.accel ??= kvmUsable().then((k) => (k.ok ? { accel: 'kvm' as const, why: k.why } : { accel: 'tcg' as const, why: k.why }));
    return this.accel;
  }

  async run(req: GroupRequest): Promise<GroupOutcome> {
    if (!req.vmlinuz) throw new Error(`qemu runtime needs a kernel image for ${req.kernel}`);
    const arch = req.arch ?? 'x86_64';
    if (!this.versions.has(arch)) this.versions.set(arch, qemuVersion(arch));
    const emulator = await this.versions.get(arch)!;
    const base = await this.bases(arch);
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
      await writeBootInitrd(base, script, ['--op-timeout', String(req.opTimeoutS), '--allow-uid-0'], initrd, req.initrdExtra);
      const attempt = async (a: Accel) => {
        const parser = new StreamParser();
        const r = await boot({
          arch, vmlinuz: req.vmlinuz!, initrd, cpus: req.cpus, memMb: GUEST_MEM_MB, accel: a,
          timeoutMs: req.timeoutMs, workDir: tmp.path, signal: req.signal, extraCmdline: this.extraCmdline,
          // a KVM guest that cannot even start the reproducer by then is broken here
          firstResultDeadlineMs: a === 'kvm' && !this.forced ? KVM_FIRST_RESULT_MS : undefined,
          onResultLine: (l) => { for (const ev of parser.push(l + '\n')) req.onEvent?.(ev); },
        });
        // a line cut by the guest's death has no newline: hand it over so it counts as garbage
        const rest = r.results.slice(r.results.lastIndexOf('\n') + 1);
        if (rest) parser.push(rest);
        return { r, stream: parser.end() };
      };
      let first: Awaited<ReturnType<typeof attempt>>;
      try { first = await attempt(accel); } finally { endTrial?.(); }
      let { r, stream } = first;
      if (accel === 'kvm' && (r.status === 'no-first-result' || (r.status === 'exited' && r.firstResultMs === null && !stream.hello))) {
        why = `kvm boot gave no result (${r.status}${r.stderr ? `: ${tail(r.stderr, 1)}` : ''}); fell back to tcg`;
        accel = 'tcg';
        this.accel = Promise.resolve({ accel, why });
        recordKvmBroken(machineKey(emulator), why);
        ({ r, stream } = await attempt('tcg'));
      }
      const consoleLog = join(req.logDir, 'console.log');
      const resultsLog = join(req.logDir, 'results.jsonl');
      await writeFile(consoleLog, r.console);
      await writeFile(resultsLog, r.results);
      const faults = consoleFaults(r.console);
      const { status, detail } = groupStatus({ why: r.status === 'no-first-result' ? 'other' : r.status, who: 'QEMU', exitCode: r.exitCode, exitSignal: r.exitSignal, stderr: r.stderr, timeoutMs: req.timeoutMs }, stream, req.signal?.aborted === true);
      return {
        status, detail, stream, faults, consoleTail: tail(r.console, 40), consoleLog, resultsLog,
        accel, accelWhy: why, bootMs: r.firstResultMs, wallMs: r.wallMs, argv: r.argv, emulator,
      };
    } finally {
      endTrial?.();
      await tmp.cleanup();
    }
  }
}
