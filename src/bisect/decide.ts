// The bisection decisions, pure: given what has been measured so far, what
// to test next, or what the answer is. No I/O, no clocks; the drivers
// (src/bisect/list.ts, src/bisect/git.ts) feed results in and act on the
// decision, so a run stopped half-way resumes by feeding the saved marks back.
//
// Positions 0..n-1 are an ordered list (kernel releases, commits). Position 0
// is the reference: its measured behaviour defines "old". Every other tested
// position is marked `old` (behaves like position 0), `new` (differs) or
// `skip` (could not be judged: build failure, boot failure after retries).
// The search assumes one change (old...old new...new) and looks for the first
// `new` position.

export type Mark = 'old' | 'new' | 'skip';

export type Marks = Readonly<Record<number, Mark>>;

export interface ListQuestion {
  /** number of positions, >= 1 */
  n: number;
  marks: Marks;
  /**
   * 'open': the last position is unknown like the others, and "nothing
   * changed" is a possible answer (prebuilt-list bisect).
   * 'new': the last position is known to be new without testing it (a bad
   * end the caller already verified).
   */
  end: 'open' | 'new';
}

export type Decision =
  /** test position `index` next; lo/hi bound the search (hi = n: no new position seen yet) */
  | { kind: 'test'; index: number; lo: number; hi: number; warnings: string[] }
  /** `first` is the first new position; `lastOld` (= first - 1) was tested old */
  | { kind: 'found'; first: number; lastOld: number; warnings: string[] }
  /** no position differs from the reference */
  | { kind: 'none'; lastOld: number; warnings: string[] }
  /**
   * skips hide the answer: the first new position is one of `candidates`
   * (ascending; n among them = "maybe none differs"), all between lastOld and
   * the first tested new one
   */
  | { kind: 'ambiguous'; lastOld: number; candidates: number[]; warnings: string[] }
  /** the reference itself could not be judged: nothing to compare with */
  | { kind: 'no-reference'; warnings: string[] };

/** A mark on an index outside 0..n-1 or a `new` reference is a caller bug. */
function checkQuestion(q: ListQuestion): void {
  if (!Number.isInteger(q.n) || q.n < 1) throw new RangeError(`n must be a whole number >= 1, got ${q.n}`);
  for (const k of Object.keys(q.marks)) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i >= q.n) throw new RangeError(`mark on position ${k} outside 0..${q.n - 1}`);
    const m = q.marks[i];
    if (m !== 'old' && m !== 'new' && m !== 'skip') throw new RangeError(`position ${i}: unknown mark ${JSON.stringify(m)}`);
  }
  if (q.marks[0] === 'new') throw new RangeError('position 0 is the reference: it cannot be new');
}

/**
 * The next step. Picks the untested position closest to the middle of the
 * open interval (lo, hi), lower one on a tie, so a list of n positions with
 * an open end needs ceil(log2(n)) tests after the reference when nothing is
 * skipped: 6 Debian releases = the reference + at most 3 boots.
 */
export function decide(q: ListQuestion): Decision {
  checkQuestion(q);
  const { n, marks } = q;
  const warnings: string[] = [];
  if (marks[0] === undefined) return { kind: 'test', index: 0, lo: 0, hi: n, warnings };
  if (marks[0] === 'skip') return { kind: 'no-reference', warnings };

  // hi: the first position known new (the asserted end counts), n if none.
  let hi = n;
  for (let i = 1; i < n; i++) {
    if (marks[i] === 'new') { hi = i; break; }
  }
  if (q.end === 'new' && n > 1 && hi === n) hi = n - 1;
  // lo: the last old position before hi (0 at least: the reference).
  let lo = 0;
  for (let i = hi - 1; i > 0; i--) {
    if (marks[i] === 'old') { lo = i; break; }
  }
  for (let i = hi + 1; i < n; i++) {
    if (marks[i] === 'old') warnings.push(`position ${i} behaves like the reference although position ${hi} before it differs: the behaviour changed more than once; the answer is the first change`);
  }

  const untested: number[] = [];
  const skipped: number[] = [];
  for (let i = lo + 1; i < hi; i++) {
    if (marks[i] === undefined) untested.push(i);
    else if (marks[i] === 'skip') skipped.push(i);
  }
  if (untested.length === 0) {
    if (skipped.length === 0) {
      return hi === n ? { kind: 'none', lastOld: lo, warnings } : { kind: 'found', first: hi, lastOld: lo, warnings };
    }
    return { kind: 'ambiguous', lastOld: lo, candidates: [...skipped, hi], warnings };
  }
  const mid = lo + Math.floor((hi - lo) / 2);
  let best = untested[0]!;
  for (const i of untested) {
    if (Math.abs(i - mid) < Math.abs(best - mid)) best = i;
  }
  return { kind: 'test', index: best, lo, hi, warnings };
}

// ───────────────────────── one step: attempts → mark ─────────────────────────

/** What one attempt at judging a position produced. */
export type Attempt =
  /** measured and classified: `behaviour` is the comparable key */
  | { status: 'measured'; behaviour: string }
  /** the tree did not build: a property of the commit, never retried */
  | { status: 'build_failed'; reason: string }
  /** infrastructure: boot failure, timeout, stream lost; worth another try */
  | { status: 'infra'; verdict: string; reason: string }
  /** the kernel cannot run the scenario (panic, scenario SKIP): retrying will not help */
  | { status: 'unjudgeable'; verdict: string; reason: string };

export type StepDecision =
  | { kind: 'retry'; why: string }
  | { kind: 'mark'; mark: Mark; why: string };

/**
 * Turn the attempts at one position into a mark, or ask for another try.
 * `reference` is the behaviour key of the reference (null while judging the
 * reference itself: a measured reference is `old` by definition).
 * `maxAttempts` counts every attempt, the first included.
 */
export function judgeStep(attempts: readonly Attempt[], reference: string | null, maxAttempts: number): StepDecision {
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`maxAttempts must be >= 1, got ${maxAttempts}`);
  if (attempts.length === 0) return { kind: 'retry', why: 'not tried yet' };
  const last = attempts[attempts.length - 1]!;
  switch (last.status) {
    case 'measured':
      if (reference === null) return { kind: 'mark', mark: 'old', why: `reference behaviour: ${last.behaviour}` };
      return last.behaviour === reference
        ? { kind: 'mark', mark: 'old', why: `same as the reference: ${last.behaviour}` }
        : { kind: 'mark', mark: 'new', why: `${last.behaviour} (reference: ${reference})` };
    case 'build_failed':
      return { kind: 'mark', mark: 'skip', why: `build failed: ${last.reason}` };
    case 'unjudgeable':
      return { kind: 'mark', mark: 'skip', why: `${last.verdict}: ${last.reason}` };
    case 'infra': {
      const infra = attempts.filter((a) => a.status === 'infra').length;
      if (attempts.length < maxAttempts) return { kind: 'retry', why: `${last.verdict} on attempt ${attempts.length} of ${maxAttempts}: ${last.reason}` };
      return { kind: 'mark', mark: 'skip', why: `${infra} infrastructure failure(s) in ${attempts.length} attempt(s), last ${last.verdict}: ${last.reason}` };
    }
  }
}

/** git bisect run's exit codes for a mark: 0 good (old), 1 bad (new), 125 skip. */
export const GIT_EXIT: Readonly<Record<Mark, number>> = { old: 0, new: 1, skip: 125 };
