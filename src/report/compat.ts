// The compatibility table: one row per Debian kernel package version ever
// measured (kernel, suite, package version, expected, classified, date),
// kept in the repository (results/compat.json) beside the baseline and
// rendered in report.html and results/compat.md. Rows come from runs
// (compatRowsOfRun: the run's Debian kernels, classified by the one
// classifier, src/diff/evidence.ts) and are merged by package version
// (mergeCompat: a re-measurement replaces its row, nothing is dropped).
// Pure; `lockstep kernels compat` reads and writes the file.

import { z } from 'zod';
import { classifyKernel, type ResultsLike } from '../diff/evidence.ts';
import { isFailing, isVerdict } from '../diff/verdicts.ts';
import { compareKernelVersions, readKernelVersion } from '../kernel-facts/index.ts';
import { kernelPackage } from '../kernels/obtain/deb-kernels.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { esc } from './svg.ts';

export const COMPAT_SCHEMA = 'lockstep/compat@1';

/** One measured Debian kernel package version. */
export interface CompatRow {
  /** upstream version the model reads, e.g. "7.3.4", "7.3-rc7" */
  kernel: string;
  /** the suite it was fetched from, e.g. "trixie-backports"; null when the spec pinned no suite */
  suite: string | null;
  package: string;
  /** the package's kernel flavour, e.g. "cloud-amd64", "arm64-16k" */
  flavour: string;
  /** the Debian version, e.g. "7.3.4-1~bpo13+1" */
  package_version: string;
  /** the logic `"expect": "auto"` derived ("V4/perf", "V4/unknown"), or "unknown" */
  expected: string;
  /** classifyKernel's label: "V4/perf", "V1b|V3/perf", "ambiguous: ...", "none", "no cells" */
  classified: string;
  /** true when the classified logics include the expected one; null when nothing was expected or the counter is open */
  consistent: boolean | null;
  /** cells per verdict, e.g. { MATCH: 25, SKIP: 2 } */
  cells: Record<string, number>;
  /** scenarios whose cell failed (MISMATCH, PANIC, ERROR, TIMEOUT, ...) */
  failing: string[];
  /** the day the run started, YYYY-MM-DD (UTC) */
  measured: string;
  /** the run's kernel id */
  run_kernel: string;
}

export interface CompatTable {
  schema: typeof COMPAT_SCHEMA;
  rows: CompatRow[];
}

const rowSchema = z.strictObject({
  kernel: z.string().min(1).max(40),
  suite: z.string().regex(/^[a-z]{2,20}(?:-(?:updates|backports|security))?$/).nullable(),
  package: z.string().regex(/^[a-z0-9][a-z0-9.+-]{1,100}$/),
  flavour: z.string().regex(/^[a-z0-9][a-z0-9-]{0,40}$/),
  package_version: z.string().regex(/^[A-Za-z0-9.+~:-]{1,60}$/),
  expected: z.string().max(40),
  classified: z.string().max(200),
  consistent: z.boolean().nullable(),
  cells: z.record(z.string().regex(/^[A-Z_]{2,20}$/), z.number().int().min(0)),
  failing: z.array(z.string().max(64)),
  measured: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  run_kernel: z.string().max(64),
});
const tableSchema = z.strictObject({ schema: z.literal(COMPAT_SCHEMA), rows: z.array(rowSchema) });

/** A compat.json that is not lockstep/compat@1: `field` is the first bad field as a JSON path ("rows[3].measured"). */
export class CompatFormatError extends Error {
  constructor(readonly field: string, readonly why: string) {
    super(`${field}: ${why}`);
  }
}

/**
 * Check a parsed compat.json. Returns the table; throws CompatFormatError
 * naming the first bad field (message "rows[3].measured: ...").
 */
export function parseCompat(data: unknown): CompatTable {
  const r = tableSchema.safeParse(data);
  if (r.success) return r.data as CompatTable;
  const issue = r.error.issues[0]!;
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  throw new CompatFormatError(path || '(top)', issue.message);
}

/** The parts of a results.json compatRowsOfRun reads. */
export interface CompatRunLike extends ResultsLike {
  started_at: string;
  kernels: readonly (ResultsLike['kernels'][number] & {
    expected_logic: string | null;
    resolution?: { suite: string | null; package: string; package_version: string; version: string };
  })[];
  cells: readonly (ResultsLike['cells'][number] & { verdict: string })[];
}

/**
 * One row per Debian kernel of run `r` (kernels with a `resolution`: the
 * debian-image kind), classified from its measured cells
 * (classifyKernel, scenario definitions from the run or `known` by hash).
 * Kernels of other kinds (host, builds, images) have no Debian package and
 * give no row, nor does a kernel without cells (fetched by a run that
 * stopped before its boot). Pure.
 */
export function compatRowsOfRun(r: CompatRunLike, known: ReadonlyMap<string, CompiledScenario> = new Map()): CompatRow[] {
  const rows: CompatRow[] = [];
  for (const k of r.kernels) {
    const res = k.resolution;
    if (!res) continue;
    const mine = r.cells.filter((c) => c.kernel === k.id);
    if (!mine.length) continue; // fetched, never run (an interrupted run): not measured
    const cells: Record<string, number> = {};
    for (const c of mine) cells[c.verdict] = (cells[c.verdict] ?? 0) + 1;
    const c = classifyKernel(r, k.id, known);
    const expected = k.expected_logic ?? 'unknown';
    const open = expected === 'unknown' || expected.endsWith('/unknown');
    rows.push({
      kernel: res.version, suite: res.suite, package: res.package, flavour: kernelPackage(res.package)?.flavour ?? 'unknown', package_version: res.package_version, expected,
      classified: c.label, consistent: open || c.status === 'no-cells' ? null : c.logics.includes(expected),
      cells, failing: mine.filter((x) => isVerdict(x.verdict) && isFailing(x.verdict)).map((x) => x.scenario).sort(),
      measured: r.started_at.slice(0, 10), run_kernel: k.id,
    });
  }
  return rows;
}

/** Newest kernel first (compareKernelVersions; a kernel with no version last), then suite, flavour, Debian version. Pure. */
export function compareCompatRows(a: CompatRow, b: CompatRow): number {
  const va = readKernelVersion(a.kernel), vb = readKernelVersion(b.kernel);
  const byVersion = va && vb ? compareKernelVersions(vb, va) : va ? -1 : vb ? 1 : 0;
  return byVersion || (a.suite ?? '').localeCompare(b.suite ?? '') || a.flavour.localeCompare(b.flavour) || b.package_version.localeCompare(a.package_version);
}

/**
 * `table` with `rows` merged in, keyed by package=package_version: a row
 * measured again is replaced by the newer measurement, every other row is
 * kept (the table only grows). Returns the table (sorted, compareCompatRows)
 * and the keys added and replaced. Pure.
 */
export function mergeCompat(table: CompatTable, rows: readonly CompatRow[]): { table: CompatTable; added: string[]; replaced: string[] } {
  const key = (r: CompatRow): string => `${r.package}=${r.package_version}`;
  const byKey = new Map(table.rows.map((r) => [key(r), r]));
  const added: string[] = [];
  const replaced: string[] = [];
  for (const r of rows) {
    (byKey.has(key(r)) ? replaced : added).push(key(r));
    byKey.set(key(r), r);
  }
  return { table: { schema: COMPAT_SCHEMA, rows: [...byKey.values()].sort(compareCompatRows) }, added, replaced };
}

const cellsText = (c: Record<string, number>): string => Object.entries(c).sort(([a], [b]) => a.localeCompare(b)).map(([v, n]) => `${n} ${v}`).join(', ');
const agreeText = (r: CompatRow): string => (r.consistent === null ? 'open' : r.consistent ? 'yes' : 'NO');

/** "N kernel package versions: A consistent with their expectation, B not, C open (counter unknown); D with a failing cell." Pure. */
export function countLine(t: CompatTable): string {
  const n = (f: (r: CompatRow) => boolean): number => t.rows.filter(f).length;
  return `${t.rows.length} kernel package versions: ${n((r) => r.consistent === true)} classified as expected, ${n((r) => r.consistent === false)} not, `
    + `${n((r) => r.consistent === null)} open (no expected counter); ${n((r) => r.failing.length > 0)} with a failing cell.`;
}

/** The table as Markdown (results/compat.md), with a count line. Pure. */
export function renderCompatMarkdown(t: CompatTable): string {
  const lines = [
    '# Debian cloud kernels measured by lockstep', '',
    countLine(t),
    'Generated by `lockstep kernels compat` from compat.json; "consistent" is open where the expected counter is unknown.', '',
    '| kernel | suite | flavour | package version | expected | classified | consistent | cells | failing | measured |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of t.rows) {
    lines.push(`| ${r.kernel} | ${r.suite ?? '-'} | ${r.flavour} | ${r.package_version} | ${r.expected} | ${r.classified.replace(/\|/g, '\\|')} | ${agreeText(r)} | ${cellsText(r.cells)} | ${r.failing.join(', ') || '-'} | ${r.measured} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** The table as an HTML section for report.html (escaped). Pure. */
export function renderCompatHtml(t: CompatTable): string {
  const row = (r: CompatRow): string => `<tr${r.consistent === false || r.failing.length ? ' class="bad"' : ''}><td>${esc(r.kernel)}</td><td>${esc(r.suite ?? '-')}</td><td>${esc(r.flavour)}</td><td title="${esc(r.package)}">${esc(r.package_version)}</td>`
    + `<td>${esc(r.expected)}</td><td>${esc(r.classified)}</td><td>${agreeText(r)}</td><td>${esc(cellsText(r.cells))}</td><td>${esc(r.failing.join(', ') || '-')}</td><td>${esc(r.measured)}</td></tr>`;
  return [
    '<section id="compat"><h2>Debian cloud kernels measured</h2>',
    `<p>${esc(countLine(t))} One row per package version (compat.json), newest first.</p>`,
    '<table><thead><tr><th>kernel</th><th>suite</th><th>flavour</th><th>package version</th><th>expected</th><th>classified</th><th>consistent</th><th>cells</th><th>failing</th><th>measured</th></tr></thead><tbody>',
    ...t.rows.map(row), '</tbody></table></section>',
  ].join('\n');
}
