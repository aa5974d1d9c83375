// What each cell verdict means, in one table: every reader (the exit code,
// retries, bisect, the table, report.html, JUnit, TAP, KTAP, KCIDB) asks it
// here instead of keeping its own list. Pure; in diff/, the lowest folder
// that hands out verdicts, so every layer above can read it.

/** A cell's verdict (README "Reading the results"). */
export type CellVerdict =
  | 'MATCH' | 'MISMATCH' | 'SKIP' | 'ERROR' | 'TIMEOUT' | 'PANIC' | 'BOOT_FAIL' | 'BUILD_FAIL'
  /** measured, but the kernel spec declares no expected logic (expect: unknown): classified only */
  | 'UNCHECKED';

/**
 * pass: the kernel did what was expected (or was only measured); fail: it
 * behaved differently (a kernel bug or a wrong expectation); skip: not
 * applicable; infra: the harness could not judge (another attempt may).
 */
export type VerdictClass = 'pass' | 'fail' | 'skip' | 'infra';

/** KCIDB I/O v5 test status. */
export type KcidbStatus = 'PASS' | 'FAIL' | 'ERROR' | 'MISS' | 'SKIP' | 'DONE';

export interface VerdictFacts {
  class: VerdictClass;
  /** counted as failing by TAP, KTAP, JUnit and the failing count: a kernel fault or the harness's */
  failing: boolean;
  /** the cell carries a full measurement (ops, first EPERM, VmPin series) */
  measured: boolean;
  /** another boot of the same kernel may well give a verdict (the matrix's attempts, bisect's retries); BUILD_FAIL is the tree's own */
  retry: boolean;
  /** the JUnit element of a failing or skipped testcase (null: the testcase passes) */
  junit: 'failure' | 'error' | 'skipped' | null;
  kcidb: KcidbStatus;
}

/** The verdicts in the order the table, the schema and the help list them. */
export const VERDICTS = ['MATCH', 'MISMATCH', 'SKIP', 'ERROR', 'TIMEOUT', 'PANIC', 'BOOT_FAIL', 'BUILD_FAIL', 'UNCHECKED'] as const satisfies readonly CellVerdict[];

/**
 * The verdict table. KCIDB statuses follow kcidb-io v5's test status
 * descriptions (FAIL: the kernel failed; ERROR: the test itself failed; MISS:
 * not run for a build/boot problem; DONE: ran, no judgement).
 */
export const VERDICT_FACTS: Readonly<Record<CellVerdict, VerdictFacts>> = {
  MATCH: { class: 'pass', failing: false, measured: true, retry: false, junit: null, kcidb: 'PASS' },
  UNCHECKED: { class: 'pass', failing: false, measured: true, retry: false, junit: null, kcidb: 'DONE' },
  MISMATCH: { class: 'fail', failing: true, measured: true, retry: false, junit: 'failure', kcidb: 'FAIL' },
  PANIC: { class: 'fail', failing: true, measured: false, retry: false, junit: 'failure', kcidb: 'FAIL' },
  SKIP: { class: 'skip', failing: false, measured: false, retry: false, junit: 'skipped', kcidb: 'SKIP' },
  ERROR: { class: 'infra', failing: true, measured: false, retry: true, junit: 'error', kcidb: 'ERROR' },
  TIMEOUT: { class: 'infra', failing: true, measured: false, retry: true, junit: 'error', kcidb: 'ERROR' },
  BOOT_FAIL: { class: 'infra', failing: true, measured: false, retry: true, junit: 'error', kcidb: 'MISS' },
  BUILD_FAIL: { class: 'infra', failing: true, measured: false, retry: false, junit: 'error', kcidb: 'MISS' },
};

export const verdictClass = (v: CellVerdict): VerdictClass => VERDICT_FACTS[v].class;
export const isFailing = (v: CellVerdict): boolean => VERDICT_FACTS[v].failing;
export const isMeasured = (v: CellVerdict): boolean => VERDICT_FACTS[v].measured;
export const isRetried = (v: CellVerdict): boolean => VERDICT_FACTS[v].retry;
export const isVerdict = (v: unknown): v is CellVerdict => typeof v === 'string' && (VERDICTS as readonly string[]).includes(v);

/** The failing verdicts (MISMATCH, ERROR, TIMEOUT, PANIC, BOOT_FAIL, BUILD_FAIL), in table order. */
export const FAILING: readonly CellVerdict[] = VERDICTS.filter(isFailing);
