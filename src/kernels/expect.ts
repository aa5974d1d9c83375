// Which accounting logic a kernel is expected to implement, from its version.
// Pure: no I/O. The two tables below ARE the rules (shared/kernel-history.md);
// keep them readable so they can be audited row by row.

import semver from 'semver';
import { type Accounting, type Counter, type Expectation, expectationLabel } from '../model/accounting.ts';
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
  { range: '>=5.3.9 <5.4.0', accounting: 'V1a', why: 'd44248a41337 and 5e6c3c7b1ec2 (AUX unmap) backported to 5.3.9' },
  { range: '>=5.4.0 <5.4.7', accounting: 'V1a', why: 'd44248a41337 and 5e6c3c7b1ec2 (AUX unmap, v5.4-rc5), v5.4' },
  { range: '>=5.4.7 <5.4.19', accounting: 'V1b', why: '36b3db03b474 (AUX unmap) backported to 5.4.7' },
  { range: '>=5.4.19 <5.5.0', accounting: 'V3', why: '003461559ef7 backported to 5.4.19' },
  { range: '>=5.5.0 <5.5.3', accounting: 'V2', why: 'c4b75479741c, v5.5' },
  { range: '>=5.5.3 <5.6.0', accounting: 'V3', why: '003461559ef7 backported to 5.5.y, taken as 5.5.3' },
  { range: '>=5.6.0 <6.15.0', accounting: 'V3', why: '003461559ef7, v5.6-rc1' },
  { range: '>=6.15.0', accounting: 'V4', why: 'v6.15 perf_mmap() rework, 0c8a4e4139ad series: re-mmap leaks U' },
];

export interface CounterRow {
  /** semver range over the coerced upstream kernel version (MAJOR.MINOR.PATCH) */
  range: string;
  /** 'unknown': nothing is known for these releases; the expectation carries both counters */
  counter: Counter | 'unknown';
  why: string;
}

const GIFT = '"perf: Track the perf mlock gift separately"';

/**
 * Which per-user counter perf charges, keyed on the upstream version line
 * (the split is an upstream stable change, not a distro's): the first match
 * wins; the last row catches everything. Sources: Debian's 6.1.192 changelog
 * lists the change inside the upstream ChangeLog-6.1.191 list (Debian skipped
 * 6.1.191), its 6.12 changelog inside ChangeLog-6.12.115; Debian 6.1.192's
 * kernel/events/core.c charges user->perf_mlock. Measured: sid 7.2.13 has it
 * (V4/perf), experimental 7.3-rc7 does not (V4/shared), the host's 6.18.44
 * does not. Lines still maintained when 6.1.191 came out, where no release is
 * known either way, are 'unknown' from the first release that could carry it
 * (6.1.148, Aug 2025, predates the change: 6.1.190 still lacked it).
 */
export const COUNTER_TABLE: readonly CounterRow[] = [
  { range: '>=5.10.241 <5.11.0', counter: 'unknown', why: `5.10.y after 5.10.240: not known whether ${GIFT} reached this line` },
  { range: '>=5.15.190 <5.16.0', counter: 'unknown', why: `5.15.y after 5.15.189: not known whether ${GIFT} reached this line` },
  { range: '>=6.1.191 <6.2.0', counter: 'perf', why: `6.1.y >= 6.1.191: ${GIFT} (stable 6.1.191) -> separate user->perf_mlock` },
  { range: '>=6.6.1 <6.7.0', counter: 'unknown', why: `6.6.y: not known whether ${GIFT} reached this line` },
  { range: '>=6.12.115 <6.13.0', counter: 'perf', why: `6.12.y >= 6.12.115: ${GIFT} (stable 6.12.115) -> separate user->perf_mlock` },
  { range: '>=6.18.45 <6.19.0', counter: 'unknown', why: `6.18.y after 6.18.44 (measured shared): not known whether ${GIFT} reached it` },
  { range: '>=7.0.1 <7.1.0', counter: 'unknown', why: `7.0.y: not known whether ${GIFT} reached this line` },
  { range: '>=7.1.1 <7.2.0', counter: 'unknown', why: `7.1.y: not known whether ${GIFT} reached this line` },
  { range: '>=7.2.1 <7.2.13', counter: 'unknown', why: `7.2.y before 7.2.13: not known where ${GIFT} came in (7.2.13 measured perf)` },
  { range: '>=7.2.13 <7.3.0', counter: 'perf', why: `7.2.y >= 7.2.13: ${GIFT} (measured on Debian sid 7.2.13) -> separate user->perf_mlock` },
  { range: '>=7.3.1 <7.4.0', counter: 'unknown', why: `7.3.y: not known whether ${GIFT} reached this line` },
  { range: '>=7.4.0', counter: 'unknown', why: `newer than 7.3: not known whether mainline took ${GIFT}` },
  { range: '*', counter: 'shared', why: `${GIFT} not in this release (mainline up to 7.3-rc7, stable before the change) -> shared user->locked_vm` },
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

/**
 * The counter row for an upstream kernel version (any distro: the split is
 * keyed on the upstream version line). Throws RangeError on a string with no
 * version in it.
 */
export function counterFor(version: string): { row: CounterRow; text: string } {
  const v = coerceKernelVersion(version);
  if (v === null) throw new RangeError(`not a kernel version: ${JSON.stringify(version)}`);
  const row = COUNTER_TABLE.find((r) => semver.satisfies(v, r.range, { includePrerelease: true }));
  if (!row) throw new Error(`COUNTER_TABLE has no row for ${v}`);
  return { row, text: row.why };
}

/**
 * The logic `spec` is expected to implement when its kernel is `version`
 * (the upstream version: the spec's, or the host's for kind host).
 * logic null = "unknown": classify only. A logic whose counter is 'unknown'
 * (COUNTER_TABLE) carries both counters: see src/diff diffExpected. Throws
 * ConfigError when the version cannot be read and the spec gives no full label.
 */
export function resolveExpect(spec: KernelSpec, version: string): { logic: Expectation | null; reason: string } {
  const e = spec.expect;
  if (e.mode === 'unknown') return { logic: null, reason: 'expect "unknown": classify only' };
  if (e.mode === 'label' && e.counter !== null) {
    const logic: Expectation = { accounting: e.accounting, counter: e.counter };
    return { logic, reason: `explicit "${expectationLabel(logic)}" in the spec` };
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
  const counter = counterFor(v);
  const shownVersion = v === version ? v : `${version} (${v})`;
  if (e.mode === 'label') {
    const logic: Expectation = { accounting: e.accounting, counter: counter.row.counter };
    return { logic, reason: `${shownVersion}: explicit "${e.accounting}" in the spec; ${counter.text}` };
  }
  const acc = accountingFor(v);
  const logic: Expectation = { accounting: acc.row.accounting, counter: counter.row.counter };
  return { logic, reason: `${shownVersion}: ${acc.text}; ${counter.text}` };
}
