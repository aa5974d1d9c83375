// The four situations of issue 16 as built-in scenarios, checked through the
// simulator with the values the field reports give; and the ops they need
// (handoff, kill, cap, remap "*") compiled and validated. Pure: no I/O
// besides reading the built-in files.

import t, { type Test } from 'tap';
import { ConfigError } from '../../src/util/errors.ts';
import { type ExpectedOp, type Logic, simulate } from '../../src/model/index.ts';
import { type CompiledScenario, builtinScenarios, compileAtCpus, compileScenario, toScript } from '../../src/scenario/index.ts';

const byId = new Map(builtinScenarios().map((s) => [s.id, s.compiled]));
const get = (id: string): CompiledScenario => byId.get(id)!;
const L = (accounting: Logic['accounting'], counter: Logic['counter'] = 'shared'): Logic => ({ accounting, counter });
const ACC = ['V0', 'V1', 'V2', 'V3', 'V4'] as const;
/** index among the ops of that kind of the first refused one (1-based), or null */
const firstRefused = (s: CompiledScenario, e: ExpectedOp[], kind = 'map'): number | null => {
  let n = 0;
  for (let i = 0; i < s.ops.length; i++) {
    if (s.ops[i]!.op !== kind) continue;
    n++;
    if (!e[i]!.ok) return n;
  }
  return null;
};
const probes = (s: CompiledScenario, e: ExpectedOp[]): number[] => s.ops.flatMap((op, i) => (op.op === 'probe' ? [e[i]!.headroom!] : []));

t.test('profiler-32: 257-page rings on 32 CPUs; the 25th refused at VmPin 2040 (V1..V4), the 20th under V0', (t) => {
  const s = get('profiler-32');
  t.equal(s.cpus, 32);
  t.equal(s.paranoid, 1);
  t.equal(s.rlimit_kb, 8192);
  for (const a of ACC) {
    for (const c of ['shared', 'perf'] as const) {
      const e = simulate(s, L(a, c));
      t.equal(e[0]!.headroom, 4128, `${a}/${c}: the probe measures L = 129 x 32 = 4128 pages`);
      const first = firstRefused(s, e);
      t.equal(first, a === 'V0' ? 20 : 25, `${a}/${c}: ring ${first} refused`);
      // VmPin just before the refused map (op index = probe + first - 1)
      if (a !== 'V0') t.equal(e[first!]!.pinned, 2040, `${a}/${c}: VmPin 2040 pages before it`);
      t.equal(e[first!]!.errno, 'EPERM');
    }
  }
  t.end();
});

t.test('root-pod-ipc-lock: on 10 CPUs the ring of CPU 8 is refused (V1..V4), CAP_IPC_LOCK lets the rest map', (t) => {
  const s = compileAtCpus(get('root-pod-ipc-lock'), 10);
  t.equal(s.rlimit_kb, 64, 'the pod\'s 64 KiB memlock');
  const maps = s.ops.flatMap((op, i) => (op.op === 'map' ? [{ op, i }] : []));
  for (const a of ACC) {
    const e = simulate(s, L(a));
    const refused = maps.filter(({ i }) => !e[i]!.ok).map(({ op }) => (op.op === 'map' ? `${op.buf}@cpu${op.cpu}` : ''));
    if (a === 'V0') t.strictSame(refused.slice(0, 1), ['ring3@cpu3'], 'V0: the whole overage per map, refused at CPU 3');
    else t.strictSame(refused, ['ring8@cpu8', 'ring9@cpu9'], `${a}: refused at CPU 8 and 9 (VmPin 16 of 16 pages)`);
    const late = maps.filter(({ op }) => op.op === 'map' && op.buf.startsWith('late'));
    t.ok(late.every(({ i }) => e[i]!.ok), `${a}: with CAP_IPC_LOCK the remaining rings map`);
    if (a !== 'V0') t.equal(e[late.at(-1)!.i]!.pinned, 20, `${a}: VmPin 20 pages, above the 16-page limit`);
  }
  t.end();
});

t.test('fd-handoff: free before v6.15, V4 charges each second mapping again and keeps it after the worker exits', (t) => {
  const s = get('fd-handoff');
  t.equal(s.ops.filter((op) => op.op === 'handoff').length, 12, '12 threads, one ring each');
  for (const a of ACC) {
    for (const c of ['shared', 'perf'] as const) {
      const p = probes(s, simulate(s, L(a, c)));
      // L = 258 on 2 CPUs; the helpers' 12 rings of 9 pages = 108
      t.strictSame(p, a === 'V4' ? [42, 42, 150] : [150, 150, 258], `${a}/${c}: probes after hand-off, after the worker's exit, after the helpers end`);
    }
  }
  t.end();
});

t.test('restart-clears: the first ring is refused while the old instance lives; after it ends, one ring per CPU maps', (t) => {
  for (const cpus of [2, 4, 32]) {
    const s = compileAtCpus(get('restart-clears'), cpus);
    for (const a of ACC) {
      const e = simulate(s, L(a));
      const maps = s.ops.flatMap((op, i) => (op.op === 'map' ? [i] : []));
      t.equal(e[maps[0]!]!.errno, 'EPERM', `${cpus} CPUs ${a}: the new instance's first ring is refused`);
      t.equal(maps.length, 1 + cpus);
      t.ok(maps.slice(1).every((i) => e[i]!.ok && e[i]!.pinned === 0), `${cpus} CPUs ${a}: after the kill every ring maps, VmPin 0`);
      t.strictSame(probes(s, e), [0, 0], 'U at L both times: first the old instance\'s, then the new one\'s');
    }
  }
  t.end();
});

// ---------------------------------------------------------------------------
// The ops

const sc = (ops: unknown[], over: Record<string, unknown> = {}): Record<string, unknown> => ({ id: 't', description: 'field ops', cpus: 2, ops, ...over });
const err = (t: Test, obj: unknown, re: RegExp, what: string): void => {
  try {
    compileScenario(obj, 'f.json');
    t.fail(`${what}: accepted`);
  } catch (e) {
    t.ok(e instanceof ConfigError, `${what}: a ConfigError`);
    t.match((e as Error).message, re, what);
  }
};

t.test('kill: named helpers, group names, "*", and the script lines', (t) => {
  const s = compileScenario(sc([
    { op: 'ballast', via: 'perf', pages: 10, helper: 'a' },
    { op: 'handoff', buf: 'h', cpu: 'each', data_pages: 1, helper: 'hs' },
    { op: 'kill', helper: 'hs' },
    { op: 'kill', helper: '*' },
  ]), 'f.json');
  t.strictSame(toScript(s, 5).split('\n').slice(1, -2), [
    'ballast perf 8 0', 'handoff h0 0 1', 'handoff h1 1 1', 'kill_helper 1', 'kill_helper 2', 'kill_helper *',
  ]);
  const e = simulate(s, L('V3'));
  t.strictSame(e.map((x) => x.user), [10, 12, 14, 14, 14, 4], 'a handed-off ring stays while the worker maps it; the ballast helper\'s 10 pages come back');
  err(t, sc([{ op: 'kill', helper: 'x' }]), /ops\[0\]\.helper: no helper is named "x"/, 'unknown name');
  err(t, sc([{ op: 'ballast', via: 'perf', pages: 1, helper: 'a' }, { op: 'kill', helper: 'a' }, { op: 'kill', helper: 'a' }]), /ops\[2\]\.helper: helper "a" \(ops\[0\]\) was killed already/, 'killed twice');
  err(t, sc([{ op: 'kill', helper: '*' }]), /ops\[0\]\.helper: kill of "\*" while no helper is alive/, 'nothing to kill');
  err(t, sc([{ op: 'ballast', via: 'perf', pages: 1, helper: 'a' }, { op: 'ballast', via: 'io_uring', pages: 1, helper: 'a' }]), /ops\[1\]\.helper: helper name "a" is already used by ops\[0\]/, 'duplicate name');
  err(t, sc([{ op: 'ballast', via: 'perf', pages: 1, helper: 'a' }, { op: 'kill', helper: 'a' }, { op: 'exit' }]), /ops\[2\]\.op: the worker exits while no other process of the uid is alive/, 'exit after the last helper died');
  err(t, sc([{ op: 'kill' }]), /ops\[0\]\.helper: missing/, 'kill needs a helper');
  t.end();
});

t.test('cap: CAP_IPC_LOCK granted and dropped mid-scenario, with RLIMIT_MEMLOCK; exit restores the start', (t) => {
  const s = compileScenario(sc([
    { op: 'ballast', via: 'perf', pages: 'L' },
    { op: 'map', buf: 'a', cpu: 0, data_pages: 8 }, // extra 9 > 16 kB / 4 = 4 pages: EPERM
    { op: 'cap', cap_ipc_lock: true, rlimit_memlock_kb: 32 },
    { op: 'map', buf: 'b', cpu: 0, data_pages: 8 }, // admitted
    { op: 'cap', cap_ipc_lock: false },
    { op: 'map', buf: 'c', cpu: 0, data_pages: 0 }, // P 9 + 1 > 32 kB / 4 = 8: EPERM
    { op: 'exit' },
    { op: 'map', buf: 'd', cpu: 0, data_pages: 0 }, // fresh worker, P 0 + 1 <= 4
  ], { rlimit_memlock_kb: 16 }), 'f.json');
  t.strictSame(toScript(s, 5).split('\n').slice(3, 6), ['cap_ipc_lock 1', 'rlimit 32', 'map b 0 8']);
  for (const a of ['V1', 'V3', 'V4'] as const) {
    const e = simulate(s, L(a));
    t.strictSame(e.filter((_, i) => s.ops[i]!.op === 'map').map((x) => x.errno || 'ok'), ['EPERM', 'ok', 'EPERM', 'ok'], a);
  }
  err(t, sc([{ op: 'cap' }]), /ops\[0\]\.cap_ipc_lock: missing/, 'cap needs cap_ipc_lock');
  err(t, sc([{ op: 'cap', cap_ipc_lock: 1 }]), /ops\[0\]\.cap_ipc_lock: cap_ipc_lock must be true or false/, 'a boolean');
  err(t, sc([{ op: 'cap', cap_ipc_lock: true, rlimit_memlock_kb: -1 }]), /ops\[0\]\.rlimit_memlock_kb/, 'a memlock in range');
  t.end();
});

t.test('remap "*": every open buffer in map order, count times; V4 charges each', (t) => {
  const s = compileScenario(sc([
    { op: 'map', buf: 'r', cpu: 'each', data_pages: 2 },
    { op: 'map_output', buf: 'o', to: 'r0' },
    { op: 'remap', buf: '*', count: 2 },
  ]), 'f.json');
  t.strictSame(s.ops.slice(3).map((op) => (op.op === 'remap' ? op.buf : op.op)), ['r0', 'r0', 'r1', 'r1'], 'map_output buffers are left out');
  t.equal(simulate(s, L('V4')).at(-1)!.user, 6 + 3 + 4 * 3, 'V4: 4 re-mmaps of 3 pages charged again (and the map_output one)');
  err(t, sc([{ op: 'remap', buf: '*' }]), /ops\[0\]\.buf: remap of "\*" with no open buffer/, 'nothing open');
  t.end();
});

t.test('handoff: the helper\'s ring and the worker\'s mapping; helperPinned; the worker unmaps first or last', (t) => {
  const s = compileScenario(sc([
    { op: 'ballast', via: 'perf', pages: 'L-2', helper: 'keep-uid' },
    { op: 'handoff', buf: 'h', cpu: 1, data_pages: 4, helper: 'p' }, // 5 pages: 2 to U, 3 spill into the helper's VmPin
    { op: 'probe' },
    { op: 'kill', helper: 'p' }, // the worker's mapping remains: nothing given back
    { op: 'probe' },
    { op: 'exit' }, // last mapping: the ring's charges come back (U; pinned_vm of the mm that unmaps last); a fresh worker pins 0
  ]), 'f.json');
  const e3 = simulate(s, L('V3'));
  t.equal(e3[1]!.helperPinned, 3);
  t.strictSame([e3[2]!.headroom, e3[4]!.headroom, e3[5]!.user, e3[5]!.pinned], [0, 0, 256, 0], 'V3: given back when the worker\'s mapping goes');
  const e4 = simulate(s, L('V4'));
  t.equal(e4[1]!.user, 258 + 5, 'V4: the worker\'s mapping charges ue again');
  t.equal(e4[5]!.user, 256 + 5, 'V4: one charge back, the other stays');
  err(t, sc([{ op: 'handoff', buf: 'h', cpu: 2, data_pages: 1 }]), /ops\[0\]\.cpu: CPU 2 does not exist/, 'cpu checked like map');
  err(t, sc([{ op: 'handoff', buf: 'h', cpu: 0, data_pages: 3 }]), /ops\[0\]\.data_pages: data_pages 3 is neither 0 nor a power of two/, 'data_pages checked like map');
  err(t, sc([{ op: 'map', buf: 'h', cpu: 0, data_pages: 1 }, { op: 'handoff', buf: 'h', cpu: 0, data_pages: 1 }]), /ops\[1\]\.buf: buffer "h" is still open/, 'names like map');
  t.end();
});
