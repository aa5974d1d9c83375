// Where a cell's kernel and boot came from, whichever way results.json
// stores it (per cell, as lockstep/results@1 first did, or once per kernel
// in `kernels[]`). Pure.

import type { CellResult, KernelRecord, Results } from '../results/schema.ts';

export interface Provenance {
  kernelVersion: string | null;
  /** "debian:<package>=<version>", a URL, a path, "host: ..." */
  kernelSource: string | null;
  configSha256: string | null;
  /** sha256 of the booted bzImage; null for the host kernel and failed builds */
  artifactSha256: string | null;
  release: string | null;
  qemuVersion: string | null;
  /** the exact emulator command line; null outside QEMU */
  qemuArgv: string[] | null;
  accelWhy: string | null;
  reproducerSha256: string | null;
  expectedLogic: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v ? v : null);

/** The provenance of cell `c` of run `r`: the cell's own fields first, then its kernel's record. */
export function provenance(r: Results, c: CellResult): Provenance {
  const k = (r.kernels.find((x) => x.id === c.kernel) ?? {}) as Partial<KernelRecord> & Record<string, unknown>;
  const cell = c as unknown as Record<string, unknown>;
  const pick = (cellField: string, ...kernelFields: string[]): string | null =>
    str(cell[cellField]) ?? kernelFields.map((f) => str(k[f])).find((v) => v !== null) ?? null;
  const argv = Array.isArray(cell.qemu_argv) ? (cell.qemu_argv as string[]) : Array.isArray(k.qemu_argv) ? (k.qemu_argv as string[]) : null;
  return {
    kernelVersion: pick('kernel_version', 'version'),
    kernelSource: pick('kernel_source', 'source'),
    configSha256: pick('kernel_config_sha256', 'config_sha256', 'kernel_config_sha256'),
    artifactSha256: pick('kernel_artifact_sha256', 'artifact_sha256'),
    release: pick('kernel_release', 'release'),
    qemuVersion: pick('qemu_version', 'qemu_version'),
    qemuArgv: argv,
    accelWhy: pick('accel_why', 'accel_why'),
    reproducerSha256: pick('reproducer_sha256', 'reproducer_sha256'),
    expectedLogic: pick('expected_logic', 'expected_logic'),
  };
}
