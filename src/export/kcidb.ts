// A KCIDB submission (kcidb I/O schema v5.3, kernelci/kcidb-io) from a run:
// one checkout per kernel source, one build per kernel, one `lockstep.boot` test per QEMU
// boot (kernel x CPU count) and one `lockstep.<scenario>` test per cell.
// Ids are "lockstep:" + hashes lockstep records (bzImage sha256, scenario
// hash) or sha256s over them; no property is ever null. Pure.

import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { CellResult, CellVerdict, Results } from '../results/schema.ts';
import { kernelIds } from '../report/analysis.ts';
import { provenance } from './provenance.ts';

export const KCIDB_VERSION = { major: 5, minor: 3 } as const;
export const KCIDB_ORIGIN = 'lockstep';

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

/**
 * A cell's verdict as a KCIDB test status: MATCH -> PASS, MISMATCH/PANIC ->
 * FAIL, TIMEOUT/ERROR -> ERROR, BOOT_FAIL/BUILD_FAIL -> MISS (the boot test
 * or the build carries the FAIL), SKIP -> SKIP, UNCHECKED -> DONE.
 */
export const KCIDB_STATUS: Readonly<Record<CellVerdict, KcidbStatus>> = {
  MATCH: 'PASS', MISMATCH: 'FAIL', PANIC: 'FAIL', TIMEOUT: 'ERROR', ERROR: 'ERROR',
  BOOT_FAIL: 'MISS', BUILD_FAIL: 'MISS', SKIP: 'SKIP', UNCHECKED: 'DONE',
};

type Json = string | number | boolean | Json[] | { [k: string]: Json };
export interface KcidbSubmission {
  version: { major: number; minor: number };
  checkouts: Record<string, Json>[];
  builds: Record<string, Json>[];
  tests: Record<string, Json>[];
}

const sha = (...parts: string[]): string => createHash('sha256').update(parts.join('\0')).digest('hex');
const id = (rest: string): string => `${KCIDB_ORIGIN}:${rest}`;
/** A path component: no dots (KCIDB paths are dot-separated), no NUL. */
const component = (s: string): string => s.replace(/[.\0]/g, '_');
const LOG_MAX = 16384;
const excerpt = (s: string): string => (s.length > LOG_MAX ? s.slice(s.length - LOG_MAX) : s).replace(/\0/g, '');

/** `v` without null/undefined members, recursively (KCIDB allows no nulls). */
export function dropNulls(v: unknown): Json | undefined {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) return v.map(dropNulls).filter((x): x is Json => x !== undefined);
  if (typeof v === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, x] of Object.entries(v)) { const y = dropNulls(x); if (y !== undefined) out[k] = y; }
    return out;
  }
  return v as Json;
}

const fileUrl = (p: string | null | undefined): string | undefined => (p ? pathToFileURL(p).href : undefined);

/** The run as one KCIDB submission. */
export function toKcidb(r: Results): KcidbSubmission {
  const runKey = r.matrix?.hash ?? sha(r.started_at, ...r.cells.map((c) => c.scenario_hash));
  const checkouts: Record<string, Json>[] = [];
  const builds: Record<string, Json>[] = [];
  const tests: Record<string, Json>[] = [];
  for (const kid of kernelIds(r)) {
    const cells = r.cells.filter((c) => c.kernel === kid);
    const rec = r.kernels.find((k) => k.id === kid);
    const p = cells.length ? provenance(r, cells[0]!) : null;
    const source = p?.kernelSource ?? rec?.source ?? `kernel ${kid}`;
    const checkoutId = id(`checkout-${sha(source)}`);
    // The build is the bzImage that booted: its sha256. Without one (host kernel, failed build): the source and the run.
    const artifact = p?.artifactSha256 ?? rec?.artifact_sha256 ?? null;
    const buildId = id(artifact ? `build-${artifact}` : `build-${sha(source, kid, runKey)}`);
    // Kernels of one source (the host kernel natively and in a container) share its checkout.
    if (!checkouts.some((c) => c.id === checkoutId)) checkouts.push(dropNulls({
      id: checkoutId, origin: KCIDB_ORIGIN, comment: source, start_time: r.started_at, valid: true,
      tree_name: rec?.kind === 'host' ? 'host' : source.startsWith('debian:') ? 'debian' : undefined,
      misc: { kernel_id: kid, kernel_version: p?.kernelVersion ?? rec?.version },
    }) as Record<string, Json>);
    const buildFail = cells.find((c) => c.verdict === 'BUILD_FAIL');
    builds.push(dropNulls({
      id: buildId, checkout_id: checkoutId, origin: KCIDB_ORIGIN, architecture: 'x86_64', start_time: r.started_at,
      comment: `${kid}: ${p?.release ?? rec?.release ?? rec?.version ?? ''}`.trim(),
      status: buildFail ? 'FAIL' : 'PASS',
      log_excerpt: buildFail?.reason ? excerpt(buildFail.reason) : undefined,
      misc: { kernel_id: kid, kind: rec?.kind, release: p?.release ?? rec?.release, config_sha256: p?.configSha256, artifact_sha256: artifact, expected_logic: rec?.expected_logic, expect_reason: rec?.expect_reason },
    }) as Record<string, Json>);
    // One boot per kernel x CPU count in QEMU.
    for (const cpus of [...new Set(cells.filter((c) => c.runtime === 'qemu').map((c) => c.cpus))]) {
      const group = cells.filter((c) => c.runtime === 'qemu' && c.cpus === cpus);
      const started = group.map((c) => c.started_at).sort()[0]!;
      const bootFail = group.find((c) => c.verdict === 'BOOT_FAIL');
      const built = group.some((c) => c.verdict !== 'BUILD_FAIL');
      const gp = provenance(r, group[0]!);
      tests.push(dropNulls({
        id: id(`boot-${sha(buildId, String(cpus), started)}`), build_id: buildId, origin: KCIDB_ORIGIN,
        path: `${KCIDB_ORIGIN}.boot`, comment: `${kid} booted with ${cpus} CPUs`,
        status: !built ? 'MISS' : bootFail ? 'FAIL' : 'PASS', start_time: started,
        duration: group[0]!.boot_ms != null ? group[0]!.boot_ms / 1000 : undefined,
        log_url: fileUrl(group[0]!.console_log), log_excerpt: bootFail ? excerpt(`${bootFail.reason ?? ''}\n${bootFail.console_excerpt ?? ''}`.trim()) : undefined,
        environment: environment(group[0]!, gp.qemuArgv, gp.qemuVersion, gp.accelWhy),
      }) as Record<string, Json>);
    }
    for (const c of cells) tests.push(cellTest(r, c, buildId));
  }
  return { version: { ...KCIDB_VERSION }, checkouts, builds, tests };
}

function environment(c: CellResult, argv: string[] | null, qemuVersion: string | null, accelWhy: string | null): Json {
  const where = c.runtime === 'qemu' ? `QEMU (${c.accel.toUpperCase()}), ${c.cpus} CPUs` : c.runtime === 'container' ? `host kernel, in a Docker container, ${c.cpus} CPUs` : `host kernel, natively, ${c.cpus} CPUs`;
  return dropNulls({ comment: where, misc: { cpus: c.cpus, runtime: c.runtime, accelerator: c.accel, accelerator_why: accelWhy, qemu_version: qemuVersion, qemu_command_line: argv ? argv.join(' ') : undefined } })!;
}

function cellTest(r: Results, c: CellResult, buildId: string): Record<string, Json> {
  const p = provenance(r, c);
  const log = [c.reason, c.divergence ? `divergence: ${JSON.stringify(c.divergence)}` : undefined, c.console_excerpt].filter(Boolean).join('\n');
  return dropNulls({
    id: id(`cell-${sha(buildId, c.scenario_hash, c.started_at)}`), build_id: buildId, origin: KCIDB_ORIGIN,
    path: `${KCIDB_ORIGIN}.${component(c.scenario)}`, comment: `${c.kernel} x ${c.scenario}: ${c.verdict}`,
    status: KCIDB_STATUS[c.verdict], start_time: c.started_at,
    duration: typeof c.duration_ms === 'number' ? c.duration_ms / 1000 : undefined,
    log_url: fileUrl(c.results_log), log_excerpt: log ? excerpt(log) : undefined,
    environment: environment(c, p.qemuArgv, p.qemuVersion, p.accelWhy),
    misc: {
      verdict: c.verdict, reason: c.reason, expected_logic: p.expectedLogic, scenario_hash: c.scenario_hash,
      first_eperm_measured: c.first_eperm_measured, first_eperm_expected: c.first_eperm_expected,
      uid: c.uid, reproducer_sha256: p.reproducerSha256, rerun: c.rerun,
    },
  }) as Record<string, Json>;
}
