// The bisect drivers (judgePosition, bisectList) against a fake BisectEnv:
// the retry ladder, saved marks, resume and the list bisect's answer, with
// no kernel booted. The real environment (matrixEnv: one matrix cell per
// attempt) keeps its own real boots in test/integration/bisect-git.test.ts
// and bisect-list.test.ts; this is the logic around it.

import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BisectEnv, judgePosition, type Target } from '../../src/bisect/env.ts';
import { bisectList } from '../../src/bisect/list.ts';
import { type AttemptRecord, newState, parseState } from '../../src/bisect/state.ts';
import { parseSpec, type KernelSpec } from '../../src/kernels/spec.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';

const scenario = builtinScenarios().map((l) => l.compiled).find((s) => s.id === 'shared-counter')!;

/** A measured attempt whose behaviour key is `key` (what judgeStep compares with the reference). */
const measured = (key: string, outDir: string): AttemptRecord => ({
  attempt: { status: 'measured', behaviour: key }, verdict: 'UNCHECKED', started_at: '2026-01-01T00:00:00.000Z', wall_ms: 1, out_dir: outDir,
  behaviour: { key, fits: key.split(' '), first_eperm: null, pinned: [], headrooms: [] },
});
const infra = (outDir: string): AttemptRecord => ({
  attempt: { status: 'infra', verdict: 'TIMEOUT', reason: 'boot timed out' }, verdict: 'TIMEOUT', started_at: '2026-01-01T00:00:00.000Z', wall_ms: 1, out_dir: outDir,
});

/**
 * A fake environment: `answer(id, n)` gives attempt n (1-based) at kernel `id`.
 * Records every call (id and the directory it was given).
 */
function fakeEnv(answer: (id: string, n: number, outDir: string) => AttemptRecord): BisectEnv & { calls: { id: string; outDir: string }[] } {
  const calls: { id: string; outDir: string }[] = [];
  return {
    calls,
    async attempt(target: Target, outDir: string) {
      const id = target.kind === 'spec' ? target.spec.id : target.commit;
      calls.push({ id, outDir });
      return answer(id, calls.filter((c) => c.id === id).length, outDir);
    },
  };
}

const spec = (id: string): KernelSpec => parseSpec({ id, kind: 'host', expect: 'unknown' }, 'fake');
const target = (id: string): Target => ({ kind: 'spec', spec: spec(id) });
const OLD = 'V1/shared V3/shared';
const NEW = 'V4/shared';

t.test('judgePosition: an infrastructure failure is retried and the retry decides; state saved after every attempt', async (t) => {
  const env = fakeEnv((_id, n, d) => (n === 1 ? infra(d) : measured(OLD, d)));
  const state = newState({ mode: 'list', scenario: scenario.id, scenario_hash: 'x', positions: ['k'] }, 'now');
  let saves = 0;
  const r = await judgePosition({ env, state, key: 'k', label: 'k', target: target('k'), isReference: true, maxAttempts: 2, outDir: '/o', save: async () => { saves++; }, log: () => {} });
  t.equal(r?.mark, 'old');
  t.same(env.calls.map((c) => c.outDir), ['/o/attempt-1', '/o/attempt-2'], 'one directory per attempt');
  t.same(state.steps.k!.attempts.map((a) => a.attempt.status), ['infra', 'measured']);
  t.equal(state.reference?.key, OLD, 'the reference is the measured attempt\'s behaviour');
  t.equal(saves, 3, 'saved after each attempt and after the mark');

  // With one attempt allowed, the same failure is a skip and no second boot is made.
  const env1 = fakeEnv((_id, _n, d) => infra(d));
  const s1 = newState({ mode: 'list', scenario: scenario.id, scenario_hash: 'x', positions: ['k'] }, 'now');
  const r1 = await judgePosition({ env: env1, state: s1, key: 'k', label: 'k', target: target('k'), isReference: true, maxAttempts: 1, outDir: '/o', save: async () => {}, log: () => {} });
  t.match(r1, { mark: 'skip', why: /1 infrastructure failure/ });
  t.equal(env1.calls.length, 1);
});

t.test('judgePosition: a build failure is never retried; a saved mark is reused without an attempt', async (t) => {
  const build: AttemptRecord = { attempt: { status: 'build_failed', reason: 'gcc: error' }, verdict: 'BUILD_FAIL', started_at: 'x', wall_ms: 1, out_dir: '/o' };
  const env = fakeEnv(() => build);
  const state = newState({ mode: 'list', scenario: scenario.id, scenario_hash: 'x', positions: ['ref', 'k'] }, 'now');
  state.reference = measured(OLD, '/r').behaviour!;
  const r = await judgePosition({ env, state, key: 'k', label: 'k', target: target('k'), isReference: false, maxAttempts: 3, outDir: '/o', save: async () => {}, log: () => {} });
  t.equal(r?.mark, 'skip');
  t.equal(env.calls.length, 1, 'one build attempt only');
  const again = await judgePosition({ env, state, key: 'k', label: 'k', target: target('k'), isReference: false, maxAttempts: 3, outDir: '/o', save: async () => {}, log: () => {} });
  t.equal(again?.mark, 'skip');
  t.equal(env.calls.length, 1, 'the saved mark is reused');
  const fresh = newState({ mode: 'list', scenario: scenario.id, scenario_hash: 'x', positions: ['ref', 'k'] }, 'now');
  await t.rejects(judgePosition({ env, state: fresh, key: 'k', label: 'k', target: target('k'), isReference: false, maxAttempts: 3, outDir: '/o', save: async () => {}, log: () => {} }),
    /before the reference was measured/);
});

t.test('bisectList over a fake environment: every change point of 7 kernels found, flaky boots retried, each kernel judged once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-bisect-fake-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ids = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
  for (let first = 1; first <= ids.length; first++) {
    // every kernel's first boot times out; the second measures
    const env = fakeEnv((id, n, d) => (n === 1 ? infra(d) : measured(ids.indexOf(id) >= first ? NEW : OLD, d)));
    const statePath = join(dir, `state-${first}.json`);
    const r = await bisectList({ kernels: ids.map(spec), scenario, env, resume: null, statePath, outDir: join(dir, `out-${first}`), maxAttempts: 2, log: () => {} });
    if (first === ids.length) t.match(r.decision, { kind: 'none', lastOld: ids.length - 1 }, 'nothing changes: none');
    else t.match(r.decision, { kind: 'found', first, lastOld: first - 1 }, `change at ${ids[first]}`);
    const booted = [...new Set(env.calls.map((c) => c.id))];
    t.equal(env.calls.length, booted.length * 2, 'two attempts per judged kernel, never a third');
    t.same(r.judgedNow, booted, 'judgedNow lists what this run booted');
    t.ok(booted.length <= 1 + Math.ceil(Math.log2(ids.length)), `${booted.length} kernels judged for ${ids.length} positions`);
    const saved = parseState(await readFile(statePath, 'utf8'), statePath);
    t.same(saved.result, r.decision, 'the answer is in the saved state');
  }
});

t.test('bisectList resumed from its saved state asks nothing it already knows', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-bisect-fake-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const statePath = join(dir, 'state.json');
  const ac = new AbortController();
  // the first run is interrupted during its second kernel's boot
  const first = fakeEnv((id, _n, d) => {
    if (id !== 'a') ac.abort();
    return id === 'a' ? measured(OLD, d) : infra(d);
  });
  const r1 = await bisectList({ kernels: ids.map(spec), scenario, env: first, resume: null, statePath, outDir: join(dir, 'o'), maxAttempts: 2, log: () => {}, signal: ac.signal });
  t.equal(r1.decision.kind, 'test', 'interrupted before an answer');
  t.same(r1.judgedNow, ['a']);
  const resumed = parseState(await readFile(statePath, 'utf8'), statePath);
  const second = fakeEnv((id, _n, d) => measured(ids.indexOf(id) >= 3 ? NEW : OLD, d));
  const r2 = await bisectList({ kernels: ids.map(spec), scenario, env: second, resume: resumed, statePath, outDir: join(dir, 'o'), maxAttempts: 2, log: () => {} });
  t.match(r2.decision, { kind: 'found', first: 3 });
  t.notOk(second.calls.some((c) => c.id === 'a'), 'the reference is not booted again');
});
