// The attempts policy (src/matrix/attempts.ts) against a fake runtime: which
// cells boot again, what each attempt leaves in the cell, flaky marking, the
// order of the cells, and an interrupt stopping further attempts. Pure: the
// real boots' retries are test/portable.test.ts's (LOCKSTEP_TEST_FAIL_FIRST_BOOTS).

import t from 'tap';
import { runAttempts, type RunOnce } from '../../src/matrix/attempts.ts';
import type { CellResult, CellVerdict } from '../../src/results/schema.ts';
import type { GroupOutcome } from '../../src/runner/runtime.ts';
import type { CompiledScenario } from '../../src/scenario/ops.ts';

const scen = (id: string): CompiledScenario => ({ id, cpus: 2, ops: [] } as unknown as CompiledScenario);
const S = ['a', 'b', 'c'].map(scen);
const outcome = (n: number): GroupOutcome => ({ status: 'ok', detail: `boot ${n}`, faults: [], consoleTail: '', consoleLog: null, resultsLog: null, accel: 'tcg', accelWhy: 'fake', bootMs: n, wallMs: n, argv: [], stream: { scenarios: new Map(), order: [], done: true, garbage: [], garbageCount: 0 } });

/** A fake runtime: scenario x attempt -> verdict, from `plan` (default MATCH); it records what each boot ran. */
function fake(plan: Record<string, CellVerdict[]>): { run: RunOnce; boots: string[][] } {
  const boots: string[][] = [];
  const run: RunOnce = async (scenarios, attempt) => {
    boots.push(scenarios.map((s) => s.id));
    // the runtime answers in its own order: the policy must sort
    const cells = [...scenarios].reverse().map((s): CellResult => ({ kernel: 'k', scenario: s.id, verdict: plan[s.id]?.[attempt - 1] ?? 'MATCH', reason: `attempt ${attempt}`, duration_ms: attempt } as CellResult));
    return { cells, outcome: outcome(attempt) };
  };
  return { run, boots };
}

t.test('only infrastructure failures boot again, alone, up to the limit', async (t) => {
  const f = fake({ a: ['BOOT_FAIL', 'MATCH'], b: ['MISMATCH'], c: ['TIMEOUT', 'ERROR', 'TIMEOUT'] });
  const retries: string[] = [];
  const { cells, last } = await runAttempts(S, f.run, { maxAttempts: 3, aborted: () => false, onRetry: (n, of, cs) => retries.push(`${n}/${of}:${cs.map((c) => c.scenario).sort().join(',')}`) });
  t.same(f.boots, [['a', 'b', 'c'], ['a', 'c'], ['c']], 'a MISMATCH is a verdict, never retried; BOOT_FAIL, TIMEOUT, ERROR are');
  t.same(retries, ['1/3:a,c', '2/3:c']);
  t.same(cells.map((c) => [c.scenario, c.verdict]), [['a', 'MATCH'], ['b', 'MISMATCH'], ['c', 'TIMEOUT']], 'one cell per scenario, in the scenarios\' order');
  t.equal(last.detail, 'boot 3', 'the last boot\'s outcome');
  const a = cells[0]!;
  t.equal(a.flaky, true, 'passed only on a retry: flaky');
  t.same(a.attempts?.map((x) => [x.attempt, x.verdict, x.reason]), [[1, 'BOOT_FAIL', 'attempt 1'], [2, 'MATCH', 'attempt 2']], 'every attempt kept');
  t.equal(cells[1]!.attempts, undefined, 'one boot: no attempts list');
  t.equal(cells[2]!.flaky, undefined, 'still infrastructure after the last attempt: not flaky');
  t.equal(cells[2]!.attempts?.length, 3);
});

t.test('one attempt (the default) and an interrupt boot no more', async (t) => {
  const once = fake({ a: ['BOOT_FAIL'] });
  const r1 = await runAttempts(S, once.run, { maxAttempts: 0, aborted: () => false });
  t.equal(once.boots.length, 1, 'maxAttempts 0 is taken as 1');
  t.equal(r1.cells[0]!.verdict, 'BOOT_FAIL');
  const stopped = fake({ a: ['ERROR', 'MATCH'] });
  const r2 = await runAttempts(S, stopped.run, { maxAttempts: 5, aborted: () => true });
  t.equal(stopped.boots.length, 1, 'interrupted: no further attempt');
  t.equal(r2.cells[0]!.verdict, 'ERROR');
});

t.test('BUILD_FAIL is the tree\'s: not retried', async (t) => {
  const f = fake({ b: ['BUILD_FAIL', 'MATCH'] });
  const { cells } = await runAttempts(S, f.run, { maxAttempts: 2, aborted: () => false });
  t.equal(f.boots.length, 1);
  t.equal(cells[1]!.verdict, 'BUILD_FAIL');
});
