// The pure bisection decisions, on their own: every change point of every
// short list, with every set of skipped positions, plus the named corner
// cases and resuming from a saved state.

import t from 'tap';
import { type Attempt, decide, type Decision, GIT_EXIT, judgeStep, type Mark } from '../../src/bisect/decide.ts';
import { listMarks, newState, parseState } from '../../src/bisect/state.ts';

/** The world: positions >= first are new, those in `skips` cannot be judged. first = n: nothing changes. */
const oracle = (first: number, skips: ReadonlySet<number>) => (i: number): Mark =>
  skips.has(i) ? 'skip' : i >= first ? 'new' : 'old';

/** Drive decide() to the end; returns the final decision and the tested positions in order. */
function run(n: number, answer: (i: number) => Mark, end: 'open' | 'new' = 'open', start: Record<number, Mark> = {}): { d: Decision; tested: number[] } {
  const marks: Record<number, Mark> = { ...start };
  const tested: number[] = [];
  for (let guard = 0; guard <= n + 1; guard++) {
    const d = decide({ n, marks, end });
    if (d.kind !== 'test') return { d, tested };
    if (marks[d.index] !== undefined) throw new Error(`position ${d.index} asked twice`);
    tested.push(d.index);
    marks[d.index] = d.index === 0 ? (answer(0) === 'skip' ? 'skip' : 'old') : answer(d.index);
  }
  throw new Error('decide() did not terminate');
}

const log2ceil = (x: number): number => (x <= 1 ? 0 : Math.ceil(Math.log2(x)));

t.test('every change point, no skips: exact answer within 1 + ceil(log2 n) tests', async (t) => {
  let cases = 0;
  for (let n = 1; n <= 17; n++) {
    for (let first = 1; first <= n; first++) {
      const { d, tested } = run(n, oracle(first, new Set()));
      if (first === n) t.same(d.kind, 'none', `n=${n} nothing changes`);
      else {
        t.equal(d.kind, 'found', `n=${n} first=${first}`);
        if (d.kind === 'found') {
          t.equal(d.first, first);
          t.equal(d.lastOld, first - 1);
        }
      }
      t.equal(tested[0], 0, 'the reference is measured first');
      t.ok(tested.length <= 1 + log2ceil(n), `n=${n} first=${first}: ${tested.length} tests (${tested.join(',')})`);
      cases++;
    }
  }
  t.equal(cases, 153);
});

t.test('six Debian releases: at most four boots, and the 192-1 answer takes three', async (t) => {
  for (let first = 1; first <= 6; first++) {
    const { tested } = run(6, oracle(first, new Set()));
    t.ok(tested.length <= 4, `first=${first}: ${tested.join(',')}`);
  }
  const { d, tested } = run(6, oracle(4, new Set()));
  t.same(tested, [0, 3, 4]);
  t.match(d, { kind: 'found', first: 4, lastOld: 3 });
});

t.test('every skip set: answers are exact or honestly ambiguous, never wrong', async (t) => {
  let ambiguous = 0;
  let exact = 0;
  for (let n = 2; n <= 8; n++) {
    for (let first = 1; first <= n; first++) {
      for (let mask = 0; mask < 1 << (n - 1); mask++) {
        const skips = new Set<number>();
        for (let b = 0; b < n - 1; b++) if (mask & (1 << b)) skips.add(b + 1);
        const { d, tested } = run(n, oracle(first, skips));
        t.ok(new Set(tested).size === tested.length && tested.length <= n, 'each position at most once');
        const label = `n=${n} first=${first} skips=${[...skips].join(',')}`;
        // Exact exactly when both sides of the change could be judged.
        const judgeable = !skips.has(first - 1) && (first === n || !skips.has(first));
        if (judgeable !== (d.kind === 'found' || d.kind === 'none')) t.fail(`${label}: ${d.kind}`);
        if (d.kind === 'found') {
          exact++;
          if (d.first !== first) t.fail(`${label}: found ${d.first}`);
          if (skips.has(d.lastOld) || d.lastOld !== d.first - 1) t.fail(`${label}: lastOld ${d.lastOld}`);
        } else if (d.kind === 'none') {
          exact++;
          if (first !== n) t.fail(`${label}: none`);
        } else if (d.kind === 'ambiguous') {
          ambiguous++;
          if (!d.candidates.includes(first)) t.fail(`${label}: candidates ${d.candidates.join(',')} miss ${first}`);
          const inner = d.candidates.slice(0, -1);
          if (!inner.every((i) => skips.has(i))) t.fail(`${label}: a non-skipped candidate ${inner.join(',')}`);
          if (!inner.length) t.fail(`${label}: ambiguous without a skipped candidate`);
          // Everything strictly between lastOld and the last candidate was skipped.
          for (let i = d.lastOld + 1; i < d.candidates[d.candidates.length - 1]!; i++) if (!skips.has(i)) t.fail(`${label}: ${i} not skipped`);
        } else {
          t.fail(`${label}: ${d.kind}`);
        }
      }
    }
  }
  t.ok(ambiguous > 0 && exact > 0, `${exact} exact, ${ambiguous} ambiguous`);
});

t.test('skipped positions only matter when they sit next to the change', async (t) => {
  // 8 positions, change at 5, 2 skipped: the answer stays exact.
  const a = run(8, oracle(5, new Set([2])));
  t.match(a.d, { kind: 'found', first: 5, lastOld: 4 });
  // 4 skipped, right before the change: first is 4 or 5.
  const b = run(8, oracle(5, new Set([4])));
  t.match(b.d, { kind: 'ambiguous', lastOld: 3, candidates: [4, 5] });
  // The skipped neighbour is avoided when another position is as good.
  const c = decide({ n: 7, marks: { 0: 'old', 3: 'skip' }, end: 'open' });
  t.match(c, { kind: 'test', index: 2 });
  // Skipped last position and nothing changed before it: maybe none (candidate n).
  const e = run(4, oracle(4, new Set([3])));
  t.match(e.d, { kind: 'ambiguous', lastOld: 2, candidates: [3, 4] });
});

t.test('all old, all new, adjacent, single element', async (t) => {
  t.match(run(9, () => 'old').d, { kind: 'none', lastOld: 8 });
  const allNew = run(9, (i) => (i === 0 ? 'old' : 'new'));
  t.match(allNew.d, { kind: 'found', first: 1, lastOld: 0 });
  t.ok(allNew.tested.length <= 1 + log2ceil(9));
  t.match(run(2, oracle(1, new Set())), { d: { kind: 'found', first: 1 }, tested: [0, 1] });
  t.match(run(2, oracle(2, new Set())), { d: { kind: 'none' }, tested: [0, 1] });
  t.match(run(1, () => 'old'), { d: { kind: 'none', lastOld: 0 }, tested: [0] });
  t.match(run(5, () => 'skip'), { d: { kind: 'no-reference' }, tested: [0] });
});

t.test('a known-new end is never tested', async (t) => {
  for (let n = 2; n <= 12; n++) {
    for (let first = 1; first < n; first++) {
      const { d, tested } = run(n, oracle(first, new Set()), 'new');
      t.match(d, { kind: 'found', first }, `n=${n} first=${first}`);
      t.notOk(tested.includes(n - 1), 'bad end not re-tested');
      t.ok(tested.length <= 1 + log2ceil(n - 1));
    }
  }
  // Only good and bad: nothing to test beyond the reference.
  t.match(run(2, oracle(1, new Set()), 'new'), { d: { kind: 'found', first: 1 }, tested: [0] });
});

t.test('behaviour that changes back is reported, first change wins', async (t) => {
  const d = decide({ n: 6, marks: { 0: 'old', 2: 'new', 3: 'old', 1: 'old' }, end: 'open' });
  t.match(d, { kind: 'found', first: 2 });
  t.equal(d.warnings.length, 1);
  t.match(d.warnings[0], /changed more than once/);
});

t.test('bad questions are refused', async (t) => {
  t.throws(() => decide({ n: 0, marks: {}, end: 'open' }), RangeError);
  t.throws(() => decide({ n: 3, marks: { 3: 'old' }, end: 'open' }), RangeError);
  t.throws(() => decide({ n: 3, marks: { 0: 'new' }, end: 'open' }), RangeError);
  t.throws(() => decide({ n: 3, marks: { 1: 'maybe' as Mark }, end: 'open' }), RangeError);
});

t.test('resume: a run stopped after k tests and reloaded from its saved state asks the same questions', async (t) => {
  for (let n = 2; n <= 12; n++) {
    for (let first = 1; first <= n; first++) {
      const skips = new Set([Math.floor(n / 2)].filter((i) => i > 0 && i !== first));
      const whole = run(n, oracle(first, skips));
      for (let k = 1; k < whole.tested.length; k++) {
        // Save the first k answers the way the driver does: in a bisect state, by kernel id.
        const ids = Array.from({ length: n }, (_, i) => `k${i}`);
        const s = newState({ mode: 'list', scenario: 's', scenario_hash: 'h', positions: ids }, '2026-01-01T00:00:00Z');
        for (const i of whole.tested.slice(0, k)) s.steps[ids[i]!] = { label: ids[i]!, attempts: [], mark: oracle(first, skips)(i) };
        const reloaded = parseState(JSON.stringify(s), 'state.json');
        const rest = run(n, oracle(first, skips), 'open', listMarks(reloaded));
        t.same([...whole.tested.slice(0, k), ...rest.tested], whole.tested, `n=${n} first=${first} k=${k}`);
        t.same(rest.d, whole.d);
      }
    }
  }
});

t.test('state files that do not parse are refused with the fix', async (t) => {
  t.throws(() => parseState('{', 'x.json'), { name: 'ConfigError', message: /not valid JSON.*Fix: delete the state file/ });
  t.throws(() => parseState('{"schema":"lockstep/bisect-state@0"}', 'x.json'), { message: /unknown schema/ });
  const ok = newState({ mode: 'git', scenario: 's', scenario_hash: 'h', positions: ['a', 'b'] }, 'now');
  t.throws(() => parseState(JSON.stringify({ ...ok, steps: { a: { attempts: [], mark: 'good' } } }), 'x.json'), { message: /steps\.a\.mark: unknown mark/ });
  t.same(parseState(JSON.stringify(ok), 'x.json'), ok);
});

t.test('judgeStep: retries infrastructure failures, never build failures', async (t) => {
  const boot: Attempt = { status: 'infra', verdict: 'BOOT_FAIL', reason: 'no result in 60s' };
  const to: Attempt = { status: 'infra', verdict: 'TIMEOUT', reason: 'op 3' };
  const same: Attempt = { status: 'measured', behaviour: 'V3/shared' };
  const diff: Attempt = { status: 'measured', behaviour: 'V3/perf' };
  t.match(judgeStep([], 'V3/shared', 2), { kind: 'retry' });
  t.match(judgeStep([boot], 'V3/shared', 2), { kind: 'retry', why: /BOOT_FAIL on attempt 1 of 2/ });
  t.match(judgeStep([boot, to], 'V3/shared', 2), { kind: 'mark', mark: 'skip', why: /2 infrastructure failure\(s\) in 2 attempt\(s\), last TIMEOUT/ });
  t.match(judgeStep([boot], 'V3/shared', 1), { kind: 'mark', mark: 'skip' });
  t.match(judgeStep([boot, same], 'V3/shared', 2), { kind: 'mark', mark: 'old' });
  t.match(judgeStep([to, to, diff], 'V3/shared', 3), { kind: 'mark', mark: 'new', why: /V3\/perf \(reference: V3\/shared\)/ });
  t.match(judgeStep([{ status: 'build_failed', reason: 'ld: undefined reference' }], 'V3/shared', 5), { kind: 'mark', mark: 'skip', why: /build failed/ });
  t.match(judgeStep([{ status: 'unjudgeable', verdict: 'PANIC', reason: 'oops' }], 'V3/shared', 5), { kind: 'mark', mark: 'skip' });
  t.match(judgeStep([diff], null, 2), { kind: 'mark', mark: 'old', why: /reference behaviour/ });
  t.throws(() => judgeStep([], null, 0), RangeError);
  t.same(GIT_EXIT, { old: 0, new: 1, skip: 125 });
});

t.test('behaviour keys: the classifier\'s logic set, or the raw observables when no logic fits', async (t) => {
  const { builtinScenarios } = await import('../../src/scenario/load.ts');
  const { simulate, parseLogic } = await import('../../src/model/index.ts');
  const { syntheticMeasured } = await import('../../src/diff/discriminate.ts');
  const { behaviourOf, attemptOfCell } = await import('../../src/bisect/behaviour.ts');
  const s = builtinScenarios().map((l) => l.compiled).find((x) => x.id === 'shared-counter')!;
  const as = (label: string) => syntheticMeasured(s, simulate(s, parseLogic(label)));
  const shared = behaviourOf(s, as('V3/shared'));
  const perf = behaviourOf(s, as('V3/perf'));
  t.ok(shared.fits.includes('V3/shared') && !shared.fits.includes('V3/perf'), shared.key);
  t.ok(perf.fits.includes('V3/perf') && !perf.fits.includes('V3/shared'), perf.key);
  t.not(shared.key, perf.key);
  t.equal(behaviourOf(s, as('V1/shared')).key, shared.key, 'one class: shared-counter cannot tell V1 from V3');
  // A measurement no logic explains: keyed by what was measured, so equal measurements still compare equal.
  const odd = as('V3/shared').map((m) => (m.op === 'probe' ? { ...m, headroom: (m.headroom ?? 0) + 7 } : m));
  const b = behaviourOf(s, odd);
  t.same(b.fits, []);
  t.match(b.key, /^unexplained /);
  t.equal(behaviourOf(s, odd.map((m) => ({ ...m }))).key, b.key);
  t.not(b.key, shared.key);
  // Cells to attempts: what is retried, what is the tree's fault, what cannot be judged.
  const cell = (verdict: string, measured = as('V3/shared')) => ({ verdict, reason: 'r', measured }) as unknown as Parameters<typeof attemptOfCell>[1];
  t.match(attemptOfCell(s, cell('MATCH')).attempt, { status: 'measured', behaviour: shared.key });
  t.match(attemptOfCell(s, cell('UNCHECKED')).attempt, { status: 'measured', behaviour: shared.key });
  for (const v of ['TIMEOUT', 'BOOT_FAIL', 'ERROR']) t.match(attemptOfCell(s, cell(v, [])).attempt, { status: 'infra', verdict: v });
  t.match(attemptOfCell(s, cell('BUILD_FAIL', [])).attempt, { status: 'build_failed' });
  for (const v of ['PANIC', 'SKIP']) t.match(attemptOfCell(s, cell(v, [])).attempt, { status: 'unjudgeable', verdict: v });
});
