// Portable scenarios ("cpus": "any", issue 15 item 1): the count is open,
// the allowance and the prediction follow the CPUs a run really had. Pure
// tests of the schema, the compiler, the planner and the model's prediction,
// then one real Debian 6.1 kernel booted at 1, 2, 4 and 8 vCPUs in ONE run,
// every portable scenario asserted MATCH at every count.
// Tier: unit (its subtests moved unchanged from test/cpus-any.test.ts; the rest is in test/integration/cpus-any.test.ts).

import t from 'tap';
import { isVmRuntime, planGroups } from '../../src/matrix/plan.ts';
import { simulate } from '../../src/model/index.ts';
import { builtinScenarios, compileAtCpus, compileScenario, DEFAULT_ANY_CPUS, scenarioHash, scenarioNeeds } from '../../src/scenario/load.ts';
import { skipReasons } from '../../src/scenario/skip.ts';
import { userLockLimit } from '../../src/scenario/ops.ts';
import { ConfigError } from '../../src/util/errors.ts';

const loaded = builtinScenarios();
const portable = loaded.filter((l) => l.source.cpus === 'any').map((l) => l.compiled);
const pinned = loaded.filter((l) => l.source.cpus !== 'any').map((l) => l.compiled);
const get = (id: string) => loaded.find((l) => l.id === id)!.compiled;

t.test('schema: "any" compiles at the default count and says the count is open', async (t) => {
  t.ok(portable.length >= 10, `${portable.length} built-in scenarios are portable`);
  for (const s of portable) {
    t.equal(s.cpus, DEFAULT_ANY_CPUS, `${s.id}: compiled for ${DEFAULT_ANY_CPUS} CPUs unless a run says otherwise`);
    t.equal(s.cpus_any, true, `${s.id}: the compiled scenario says the count is open`);
  }
  for (const id of ['incident', 'cpu-offline']) t.notOk(get(id).cpus_any, `${id} keeps its pinned count (${get(id).cpus})`);
  const bad = (cpus: unknown) => () => compileScenario({ id: 'x', description: 'x', cpus, ops: [{ op: 'probe' }] }, 'x.json');
  t.throws(bad('some'), ConfigError, 'a string other than "any" is bad input');
  t.throws(bad(0), ConfigError);
  t.match((() => { try { bad('all')(); } catch (e) { return (e as Error).message; } return ''; })(), /x\.json.*cpus.*"any"/);
  // an "any" scenario must run on 1 CPU: naming CPU 1 is refused at load time
  t.throws(() => compileScenario({ id: 'y', description: 'y', cpus: 'any', ops: [{ op: 'map', buf: 'a', cpu: 1, data_pages: 1 }] }, 'y.json'), /y\.json.*CPU 1 does not exist.*"any"/);
});

t.test('compileAtCpus: L-relative ops and the prediction follow the count', async (t) => {
  const sc = get('sysctl-lowered');
  for (const n of [1, 2, 4, 8]) {
    const s = compileAtCpus(sc, n);
    t.equal(s.cpus, n);
    t.equal(s.cpus_any, true);
    t.equal(compileAtCpus(s, DEFAULT_ANY_CPUS).cpus, DEFAULT_ANY_CPUS, 'a recompiled scenario recompiles again');
  }
  const base = get('baseline');
  const L = (n: number) => userLockLimit(base.mlock_kb, n);
  for (const n of [1, 4, 8]) {
    const e = simulate(compileAtCpus(base, n), { accounting: 'V3', counter: 'shared' });
    const probe = e.find((x) => x.headroom !== undefined);
    if (probe) t.equal(probe.headroom, L(n), `baseline's first probe headroom is L = ${L(n)} pages on ${n} CPUs`);
  }
  t.equal(compileAtCpus(get('incident'), 4), get('incident'), 'a pinned scenario is returned as is');
  t.not(scenarioHash(compileAtCpus(base, 4)), scenarioHash(base), 'each count has its own hash');
  // a def read back from results (no source at hand) cannot be recompiled
  t.throws(() => compileAtCpus({ ...base }, 4), ConfigError);
});

t.test('needs: an open count fits any machine', async (t) => {
  const offer = { onlineCpus: 7, memlockHardKb: null, cpuHotplug: false, faultInjection: false };
  t.strictSame(skipReasons(scenarioNeeds(get('baseline')), offer), []);
  t.match(skipReasons(scenarioNeeds(get('incident')), offer).join(';'), /needs 36 online CPUs, the machine has 7/);
});

t.test('planGroups: host rows at the host count, VM groups at --cpus counts, never SKIP for the count', async (t) => {
  const kernels = [{ id: 'vm', runtime: 'qemu' as const }, { id: 'host', runtime: 'host' as const }, { id: 'ct', runtime: 'container' as const }];
  const all = [...portable, ...pinned];
  const g = planGroups(kernels, all, { hostCpus: 5, anyCpus: [1, 2, 4, 8] });
  const keys = g.map((x) => x.key);
  for (const n of [1, 2, 4, 8]) t.ok(keys.includes(`vm@${n}cpu`), `a VM boot at ${n} vCPUs`);
  for (const x of g) for (const s of x.scenarios) t.equal(s.cpus, x.cpus, `${x.key}: ${s.id} compiled for the group's count`);
  const host5 = g.find((x) => x.key === 'host@5cpu')!;
  t.strictSame(host5.scenarios.map((s) => s.id).sort(), portable.map((s) => s.id).sort(), 'every portable scenario runs on a 5-CPU host');
  t.ok(g.find((x) => x.key === 'ct@5cpu'), 'containers too');
  for (const n of [1, 2, 4, 8]) {
    t.equal(g.find((x) => x.key === `vm@${n}cpu`)!.scenarios.filter((s) => s.cpus_any).length, portable.length, `all portable scenarios in the ${n}-vCPU boot`);
  }
  // each scenario id appears exactly once per (kernel, count)
  for (const x of g) t.equal(new Set(x.scenarios.map((s) => s.id)).size, x.scenarios.length);
  // without options: VM at the default count, pinned groups unchanged
  const d = planGroups([{ id: 'vm', runtime: 'qemu' }], all);
  t.strictSame(d.map((x) => x.cpus), [...new Set([36, 4, DEFAULT_ANY_CPUS, ...pinned.map((s) => s.cpus)])].sort((a, b) => b - a));
});

t.test('isVmRuntime: VM groups take boot slots (runMatrix); host and container groups do not', async (t) => {
  const kernels = [{ id: 'vm', runtime: 'qemu' as const }, { id: 'vng', runtime: 'virtme' as const }, { id: 'host', runtime: 'host' as const }, { id: 'ct', runtime: 'container' as const }];
  const g = planGroups(kernels, [...portable, ...pinned], { hostCpus: 3 });
  for (const x of g) t.equal(isVmRuntime(x.runtime), !(x.kernel === 'host' || x.kernel === 'ct'), x.key);
  t.ok(g.some((x) => !isVmRuntime(x.runtime)) && g.some((x) => isVmRuntime(x.runtime)), 'both kinds planned');
});
