// One interface for every place the reproducer can run (the host, a QEMU
// VM, virtme-ng, a container), one class each: prepare() acquires what its
// runs need (before any boot, so a missing tool stops the run at once),
// offer() says what it offers a scenario (src/scenario/skip.ts decides the
// skip), run() runs a group of scenarios that share one kernel and one CPU
// count in one go and hands back the raw outcome, stop() releases what
// prepare() acquired and ends any run still going. Turning outcomes into
// verdicts is the matrix's job (src/matrix/cells.ts).

import type { KernelArtifact } from '../kernels/artifact.ts';
import type { KernelSpec } from '../kernels/spec.ts';
import type { Arch } from '../kernels/types.ts';
import type { VmSnapshotUse } from '../results/schema.ts';
import type { Offer } from '../scenario/skip.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { type ConsoleFault, describeCut, type ParsedStream, type StreamEvent, tail } from './stream.ts';

export interface GroupRequest {
  /** kernel id, for messages */
  kernel: string;
  /** the booted image; null for the host runtime */
  vmlinuz: string | null;
  /** VM runtimes: the guest's architecture (default x86_64) */
  arch?: Arch;
  /** qemu runtime: a cpio appended to the initramfs (the kernel's modules the guest loads first: KernelArtifact.initrdExtra) */
  initrdExtra?: string;
  cpus: number;
  scenarios: CompiledScenario[];
  /** uid per scenario, same order; fresh for every scenario */
  uids: number[];
  timeoutMs: number;
  /** per-op timeout inside the reproducer, seconds */
  opTimeoutS: number;
  /** where logs for this group go (console.log, results.jsonl) */
  logDir: string;
  signal?: AbortSignal;
  /** each result-stream event as it arrives (progress, per-scenario timing) */
  onEvent?: (ev: StreamEvent) => void;
}

export type GroupStatus = 'ok' | 'timeout' | 'boot_fail' | 'aborted' | 'error';

export interface GroupOutcome {
  status: GroupStatus;
  /** human-readable reason when status != ok */
  detail: string;
  stream: ParsedStream;
  faults: ConsoleFault[];
  consoleTail: string;
  consoleLog: string | null;
  resultsLog: string | null;
  accel: 'kvm' | 'tcg' | 'none';
  /** why this accelerator (e.g. "kvm probe failed: ...") */
  accelWhy: string;
  /** spawn to the reproducer's first line, ms */
  bootMs: number | null;
  wallMs: number;
  argv: string[];
  emulator?: string;
  /** QEMU runtime: the saved guest the group restored or saved (CellResult.vm_snapshot) */
  snapshot?: VmSnapshotUse | null;
}

export type RuntimeName = 'host' | 'qemu' | 'container' | 'virtme';

/** What offer() may read of a group (src/matrix/plan.ts PlannedGroup has these and more). */
export interface OfferGroup {
  kernel: string;
  cpus: number;
}

export interface Runtime {
  readonly name: RuntimeName;
  /**
   * Acquire what this runtime's runs need, once (later calls return the same
   * promise): QEMU its accelerator, version and the x86_64 base image, virtme
   * vng's version, the container the Docker engine and image. Throws
   * MissingDependencyError / ConfigError (exit 2) when it cannot run here.
   */
  prepare(): Promise<void>;
  /** What a group on kernel `spec` (its artifact `artifact`) offers a scenario; after prepare(). */
  offer(group: OfferGroup, spec: KernelSpec, artifact: KernelArtifact): Offer;
  run(req: GroupRequest): Promise<GroupOutcome>;
  /** Release what prepare() acquired and end any run still going (as on an abort); idempotent. */
  stop(): Promise<void>;
  /** A runtime that picks an accelerator (QEMU): its choice and why, after prepare(). */
  accelChoice?(): Promise<{ accel: 'kvm' | 'tcg'; why: string }>;
  /** The emulator's version line the results record for the run (QEMU), after prepare(). */
  readonly emulator?: string;
}

/**
 * A runtime's own stop switch: stop() aborts it, and every run watches it
 * besides the request's signal, so a run still going when its runtime stops
 * ends as an interrupted one (its child killed the way an abort kills it).
 */
export class StopSwitch {
  private readonly ctl = new AbortController();

  get stopped(): boolean {
    return this.ctl.signal.aborted;
  }

  /** `req` with a signal that fires on the request's abort or on stop(). */
  watch(req: GroupRequest): GroupRequest {
    return { ...req, signal: req.signal ? AbortSignal.any([req.signal, this.ctl.signal]) : this.ctl.signal };
  }

  stop(): void {
    if (!this.ctl.signal.aborted) this.ctl.abort();
  }
}

/** How a VM boot ended, as each VM runtime (QEMU, vng) sees it. */
export interface VmEnd {
  /** what killed it, or 'exited' when it ended by itself */
  why: 'exited' | 'timeout' | 'aborted' | 'spawn-failed' | 'other';
  /** "QEMU", "vng": names it in the detail */
  who: string;
  exitCode: number | null;
  exitSignal: string | null;
  /** stderr (or, without any, the console) tail to quote */
  stderr: string;
  timeoutMs: number;
}

/**
 * A VM group's status and its one-line reason from how the boot ended and
 * what the result stream holds: timeout, interrupted, the emulator failing to
 * start, no hello (boot_fail), no done (error, with where the stream was cut),
 * else ok. Pure; the one ladder of src/runner/vm.ts and src/runner/virtme.ts.
 */
export function groupStatus(end: VmEnd, stream: ParsedStream, aborted: boolean): { status: GroupStatus; detail: string } {
  if (end.why === 'timeout') return { status: 'timeout', detail: `${end.who === 'QEMU' ? 'VM' : end.who} killed at its ${end.timeoutMs / 1000}s timeout` };
  // on Ctrl-C the emulator gets the SIGINT too and may exit before we kill it
  if (end.why === 'aborted' || aborted) return { status: 'aborted', detail: 'interrupted' };
  if (end.why === 'spawn-failed') return { status: 'error', detail: tail(end.stderr, 3) };
  if (!stream.hello) return { status: 'boot_fail', detail: `${end.who} exited (code ${end.exitCode}) before the reproducer started${end.stderr.trim() ? `: ${tail(end.stderr.trim(), 2)}` : ''}` };
  if (!stream.done) return { status: 'error', detail: `${end.who} exited (code ${end.exitCode}${end.exitSignal ? `, ${end.exitSignal}` : ''}) and ${describeCut(stream)}` };
  return { status: 'ok', detail: '' };
}
