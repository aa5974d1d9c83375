// Which accounting logic a kernel is expected to implement, from its version.
// Pure: no I/O. The two tables below ARE the rules (shared/kernel-history.md);
// keep them readable so they can be audited row by row.

import semver from 'semver';
import { type Accounting, type Counter, type Logic, logicLabel } from '../model/accounting.ts';
import { ConfigError } from '../util/errors.ts';
import type { KernelSpec } from './spec.ts';

export interface AccountingRow {
  /** semver range over the coerced kernel version (MAJOR.MINOR.PATCH) */
  range: string;
  accounting: Accounting;
  why: string;
}

/**
 * perf_mmap() accounting by kernel version. Rows are disjoint and cover every
 * version (checked by the tests); the first match wins.
 */
export const ACCOUNTING_TABLE: readonly AccountingRow[] = [
  { range: '<4.9.0', accounting: 'V0', why: 'original 2009-era logic' },
  { range: '>=4.9.0 <4.9.214', accounting: 'V0', why: '4.9.y before the 003461559ef7 backport' },
  { range: '>=4.9.214 <4.10.0', accounting: 'V3', why: '003461559ef7 backported to 4.9.214' },
  { range: '>=4.10.0 <4.14.0', accounting: 'V0', why: 'original logic' },
  { range: '>=4.14.0 <4.14.171', accounting: 'V0', why: '4.14.y before the 003461559ef7 backport' },
  { range: '>=4.14.171 <4.15.0', accounting: 'V3', why: '003461559ef7 backported to 4.14.171' },
  { range: '>=4.15.0 <4.19.0', accounting: 'V0', why: 'original logic' },
  { range: '>=4.19.0 <4.19.103', accounting: 'V0', why: '4.19.y before the 003461559ef7 backport' },
  { range: '>=4.19.103 <4.20.0', accounting: 'V3', why: '003461559ef7 backported to 4.19.103' },
  { range: '>=4.20.0 <5.3.9', accounting: 'V0', why: 'original logic, the incident kernel (<= 5.3.8)' },
  { range: '>=5.3.9 <5.4.0', accounting: 'V1', why: 'd44248a41337 backported to 5.3.9' },
  { range: '>=5.4.0 <5.4.19', accounting: 'V1', why: 'd44248a41337, v5.4' },
  { range: '>=5.4.19 <5.5.0', accounting: 'V3', why: '003461559ef7 backported to 5.4.19' },
  { range: '>=5.5.0 <5.5.3', accounting: 'V2', why: 'c4b75479741c, v5.5' },
  { range: '>=5.5.3 <5.6.0', accounting: 'V3', why: '003461559ef7 backported to 5.5.y, taken as 5.5.3' },
  { range: '>=5.6.0 <6.15.0', accounting: 'V3', why: '003461559ef7, v5.6-rc1' },
  { range: '>=6.15.0', accounting: 'V4', why: 'v6.15 perf_mmap() rework, 0c8a4e4139ad series: re-mmap leaks U' },
];

export interface CounterRow {
  /** which distro's kernels the row applies to; '*' = any */
  distro: string;
  range: string;
  counter: Counter;
  why: string;
}

/** Which per-user counter perf charges. The first match wins; the last row catches everything. */
export const COUNTER_TABLE: readonly CounterRow[] = [
  { distro: 'debian', range: '>=6.1.0 <6.1.192', counter: 'shared', why: 'debian 6.1 < 6.1.192 -> shared user->locked_vm' },
  { distro: 'debian', range: '>=6.1.192 <6.2.0', counter: 'perf', why: 'debian 6.1 >= 6.1.192 -> separate user->perf_mlock' },
  { distro: 'debian', range: '>=6.12.0 <6.12.115', counter: 'shared', why: 'debian 6.12 < 6.12.115 -> shared user->locked_vm' },
  { distro: 'debian', range: '>=6.12.115 <6.13.0', counter: 'perf', why: 'debian 6.12 >= 6.12.115 -> separate user->perf_mlock' },
  { distro: '*', range: '*', counter: 'shared', why: 'no perf_mlock split known for this kernel -> shared user->locked_vm' },
];

/** ">=5.6.0 <6.15.0" -> ">= 5.6 and < 6.15" */
export function rangeText(range: string): string {
  if (range === '*') return 'any version';
  return range
    .split(/\s+/)
    .map((c) => c.replace(/^([<>]=?)(\d+\.\d+)\.0$/, '$1 $2').replace(/^([<>]=?)(\d)/, '$1 $2'))
    .join(' and ');
}

/** The coerced MAJOR.MINOR.PATCH of a kernel version string, or null. */
export function coerceKernelVersion(version: string): string | null {
  return semver.coerce(version)?.version ?? null;
}

/** The distro the spec's kernel comes from ("debian" for debian-image, else the spec's, else "upstream"). */
export const specDistro = (spec: KernelSpec): string => (spec.kind === 'debian-image' ? 'debian' : (spec.distro ?? 'upstream'));

export function accountingFor(version: string): { row: AccountingRow; text: string } {
  const v = coerceKernelVersion(version);
  if (v === null) throw new RangeError(`not a kernel version: ${JSON.stringify(version)}`);
  const row = ACCOUNTING_TABLE.find((r) => semver.satisfies(v, r.range));
  if (!row) throw new Error(`ACCOUNTING_TABLE has no row for ${v} (the table must cover every version)`);
  return { row, text: `${rangeText(row.range)} -> ${row.accounting} (${row.why})` };
}

export function counterFor(version: string, distro: string): { row: CounterRow; text: string } {
  const v = coerceKernelVersion(version);
  if (v === null) throw new RangeError(`not a kernel version: ${JSON.stringify(version)}`);
  const row = COUNTER_TABLE.find((r) => (r.distro === '*' || r.distro === distro) && semver.satisfies(v, r.range));
  if (!row) throw new Error(`COUNTER_TABLE has no row for ${distro} ${v}`);
  return { row, text: row.why };
}

/**
 * The logic `spec` is expected to implement when its kernel is `version`
 * (the upstream version: the spec's, or the host's for kind host).
 * logic null = "unknown": classify only.
 */
export function resolveExpect(spec: KernelSpec, version: string): { logic: Logic | null; reason: string } {
  const e = spec.expect;
  if (e.mode === 'unknown') return { logic: null, reason: 'expect "unknown": classify only' };
  if (e.mode === 'label' && e.counter !== null) {
    const logic: Logic = { accounting: e.accounting, counter: e.counter };
    return { logic, reason: `explicit "${logicLabel(logic)}" in the spec` };
  }
  const v = coerceKernelVersion(version);
  if (v === null) {
    throw new ConfigError(
      spec.origin,
      `${spec.at}${spec.kind === 'host' ? 'expect' : 'version'}`,
      `cannot read a kernel version from ${JSON.stringify(version)} to derive the expected logic`,
      spec.kind === 'host'
        ? 'give an explicit "expect" such as "V3/shared", or "unknown" to classify only'
        : 'write "version" as MAJOR.MINOR.PATCH, or give an explicit "expect" label such as "V3/shared"',
    );
  }
  const distro = specDistro(spec);
  const counter = counterFor(v, distro);
  const shownVersion = v === version ? v : `${version} (${v})`;
  if (e.mode === 'label') {
    const logic: Logic = { accounting: e.accounting, counter: counter.row.counter };
    return { logic, reason: `${shownVersion}: explicit "${e.accounting}" in the spec; ${counter.text}` };
  }
  const acc = accountingFor(v);
  const logic: Logic = { accounting: acc.row.accounting, counter: counter.row.counter };
  return { logic, reason: `${shownVersion}: ${acc.text}; ${counter.text}` };
}
