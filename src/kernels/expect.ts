// Which accounting logic a kernel is expected to implement, from its version.
// Pure: no I/O. The rules are the rows of src/kernel-facts (ACCOUNTING_TABLE and
// the upstream changes, rendered in docs/kernel-history.md); this file only
// applies them to a kernel spec.

import { type AccountingRow, type CounterFact, KernelVersionError, type UpstreamChange, accountingRowFor, counterFactFor, formatKernelVersion, rangeText, readKernelVersion, UPSTREAM_CHANGES } from '../kernel-facts/index.ts';
import { type Expectation, expectationLabel } from '../model/accounting.ts';
import { ConfigError } from '../util/errors.ts';
import type { KernelSpec } from './spec.ts';

export { ACCOUNTING_TABLE, type AccountingRow, rangeText } from '../kernel-facts/index.ts';

/** A counter derivation: 'unknown' where nothing is known for the release's line (src/kernel-facts counterFactFor). */
export interface CounterRow {
  counter: CounterFact;
  why: string;
}

/**
 * The kernel's MAJOR.MINOR.PATCH ("-rcN" kept: "7.3.0-rc7"), or null when
 * `version` holds none. Throws KernelVersionError (a RangeError) for a version
 * beyond any real kernel. A thin name over src/kernel-facts readKernelVersion,
 * kept for the obtain/ callers.
 */
export function coerceKernelVersion(version: string): string | null {
  const v = readKernelVersion(version);
  return v === null ? null : formatKernelVersion(v);
}

/** readKernelVersion, with "no version" as a RangeError. */
const versionOf = (version: string) => {
  const v = readKernelVersion(version);
  if (v === null) throw new RangeError(`not a kernel version: ${JSON.stringify(version)}`);
  return v;
};

/** The distro the spec's kernel comes from ("debian" for debian-image, else the spec's, else "upstream"). */
export const specDistro = (spec: KernelSpec): string => (spec.kind === 'debian-image' ? 'debian' : (spec.distro ?? 'upstream'));

/**
 * The perf_mmap() accounting row for `version` (ACCOUNTING_TABLE in
 * src/kernel-facts) and its reason text. Throws RangeError on a string with
 * no version in it, KernelVersionError on one beyond any real kernel.
 */
export function accountingFor(version: string): { row: AccountingRow; text: string } {
  const row = accountingRowFor(versionOf(version));
  return { row, text: `${rangeText(row.range)} -> ${row.accounting} (${row.why})` };
}

/**
 * The per-user counter for an upstream kernel version (any distro: the split
 * is keyed on the upstream version line), derived from the facts table's
 * "perf: Track the perf mlock gift separately" row (`table`: tests pass one
 * with a made-up row). Throws RangeError on a string with no version in it,
 * KernelVersionError on one beyond any real kernel.
 */
export function counterFor(version: string, table: readonly UpstreamChange[] = UPSTREAM_CHANGES): { row: CounterRow; text: string } {
  const f = counterFactFor(versionOf(version), table);
  return { row: { counter: f.counter, why: f.why }, text: f.why };
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
  let v: string | null;
  try {
    v = coerceKernelVersion(version);
  } catch (err) {
    if (!(err instanceof KernelVersionError)) throw err;
    const field = `${spec.at}${spec.kind === 'host' ? 'expect' : 'version'}`;
    throw new ConfigError(spec.origin, field, err.message, spec.kind === 'host'
      ? 'give an explicit "expect" such as "V3/shared", or "unknown" to classify only'
      : 'write the kernel\'s real "version" as MAJOR.MINOR.PATCH (major at most 99), e.g. "6.1.190"');
  }
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
