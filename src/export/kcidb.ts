// A KCIDB submission (kcidb I/O schema v5.3, kernelci/kcidb-io) from a run:
// one checkout per kernel source, one build per kernel, one `lockstep.boot` test per QEMU
// boot (kernel x CPU count) and one `lockstep.<scenario>` test per cell.
// Ids are "lockstep:" + hashes lockstep records (bzImage sha256, scenario
// hash) or sha256s over them; no property is ever null. Log URLs only under
// an https --artifact-base-url (the published results directory); without
// one there are none (a file:// URL of the exporting machine points nowhere).
// Pure.

import { createHash } from 'node:crypto';
import { artifactUrl } from './artifact-url.ts';
import type { CellResult, CellVerdict, Results } from '../results/schema.ts';
import { kernelIds } from '../results/ids.ts';
import { type KcidbStatus, VERDICT_FACTS, VERDICTS } from '../diff/verdicts.ts';
import { provenance } from './provenance.ts';

export const KCIDB_VERSION = { major: 5, minor: 3 } as const;
export const KCIDB_ORIGIN = 'lockstep';

export type { KcidbStatus } from '../diff/verdicts.ts';

/**
 * A cell's verdict as a KCIDB test status (the verdict table's kcidb column,
 * src/diff/verdicts.ts): MATCH -> PASS, MISMATCH/PANIC -> FAIL, TIMEOUT/ERROR
 * -> ERROR, BOOT_FAIL/BUILD_FAIL -> MISS (the boot test or the build carries
 * the FAIL), SKIP -> SKIP, UNCHECKED -> DONE.
 */
export const KCIDB_STATUS: Readonly<Record<CellVerdict, KcidbStatus>> = Object.fromEntries(VERDICTS.map((v) => [v, VERDICT_FACTS[v].kcidb])) as Record<CellVerdict, KcidbStatus>;

type Json = string | number | boolean | Json[] | { [k: string]: Json };
export interface KcidbSubmission {
  version: { major: number; minor: number };
  checkouts: Record<string, Json>[];
  builds: Record<string, Json>[];
  tests: Record<string, Json>[];
}

const sha = (...parts: string[]): string => createHash('sha256').update(parts.join('\0')).digest('hex');
const id = (rest: string): string => `${KCIDB_ORIGIN}:${rest}`;
/** A test path component as kcidb-io v5.0+ allows it ([a-zA-Z0-9_-]+; paths are dot-separated): anything else is '_'. */
export const component = (s: string): string => s.replace(/[^a-zA-Z0-9_-]/g, '_') || '_';
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

/** Options of toKcidb: `artifactBaseUrl` from httpsBase (src/export/artifact-url.ts). */
export interface KcidbOptions { artifactBaseUrl?: string }

/** A named resource (kcidb v5.3 resource: name = a file name, url = the file) under the base URL, if any. */
function resource(base: string | undefined, rel: string | null | undefined): Record<string, Json>[] | undefined {
  const url = base ? artifactUrl(base, rel) : undefined;
  return url ? [{ name: rel!.split('/').pop()!, url }] : undefined;
}

/** The kernel source as a build input when it is a downloadable https URL (a tarball or patch lockstep built from). */
function sourceInput(source: string): Record<string, Json>[] | undefined {
  if (!/^https:\/\//.test(source)) return undefined;
  try { const u = new URL(source); return [{ name: decodeURIComponent(u.pathname.split('/').pop() || 'source'), url: u.href }]; } catch { return undefined; }
}

const endOf = (c: CellResult): number => Date.parse(c.started_at) + (c.duration_ms ?? 0);

/**
 * The v5.1 checkout finish times, only for a complete run (the origin
 * finished what it planned): tests = the run's finished_at (else its last
 * cell's end); builds = the latest first-cell start over the checkout's
 * kernels (every build had finished by then; lockstep records no build end).
 */
function finishTimes(r: Results, kernelCells: CellResult[][]): { origin_builds_finish_time?: string; origin_tests_finish_time?: string } {
  if (!r.complete || !r.cells.length) return {};
  const tests = r.finished_at ?? new Date(Math.max(...r.cells.map(endOf))).toISOString();
  const firsts = kernelCells.filter((cs) => cs.length).map((cs) => Math.min(...cs.map((c) => Date.parse(c.started_at))));
  return { origin_tests_finish_time: tests, origin_builds_finish_time: firsts.length ? new Date(Math.max(...firsts)).toISOString() : undefined };
}

/**
 * The run as one KCIDB submission (kcidb I/O v5.3). With
 * `o.artifactBaseUrl`, log_url, input_files and output_files point at the
 * files of the published results directory under it; without, they are
 * omitted. Checkouts of a complete run carry the v5.1 finish times.
 */
export function toKcidb(r: Results, o: KcidbOptions = {}): KcidbSubmission {
  const runKey = r.matrix?.hash ?? sha(r.started_at, ...r.cells.map((c) => c.scenario_hash));
  const checkouts: Record<string, Json>[] = [];
  const builds: Record<string, Json>[] = [];
  const tests: Record<string, Json>[] = [];
  for (const kid of kernelIds(r)) {
    const cells = r.cells.filter((c) => c.kernel === kid);
    const rec = r.kernels.find((k) => k.id === kid);
    const p = cells.length ? provenance(r, cells[0]!) : null;
    const source = checkoutOf(r, kid);
    const checkoutId = id(`checkout-${sha(source)}`);
    // The build is the bzImage that booted: its sha256. Without one (host kernel, failed build): the source and the run.
    const artifact = p?.artifactSha256 ?? rec?.artifact_sha256 ?? null;
    const buildId = id(artifact ? `build-${artifact}` : `build-${sha(source, kid, runKey)}`);
    // Kernels of one source (the host kernel natively and in a container) share its checkout.
    if (!checkouts.some((c) => c.id === checkoutId)) checkouts.push(dropNulls({
      id: checkoutId, origin: KCIDB_ORIGIN, comment: source, start_time: r.started_at, valid: true,
      ...finishTimes(r, kernelIds(r).filter((k) => checkoutOf(r, k) === source).map((k) => r.cells.filter((c) => c.kernel === k))),
      tree_name: rec?.kind === 'host' ? 'host' : source.startsWith('debian:') ? 'debian' : undefined,
      misc: { kernel_id: kid, kernel_version: p?.kernelVersion ?? rec?.version },
    }) as Record<string, Json>);
    const buildFail = cells.find((c) => c.verdict === 'BUILD_FAIL');
    builds.push(dropNulls({
      id: buildId, checkout_id: checkoutId, origin: KCIDB_ORIGIN, architecture: 'x86_64', start_time: r.started_at,
      comment: `${kid}: ${p?.release ?? rec?.release ?? rec?.version ?? ''}`.trim(),
      status: buildFail ? 'FAIL' : 'PASS', input_files: sourceInput(source),
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
        log_url: resource(o.artifactBaseUrl, group[0]!.console_log)?.[0]?.url, log_excerpt: bootFail ? excerpt(`${bootFail.reason ?? ''}\n${bootFail.console_excerpt ?? ''}`.trim()) : undefined,
        environment: environment(group[0]!, gp.qemuArgv, gp.qemuVersion, gp.accelWhy),
      }) as Record<string, Json>);
    }
    for (const c of cells) tests.push(cellTest(r, c, buildId, o.artifactBaseUrl));
  }
  return { version: { ...KCIDB_VERSION }, checkouts, builds, tests };
}

function environment(c: CellResult, argv: string[] | null, qemuVersion: string | null, accelWhy: string | null): Json {
  const where = c.runtime === 'qemu' ? `QEMU (${c.accel.toUpperCase()}), ${c.cpus} CPUs` : c.runtime === 'container' ? `host kernel, in a Docker container, ${c.cpus} CPUs` : `host kernel, natively, ${c.cpus} CPUs`;
  return dropNulls({ comment: where, misc: { cpus: c.cpus, runtime: c.runtime, accelerator: c.accel, accelerator_why: accelWhy, qemu_version: qemuVersion, qemu_command_line: argv ? argv.join(' ') : undefined } })!;
}

/** The kernel source a kernel's checkout is keyed by (as toKcidb computes it). */
function checkoutOf(r: Results, kid: string): string {
  const cells = r.cells.filter((c) => c.kernel === kid);
  const rec = r.kernels.find((k) => k.id === kid);
  return (cells.length ? provenance(r, cells[0]!).kernelSource : null) ?? rec?.source ?? `kernel ${kid}`;
}

/**
 * A cell as a test. Inputs (with a base URL): results.json, which holds the
 * scenario's op script and the model's expected values the verdict was
 * judged against; outputs: the boot's console.log (log_url is the
 * reproducer's results.jsonl).
 */
function cellTest(r: Results, c: CellResult, buildId: string, base: string | undefined): Record<string, Json> {
  const p = provenance(r, c);
  const log = [c.reason, c.divergence ? `divergence: ${JSON.stringify(c.divergence)}` : undefined, c.console_excerpt].filter(Boolean).join('\n');
  return dropNulls({
    id: id(`cell-${sha(buildId, c.scenario_hash, c.started_at)}`), build_id: buildId, origin: KCIDB_ORIGIN,
    path: `${KCIDB_ORIGIN}.${component(c.scenario)}`, comment: `${c.kernel} x ${c.scenario}: ${c.verdict}`,
    status: KCIDB_STATUS[c.verdict], start_time: c.started_at,
    duration: typeof c.duration_ms === 'number' ? c.duration_ms / 1000 : undefined,
    log_url: resource(base, c.results_log)?.[0]?.url, log_excerpt: log ? excerpt(log) : undefined,
    input_files: resource(base, 'results.json'), output_files: resource(base, c.console_log),
    environment: environment(c, p.qemuArgv, p.qemuVersion, p.accelWhy),
    misc: {
      verdict: c.verdict, reason: c.reason, expected_logic: p.expectedLogic, scenario_hash: c.scenario_hash,
      first_eperm_measured: c.first_eperm_measured, first_eperm_expected: c.first_eperm_expected,
      uid: c.uid, reproducer_sha256: p.reproducerSha256, rerun: c.rerun,
    },
  }) as Record<string, Json>;
}
