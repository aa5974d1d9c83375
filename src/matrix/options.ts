// What a matrix run is asked to do (runMatrix's options), apart so every
// part of the run (runtimes, kernel pool, groups) can read it.

import type { KernelSpec } from '../kernels/spec.ts';
import type { SplatPolicy } from '../policy/splats.ts';
import type { Accel } from '../runner/qemu.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import type { ShardSpec } from './shard.ts';
import type { MatrixEvent } from './sink.ts';

export interface MatrixOptions {
  kernels: KernelSpec[];
  scenarios: CompiledScenario[];
  outDir: string;
  cacheDir: string;
  /** VM groups (boots) run at once; host and container groups take no boot slot (src/matrix/run.ts) */
  jobs: number;
  accel?: Accel;
  /** per-group timeout override, ms */
  timeoutMs?: number;
  opTimeoutS: number;
  signal?: AbortSignal;
  /** progress and setup lines (every MatrixEvent too, as renderEvent's text, unless onEvent is given) */
  log: (line: string) => void;
  /** the run's typed events (group done, retry, a failed write); default: their text to `log` */
  onEvent?: (e: MatrixEvent) => void;
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
  /** false (`run --no-snapshot`): boot every QEMU group instead of restoring a saved guest (src/runner/vm-snapshot.ts) */
  snapshots?: boolean;
  /** vCPU counts VM groups run `"cpus": "any"` scenarios at (`--cpus`; default [2]); host rows use the host's online count */
  anyCpus?: number[];
}
