// Scenario depth: the new ops (ballast via bpf, worker exit) and scenarios
// (bpf-ballast, exit-returns, buffer-sizes) from the file format through the
// simulator to real measurements on the host kernel.
// Tier: unit (its subtests moved unchanged from test/depth.test.ts; the rest is in test/smoke/depth.test.ts).

import t, { type Test } from 'tap';
import { ALL_LOGICS, logicLabel, simulate } from '../../src/model/index.ts';
import { builtinScenarios, compileScenario } from '../../src/scenario/load.ts';
import { toScript, userLockLimit } from '../../src/scenario/ops.ts';
import { ConfigError } from '../../src/util/errors.ts';

const byId = new Map(builtinScenarios().map((l) => [l.id, l.compiled]));
const get = (id: string) => byId.get(id)!;
const base = (ops: unknown[]): Record<string, unknown> => ({ id: 't', description: 'a test', cpus: 2, ops });

const configError = (t: Test, f: () => unknown, field: string, re: RegExp, what: string): void => {
  try {
    f();
    t.fail(`${what}: expected a ConfigError`);
  } catch (e) {
    t.ok(e instanceof ConfigError, `${what}: a ConfigError`);
    t.equal((e as ConfigError).field, field, `${what}: names ${field}`);
    t.match((e as ConfigError).message, re, `${what}: says why`);
  }
};

t.test('the file format: bpf ballast and exit', (t) => {
  const s = compileScenario(base([{ op: 'ballast', via: 'bpf', pages: 'L-8' }, { op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'exit' }, { op: 'map', buf: 'a', cpu: 1, data_pages: 2 }]), 'f.json');
  t.strictSame(s.ops, [
    { op: 'ballast', via: 'bpf', pages: 250 },
    { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
    { op: 'exit' },
    { op: 'map', buf: 'a', cpu: 1, data_pages: 2 },
  ], '"L-8" is 250 pages at 2 CPUs, and the exit frees the name "a"');
  t.match(toScript(s, 4242), /\nballast bpf 250\nmap a 0 2\nexit\nmap a 1 2\nend\n$/, 'protocol lines');

  configError(t, () => compileScenario(base([{ op: 'exit' }]), 'f.json'), 'ops[0].op', /per-user counter would die/, 'exit with no helper alive');
  configError(t, () => compileScenario(base([{ op: 'ballast', via: 'bpf', buffers: [1] }]), 'f.json'), 'ops[0].buffers', /takes "pages"/, 'bpf ballast with buffers');
  configError(t, () => compileScenario(base([{ op: 'ballast', via: 'bpf' }]), 'f.json'), 'ops[0].pages', /missing "pages"/, 'bpf ballast without pages');
  configError(t, () => compileScenario(base([{ op: 'exit', now: true }]), 'f.json'), 'ops[0].now', /unknown field/, 'exit takes no fields');
  configError(
    t,
    () => compileScenario(base([{ op: 'ballast', via: 'perf', buffers: [] }, { op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'exit' }, { op: 'unmap', buf: 'a' }]), 'f.json'),
    'ops[3].buf',
    /already unmapped/,
    'a buffer of the dead worker',
  );
  t.end();
});

t.test('buffer-sizes: every size costs data pages + 1, V0 vs the rest at the spill', (t) => {
  const s = get('buffer-sizes');
  const L = userLockLimit(516, 2);
  const maps = s.ops.flatMap((o, i) => (o.op === 'map' ? [{ i, d: o.data_pages }] : []));
  t.strictSame(maps.map((m) => m.d), [0, 1, 2, 8, 64, 0, 1, 2, 8, 64], 'sizes 0, 1, 2, 8, 64 twice: below L, then across and above it');
  const v3 = simulate(s, { accounting: 'V3', counter: 'perf' });
  const v0 = simulate(s, { accounting: 'V0', counter: 'perf' });
  // Below L: U grows by d + 1 per map, nothing pinned.
  t.strictSame(maps.slice(0, 4).map((m) => v3[m.i]!.user), [L - 79, L - 77, L - 74, L - 65]);
  // The 64-page buffer crosses L by 0 pages exactly (L-65 + 65 = L); then everything spills.
  t.strictSame(maps.slice(4).map((m) => v3[m.i]!.pinned), [0, 1, 3, 6, 15, 80], 'V1..V4: only the new pages spill');
  t.strictSame(maps.slice(4).map((m) => v0[m.i]!.pinned), [0, 1, 4, 10, 25, 105], 'V0: each map pins the whole overage again');
  t.end();
});

t.test('exit-returns: what each logic leaves behind', (t) => {
  const s = get('exit-returns');
  const probes = (logic: (typeof ALL_LOGICS)[number]) => simulate(s, logic).flatMap((e, i) => (s.ops[i]!.op === 'probe' ? [e.headroom] : []));
  for (const logic of ALL_LOGICS) {
    t.strictSame(probes(logic), logic.accounting === 'V4' ? [4, 0, 4, 0, 0, 0] : [4, 0, 4, 4, 4, 1], `${logicLabel(logic)}: probes`);
  }
  t.end();
});
