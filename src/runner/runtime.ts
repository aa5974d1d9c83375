// One interface for every place the reproducer can run (the host, a QEMU
// VM, a container): given a group of scenarios that share one kernel and one
// CPU count, run them all in one go and hand back the raw outcome. Turning
// outcomes into verdicts is the matrix's job (src/matrix/cells.ts).

import type { Arch } from '../kernels/types.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import type { ConsoleFault, ParsedStream, StreamEvent } from './stream.ts';

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
