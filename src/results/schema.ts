// results.json: the source of truth of a run. Versioned; readers refuse
// versions they do not know.
//
// In memory (the Results type) every cell carries its expected ops and its
// kernel's provenance, as readers want them. On disk (lockstep/results@2)
// neither is repeated: provenance is written once per kernel
// (kernels[].provenance) and each cell's expected ops are left out, since
// they are recomputed exactly from the scenario definition, the expected
// logic, the kernel's version and the calibrated inputs
// (compactResults/checkResults; a cell whose stored value would differ keeps
// it). lockstep/results@1 files (everything in every cell) still read.

import type { MeasuredOp, Divergence } from '../diff/index.ts';
import { type ExpectedOp, parseLogic, simOptionsForVersion, simulate } from '../model/index.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import type { DebianResolution } from '../kernels/obtain/debian.ts';
import { z } from 'zod';
import { ConfigError } from '../util/errors.ts';
import { explain, parseOrThrow } from '../util/validate.ts';
import { type CellVerdict, VERDICTS } from '../diff/verdicts.ts';
import { RESULTS_SCHEMA } from './version.ts';

export { RESULTS_SCHEMA };
/** Older schemas this lockstep still reads (migrated on read). */
export const READABLE_SCHEMAS: readonly string[] = ['lockstep/results@1', RESULTS_SCHEMA];

// What each verdict means lives in one table (./verdicts.ts); re-exported for readers of this module.
export { type CellVerdict, isVerdict, type VerdictClass, verdictClass } from '../diff/verdicts.ts';

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
  runtime: 'host' | 'qemu' | 'container' | 'virtme';
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
  /**
   * Why `expected` is stored in results.json although @2 leaves it out where a
   * reader recomputes it (recomputeExpected): e.g. an expectation whose
   * counter is 'unknown' ("V4/unknown"), where the diff chose the counter the
   * measurement fits, so only the cell knows which prediction it was judged by.
   */
  expected_stored?: string;
  /** console text around a panic/oops, or the console tail on TIMEOUT/BOOT_FAIL */
  console_excerpt?: string;
  console_log?: string | null;
  results_log?: string | null;
  boot_ms?: number | null;
  group_wall_ms?: number;
  /** when the scenario began (the reproducer's begin line; the group start when it never began) */
  started_at: string;
  /** begin to end of this scenario inside its boot, ms; null when it never finished */
  duration_ms?: number | null;
  scenario_hash: string;
  /** re-runs just this cell */
  rerun: string;
  // Provenance (absent in files written before it was recorded).
  kernel_version?: string;
  /** where the kernel came from: "debian:<package>=<version>", a URL, a path, "host" */
  kernel_source?: string;
  kernel_config_sha256?: string | null;
  kernel_artifact_sha256?: string | null;
  /** `qemu-system-x86_64 --version` first line (virtme runtime: `vng --version`, then QEMU's); null for the host runtime */
  qemu_version?: string | null;
  /** the exact emulator command line of the boot that ran this cell (virtme runtime: vng's); null for the host runtime */
  qemu_argv?: string[] | null;
  /** why this accelerator (KVM probe result, fallback, --accel) */
  accel_why?: string;
  /**
   * The saved guest (src/runner/snapshot.ts) this cell's VM came from:
   * "restored" from it, or booted and "saved" into it at its ready line
   * (key: the snapshot's cache key, sha256: its state file's). null or
   * absent: booted without one (--no-snapshot, virtme, the host, a failed save).
   */
  vm_snapshot?: VmSnapshotUse | null;
  /** sha256 of the static reproducer binary that ran the ops */
  reproducer_sha256?: string | null;
  /** present when the cell took more than one boot (`run --attempts`): every attempt, in order; the cell is the last */
  attempts?: CellAttempt[];
  /** true when the cell passed (or skipped) only after an infrastructure failure: a pass, visibly */
  flaky?: boolean;
}

/** How a VM group used a saved guest (CellResult.vm_snapshot). */
export interface VmSnapshotUse {
  how: 'restored' | 'saved';
  key: string;
  sha256: string;
}

/** One boot's verdict for a cell that was retried. */
export interface CellAttempt {
  /** 1-based */
  attempt: number;
  verdict: CellVerdict;
  reason?: string;
  duration_ms: number | null;
  /** relative to the results directory */
  console_log: string | null;
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
  /**
   * "real": a kernel as its distribution ships it (a Debian package, the
   * host's, or a release's tree built here without patches); "stand-in": built
   * here with patches to stand for a logic; "image": a bzImage given by path or URL
   * (src/matrix/provenance.ts releaseKind)
   */
  release_kind?: 'real' | 'stand-in' | 'image';
  /** the guest's architecture when not x86_64 ("arm64") */
  arch?: string;
  /** the kernel's page size in kB when not 4 (an arm64 build with 16 or 64 kB pages): the unit of every page count of its cells */
  page_kb?: number;
  /** how a Debian kernel's package and version were chosen when the run started ("latest" rows: which one ran) */
  resolution?: KernelResolution;
  /** on disk (@2): the provenance every cell of this kernel shares; cells keep only values that differ */
  provenance?: Partial<Pick<CellResult, ProvenanceField>>;
}

/** A Debian kernel's resolution: package, versions, suite, .deb sha256 (written by src/kernels/obtain/debian.ts). */
export type KernelResolution = DebianResolution;

/** Per-cell provenance that is the same for every cell of a kernel (in one run; qemu_argv: of one boot). */
export const PROVENANCE_FIELDS = ['kernel_version', 'kernel_source', 'kernel_config_sha256', 'kernel_artifact_sha256', 'qemu_version', 'reproducer_sha256', 'qemu_argv'] as const;
export type ProvenanceField = (typeof PROVENANCE_FIELDS)[number];

export interface Results {
  /** written as RESULTS_SCHEMA; a file of an older readable schema is migrated on read */
  schema: string;
  lockstep_version: string;
  started_at: string;
  finished_at?: string;
  /** false while the run is in progress or was interrupted */
  complete: boolean;
  host: { release: string; cpus: number; accel: string; accel_why: string; emulator?: string };
  kernels: KernelRecord[];
  scenarios: { id: string; hash: string; cpus: number; /** the compiled scenario, so readers can re-diff/classify */ def?: CompiledScenario }[];
  /** identity of the whole matrix (all shards share it): sha256 over kernel ids and scenario hashes */
  matrix?: { hash: string; kernels: string[]; scenarios: string[] };
  /** present when this run is one slice of the matrix (`--shard i/n`) */
  shard?: { index: number; count: number; groups: string[] };
  /** present on merged results: the shards it was joined from */
  merged_from?: { path: string; shard: { index: number; count: number } | null; host: Results['host']; started_at: string }[];
  cells: CellResult[];
}

/** Kernel and scenario ids as lockstep writes them (kernel spec ids, scenario IDENT_RE): they name files, so never a path. */
const RESULT_ID_RE = /^[A-Za-z0-9_.+-]{1,128}$/;

const DAMAGED = 'the file is damaged or was not written by lockstep; re-run the matrix';
const damaged = (problem: string) => ({ error: () => explain(problem, DAMAGED) });
const text = z.string(damaged('missing or not a string'));
const array = <T extends z.ZodType>(item: T) => z.array(item, damaged('missing or not an array'));
const callNumber = z.number(damaged('not null or a call number >= 1')).int(damaged('not null or a call number >= 1')).min(1, damaged('not null or a call number >= 1')).nullable();

/**
 * results.json as readers depend on it (lockstep/results@1 and @2): the
 * fields every reader uses are typed, the rest is open (newer writers of the
 * same major schema may add fields). `lockstep schema results` publishes it.
 */
export const resultsSchema = z
  .looseObject({
    schema: z.string().refine((v) => READABLE_SCHEMAS.includes(v)),
    lockstep_version: z.string().optional(),
    started_at: text,
    finished_at: z.string().optional(),
    complete: z.boolean(damaged('missing or not a boolean')),
    host: z.looseObject({}, damaged('missing or not an object')),
    kernels: array(z.looseObject({ id: text }, damaged('missing or not an object'))),
    scenarios: array(z.looseObject({ id: text, hash: text }, damaged('missing or not an object'))),
    cells: array(
      z.looseObject({
        kernel: text,
        scenario: text,
        verdict: z.enum(VERDICTS, { error: (iss) => explain(`${JSON.stringify(iss.input)} is not one of ${VERDICTS.join(', ')}`, DAMAGED) }),
        first_eperm_measured: callNumber,
        first_eperm_expected: callNumber,
        pinned_measured: array(z.number()),
        pinned_expected: array(z.number()),
        measured: array(z.looseObject({})),
        /** left out in @2 where recomputeExpected gives it back exactly */
        expected: z.array(z.looseObject({}), damaged('not an array')).optional(),
        scenario_hash: text,
        rerun: text,
      }, damaged('not an object')),
    ),
    matrix: z.looseObject({ hash: text }, damaged('missing or not a string')).optional(),
    shard: z.looseObject({ index: z.number(damaged('not {index, count} with 1 <= index <= count')).int().min(1), count: z.number(damaged('not {index, count} with 1 <= index <= count')).int().min(1) }, damaged('not {index, count} with 1 <= index <= count'))
      .refine((sh) => sh.index <= sh.count, damaged('not {index, count} with 1 <= index <= count'))
      .optional(),
  }, { error: () => explain('not a JSON object', 'point at a results.json written by `lockstep run`') })
  .superRefine((r, ctx) => {
    const seen = new Set<string>();
    // consistency: every id is one lockstep writes (never a path), every cell names a listed kernel and scenario
    const badId = (id: string) => !RESULT_ID_RE.test(id) || /^\.+$/.test(id);
    const idIssue = (path: (string | number)[], id: string) => ctx.addIssue({ code: 'custom', path, message: explain(`${JSON.stringify(id.slice(0, 80))} is not an id lockstep writes ([A-Za-z0-9_.+-], at most 128, not "." or "..")`, DAMAGED) });
    r.kernels.forEach((k, i) => { if (badId(k.id)) idIssue(['kernels', i, 'id'], k.id); });
    r.scenarios.forEach((s, i) => { if (badId(s.id)) idIssue(['scenarios', i, 'id'], s.id); });
    const kernels = new Set(r.kernels.map((k) => k.id));
    const scenarios = new Set(r.scenarios.map((s) => s.id));
    r.cells.forEach((c, i) => {
      if (badId(c.kernel)) idIssue(['cells', i, 'kernel'], c.kernel);
      else if (badId(c.scenario)) idIssue(['cells', i, 'scenario'], c.scenario);
      else if (!kernels.has(c.kernel)) ctx.addIssue({ code: 'custom', path: ['cells', i, 'kernel'], message: explain(`${JSON.stringify(c.kernel)} is not in kernels[]`, DAMAGED) });
      else if (!scenarios.has(c.scenario)) ctx.addIssue({ code: 'custom', path: ['cells', i, 'scenario'], message: explain(`${JSON.stringify(c.scenario)} is not in scenarios[]`, DAMAGED) });
      if (r.schema === 'lockstep/results@1' && c.expected === undefined) ctx.addIssue({ code: 'custom', path: ['cells', i, 'expected'], message: explain('not an array', DAMAGED) });
      const key = `${c.kernel}\0${c.scenario}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['cells', i], message: explain(`a second cell for ${c.kernel} x ${c.scenario}`, DAMAGED) });
      seen.add(key);
    });
  });

/**
 * Validate a parsed results.json: the schema version first (a clear error for
 * one this lockstep does not know), then the fields readers depend on
 * (resultsSchema). Extra fields are allowed. Returns the in-memory form
 * (expandResults); throws ConfigError naming the file and field.
 */
export function checkResults(obj: unknown, file: string): Results {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new ConfigError(file, '', 'not a JSON object', 'point at a results.json written by `lockstep run`');
  const schema = (obj as Record<string, unknown>).schema;
  if (typeof schema !== 'string' || !READABLE_SCHEMAS.includes(schema)) {
    throw new ConfigError(file, 'schema', `unknown results schema ${JSON.stringify(schema)} (this lockstep reads ${READABLE_SCHEMAS.join(', ')})`,
      'regenerate it with this version of lockstep, or use the lockstep version that wrote it');
  }
  parseOrThrow(resultsSchema, obj, file);
  return expandResults(obj as unknown as Results);
}

/**
 * A cell's expected ops, recomputed: the simulator under the cell's expected
 * logic, with the options the kernel's version implies and the inputs the
 * run calibrated (src/matrix/cells.ts computes them the same way). [] when
 * the cell has no expected logic or the scenario definition is unknown.
 * Throws RangeError when the cell's expected logic is not one concrete logic
 * (an open counter such as "V4/unknown": use recomputable first).
 */
export function recomputeExpected(c: Pick<CellResult, 'expected_logic' | 'calibrated'>, def: CompiledScenario | undefined, version: string | undefined): ExpectedOp[] {
  if (!c.expected_logic || !def) return [];
  return simulate(def, parseLogic(c.expected_logic), { ...(version ? simOptionsForVersion(version) : {}), ...c.calibrated });
}

/**
 * The expected ops a reader would recompute for `c` (recomputeExpected), or
 * why they cannot be recomputed: an expectation with an open counter
 * ("V4/unknown": the diff judged the cell by whichever counter the
 * measurement fits, which only the cell records), or any error the simulator
 * throws. Never throws: the writer keeps such a cell's own expected ops.
 */
export function recomputable(c: Pick<CellResult, 'expected_logic' | 'calibrated'>, def: CompiledScenario | undefined, version: string | undefined): { ops: ExpectedOp[] } | { why: string } {
  if (c.expected_logic && /\/unknown$/.test(c.expected_logic)) {
    return { why: `expected logic ${c.expected_logic} has an open counter: these are the predictions of the counter the measurement was judged by` };
  }
  try {
    return { ops: recomputeExpected(c, def, version) };
  } catch (e) {
    return { why: `cannot recompute the expected ops (${(e as Error).message}): kept as measured against` };
  }
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function defsByHash(r: Results): Map<string, CompiledScenario> {
  return new Map(r.scenarios.flatMap((s) => (s.def ? [[s.hash, s.def] as const] : [])));
}

/**
 * The on-disk form (RESULTS_SCHEMA) of in-memory results: provenance once
 * per kernel (the value of its first cell; a cell that differs keeps its
 * own), and no expected ops where recomputeExpected gives them back exactly.
 * Does not change `r`.
 */
export function compactResults(r: Results): Results {
  const defs = defsByHash(r);
  const version = new Map(r.kernels.map((k) => [k.id, k.version]));
  const prov = new Map<string, Record<string, unknown>>();
  for (const c of r.cells) {
    if (prov.has(c.kernel)) continue;
    const p: Record<string, unknown> = {};
    for (const f of PROVENANCE_FIELDS) if (c[f] !== undefined) p[f] = c[f];
    prov.set(c.kernel, p);
  }
  const cells = r.cells.map((c) => {
    const out: Partial<CellResult> = { ...c };
    const p = prov.get(c.kernel)!;
    for (const f of PROVENANCE_FIELDS) if (c[f] !== undefined && sameJson(p[f], c[f])) delete out[f];
    const again = recomputable(c, defs.get(c.scenario_hash), version.get(c.kernel));
    if ('ops' in again && sameJson(c.expected, again.ops)) delete out.expected;
    else if ('why' in again && c.expected.length) out.expected_stored = again.why;
    return out as CellResult;
  });
  const kernels = r.kernels.map((k) => {
    const p = prov.get(k.id);
    return p && Object.keys(p).length ? { ...k, provenance: p as KernelRecord['provenance'] } : k;
  });
  return { ...r, schema: RESULTS_SCHEMA, kernels, cells };
}

/** compactResults' inverse (and the @1 migration: nothing to fill in there). Mutates and returns `r`. */
export function expandResults(r: Results): Results {
  const defs = defsByHash(r);
  const kernels = new Map(r.kernels.map((k) => [k.id, k]));
  for (const c of r.cells) {
    const k = kernels.get(c.kernel);
    if (k?.provenance) for (const f of PROVENANCE_FIELDS) if (c[f] === undefined && k.provenance[f] !== undefined) (c as unknown as Record<string, unknown>)[f] = structuredClone(k.provenance[f]);
    if (c.expected === undefined) {
      const again = recomputable(c, defs.get(c.scenario_hash), k?.version);
      c.expected = 'ops' in again ? again.ops : [];
    }
  }
  for (const k of r.kernels) delete k.provenance;
  r.schema = RESULTS_SCHEMA;
  return r;
}
