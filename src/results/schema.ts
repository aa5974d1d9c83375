// results.json: the source of truth of a run. Versioned; readers refuse
// versions they do not know.

import type { MeasuredOp, Divergence } from '../diff/index.ts';
import type { ExpectedOp } from '../model/index.ts';
import { ConfigError } from '../util/errors.ts';

export const RESULTS_SCHEMA = 'lockstep/results@1';

export type CellVerdict =
  | 'MATCH' | 'MISMATCH' | 'SKIP' | 'ERROR' | 'TIMEOUT' | 'PANIC' | 'BOOT_FAIL' | 'BUILD_FAIL'
  /** measured, but the kernel spec declares no expected logic (expect: unknown): classified only */
  | 'UNCHECKED';

export interface CellResult {
  kernel: string;
  scenario: string;
  verdict: CellVerdict;
  /** why, for every verdict but MATCH */
  reason?: string;
  /** logic label the kernel is expected to implement ("V3/perf"), null for expect: unknown */
  expected_logic: string | null;
  cpus: number;
  uid?: number;
  runtime: 'host' | 'qemu' | 'container';
  accel: 'kvm' | 'tcg' | 'none';
  kernel_release?: string;
  /** 1-based call number among map ops of the first EPERM, null = none */
  first_eperm_measured: number | null;
  first_eperm_expected: number | null;
  divergence?: Divergence;
  /** model inputs that were measured rather than known (e.g. io_uring's own pages) */
  calibrated?: Record<string, number>;
  /** worker pinned pages after each map op */
  pinned_measured: number[];
  pinned_expected: number[];
  measured: MeasuredOp[];
  expected: ExpectedOp[];
  /** console text around a panic/oops, or the console tail on TIMEOUT/BOOT_FAIL */
  console_excerpt?: string;
  console_log?: string | null;
  results_log?: string | null;
  boot_ms?: number | null;
  group_wall_ms?: number;
  started_at: string;
  scenario_hash: string;
  /** re-runs just this cell */
  rerun: string;
}

export interface KernelRecord {
  id: string;
  kind: string;
  version: string;
  release?: string;
  expected_logic: string | null;
  expect_reason: string;
  artifact_sha256: string | null;
  source?: string;
}

export interface Results {
  schema: typeof RESULTS_SCHEMA;
  lockstep_version: string;
  started_at: string;
  finished_at?: string;
  /** false while the run is in progress or was interrupted */
  complete: boolean;
  host: { release: string; cpus: number; accel: string; accel_why: string; emulator?: string };
  kernels: KernelRecord[];
  scenarios: { id: string; hash: string; cpus: number }[];
  cells: CellResult[];
}

export function checkResults(obj: unknown, file: string): Results {
  if (typeof obj !== 'object' || obj === null) throw new ConfigError(file, '', 'not a JSON object', 'point at a results.json written by `lockstep run`');
  const schema = (obj as { schema?: unknown }).schema;
  if (schema !== RESULTS_SCHEMA) {
    throw new ConfigError(file, 'schema', `unknown results schema ${JSON.stringify(schema)} (this lockstep reads ${RESULTS_SCHEMA})`,
      'regenerate it with this version of lockstep, or use the lockstep version that wrote it');
  }
  const cells = (obj as { cells?: unknown }).cells;
  if (!Array.isArray(cells)) throw new ConfigError(file, 'cells', 'missing or not an array', 'the file is damaged; re-run');
  return obj as Results;
}
