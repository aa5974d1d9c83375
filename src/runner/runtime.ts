// One interface for every place the reproducer can run (the host, a QEMU
// VM, a container): given a group of scenarios that share one kernel and one
// CPU count, run them all in one go and hand back the raw outcome. Turning
// outcomes into verdicts is the matrix's job (src/matrix/cells.ts).

import type { Arch } from '../kernels/types.ts';
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
}

export interface Runtime {
  readonly name: 'host' | 'qemu' | 'container' | 'virtme';
  run(req: GroupRequest): Promise<GroupOutcome>;
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
