// perf_mmap()'s accounting arithmetic by kernel version: which of the model's
// logics (V0..V4, src/model/accounting.ts) a release implements. A row list
// over semver ranges, audited row by row; docs/kernel-history.md renders it.
// Pure.

import semver from 'semver';
import { type KernelVersion, formatKernelVersion } from './version.ts';

/** The accountings a release can have (the model's Accounting, less V1: V1 is V1a/V1b without the AUX detail). */
export type ReleaseAccounting = 'V0' | 'V1a' | 'V1b' | 'V2' | 'V3' | 'V4';

export interface AccountingRow {
  /** semver range over the kernel's MAJOR.MINOR.PATCH (an -rc counts as its release) */
  range: string;
  accounting: ReleaseAccounting;
  /** the commit(s) and release(s) behind the row */
  why: string;
}

/**
 * perf_mmap() accounting by kernel version. Rows are disjoint and cover every
 * version (checked by the tests); the first match wins. Sources: the commits
 * named in each row (kernel-history.md's table), stable review mail for the
 * backports.
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

/** ">=5.6.0 <6.15.0" -> ">= 5.6 and < 6.15" */
export function rangeText(range: string): string {
  if (range === '*') return 'any version';
  return range
    .split(/\s+/)
    .map((c) => c.replace(/^([<>]=?)(\d+\.\d+)\.0$/, '$1 $2').replace(/^([<>]=?)(\d)/, '$1 $2'))
    .join(' and ');
}

/** The ACCOUNTING_TABLE row for `v` (an -rc is read as its release). Throws Error if none (the table must cover every version). */
export function accountingRowFor(v: KernelVersion): AccountingRow {
  const text = formatKernelVersion(v, false);
  const row = ACCOUNTING_TABLE.find((r) => semver.satisfies(text, r.range));
  if (!row) throw new Error(`ACCOUNTING_TABLE has no row for ${text} (the table must cover every version)`);
  return row;
}
