import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/util/errors.ts';
import { ALL_LOGICS, type Accounting, type Counter, type ExpectedOp, type Logic, logicLabel, rlimitPages, simulate } from '../../src/model/index.ts';
import { classify } from '../../src/diff/index.ts';
import { prng } from '../lib/prng.ts';
import {
  BUILTIN_SCENARIO_DIR,
  type CompiledScenario,
  type LoadedScenario,
  SCENARIO_LIMITS,
  builtinScenarios,
  canonicalJson,
  cappedBallastBuffers,
  compileAtPageSize,
  compileScenario,
  compileSource,
  loadScenarioDir,
  loadScenarioFile,
  mappingPages,
  validateScenario,
  scenarioHash,
  scenarioNeeds,
  toScript,
  skipReasons,
  userLockLimit,
  ballastBuffers,
  usesAux,
} from '../../src/scenario/index.ts';
import { classesLabel, firstEperm, indistinguishable, logicClasses, pinnedSeries, syntheticMeasured } from '../../src/diff/discriminate.ts';
import { ROOT_UID_WHY } from '../../src/scenario/skip.ts';
import { splitRootScenarios } from '../../src/matrix/plan.ts';

const L = (accounting: Accounting, counter: Counter = 'shared'): Logic => ({ accounting, counter });
const ACC: readonly Accounting[] = ['V0', 'V1', 'V2', 'V3', 'V4'];

const builtins = builtinScenarios();
const byId = new Map(builtins.map((s) => [s.id, s]));
const get = (id: string): CompiledScenario => {
  const s = byId.get(id);
  if (s === undefined) throw new Error(`no built-in scenario ${id}`);
  return s.compiled;
};
const sim = (s: CompiledScenario, l: Logic): ExpectedOp[] => simulate(s, l);
const series = (s: CompiledScenario, l: Logic): number[] => pinnedSeries(s, sim(s, l));
/** Increments of the pinned series (what each map charged to VmPin). */
const steps = (xs: number[]): number[] => xs.map((x, k) => x - (k === 0 ? 0 : xs[k - 1]!));
const probes = (s: CompiledScenario, e: ExpectedOp[]): number[] => s.ops.flatMap((o, i) => (o.op === 'probe' ? [e[i]!.headroom!] : []));
const mapIdx = (s: CompiledScenario): number[] => s.ops.flatMap((o, i) => (o.op === 'map' ? [i] : []));
/** Class partition as labels, "|"-separated, for readable assertions. */
const classes = (s: CompiledScenario): string => classesLabel(logicClasses(s));
const cls = (...groups: string[][]): string => groups.map((g) => g.join(' ')).join(' | ');
const both = (...accs: Accounting[]): string[] => accs.flatMap((a) => [`${a}/shared`, `${a}/perf`]);

// ---------------------------------------------------------------------------
// The built-in files

const EXPECTED_BUILTINS = [
  'aux-remap',
  'aux-unmap',
  'baseline',
  'bpf-ballast',
  'buffer-sizes',
  'cap-ipc-lock',
  'cpu-offline',
  'exit-returns',
  'fd-handoff',
  'incident',
  'mapping-errors',
  'memfd-secret',
  'munmap-returns',
  'overage',
  'paranoid-minus-one',
  'profiler-32',
  'profiler-pages',
  'remmap',
  'restart-clears',
  'rlimit-small',
  'rlimit-sweep',
  'root-pod-ipc-lock',
  'root-record',
  'shared-counter',
  'sysctl-lowered',
  'uid-record',
  'uring-refused',
];

t.test('every built-in scenario file loads, and is runnable', (t) => {
  t.strictSame(builtins.map((s) => s.id).sort(), EXPECTED_BUILTINS, 'the built-in set');
  for (const s of builtins) {
    t.equal(s.file, join(BUILTIN_SCENARIO_DIR, `${s.id}.json`), `${s.id}: id equals the file name`);
    t.ok(s.description.length > 20, `${s.id}: has a description`);
    t.equal(s.hash, scenarioHash(s.compiled), `${s.id}: hash`);
    t.match(s.hash, /^[0-9a-f]{64}$/);
    t.equal(loadScenarioFile(s.file).hash, s.hash, `${s.id}: hash is stable across loads`);
    for (const l of ALL_LOGICS) t.doesNotThrow(() => simulate(s.compiled, l), `${s.id}: simulates under ${logicLabel(l)}`);
    // Every script line is one the reproducer accepts.
    for (const line of toScript(s.compiled, 3000001).trimEnd().split('\n')) t.ok(protocolLine(line), `${s.id}: protocol line ${JSON.stringify(line.slice(0, 60))}`);
    // The host here cannot raise RLIMIT_MEMLOCK above 8192 kB: every 2-CPU scenario must stay below.
    if (s.compiled.cpus === 2) {
      const host = { onlineCpus: 2, memlockHardKb: 8192, cpuHotplug: false, faultInjection: false };
      t.strictSame(skipReasons(s.needs, host), [], `${s.id}: runs on a 2-CPU host with an 8192 kB hard RLIMIT_MEMLOCK`);
    }
    t.notOk(s.needs.faultInjection, `${s.id}: no fault injection`);
  }
  t.strictSame(scenarioNeeds(get('cpu-offline')).hotplugCpus, [2, 3], 'cpu-offline needs CPU hotplug of 2 and 3');
  t.strictSame(
    skipReasons(byId.get('cpu-offline')!.needs, { onlineCpus: 4, memlockHardKb: 8192, cpuHotplug: false, faultInjection: false }),
    ['takes CPU 2, 3 offline: needs CPU hotplug'],
  );
  t.match(skipReasons(byId.get('incident')!.needs, { onlineCpus: 2, memlockHardKb: 8192, cpuHotplug: true, faultInjection: false }).join('; '), /36 online CPUs.*524288 kB/);
  t.end();
});

t.test('uid-record / root-record (#14 item 4): exit last, uid 0, where they run', (t) => {
  const fresh = get('uid-record');
  const root = get('root-record');
  t.notOk(fresh.root, 'uid-record runs under a fresh uid');
  t.equal(root.root, true, 'root-record runs as uid 0');
  t.strictSame(fresh.ops.filter((o) => o.op === 'exit'), [{ op: 'exit', last: true }], 'the exit is the uid\'s last');
  t.match(toScript(root, 3000001), /^begin root-record uid=0 /, 'root: uid=0 whatever uid the runner picked');
  t.match(toScript(fresh, 3000001), /^begin uid-record uid=3000001 /);
  t.match(toScript(fresh, 3000001), /\nexit last\n/);
  t.equal(scenarioNeeds(root).rootUid, true);
  t.equal(scenarioNeeds(fresh).rootUid, false);
  const offer = { onlineCpus: null, memlockHardKb: null, cpuHotplug: true, faultInjection: true };
  t.strictSame(skipReasons(scenarioNeeds(root), offer), [], 'a VM offer (no rootUid field) runs it');
  t.strictSame(skipReasons(scenarioNeeds(root), { ...offer, rootUid: ROOT_UID_WHY }), [`runs its worker as uid 0: ${ROOT_UID_WHY}`], 'host and container offers refuse it');
  t.strictSame(skipReasons(scenarioNeeds(fresh), { ...offer, rootUid: ROOT_UID_WHY }), [], 'uid-record runs on the host');
  // uid 0 never loses its record: a plain exit without a helper is fine there
  const plain = compileSource({ id: 'r', description: 'root exits', cpus: 2, uid: 'root', ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'exit' }, { op: 'probe' }] }, 'r.json');
  t.equal(plain.compiled.root, true);
  t.equal(plain.source.uid, 'root');
  t.end();
});

t.test('splitRootScenarios: one uid 0 scenario per boot, the rest stay in the first', (t) => {
  const s = (id: string, root = false): CompiledScenario => ({ ...get('baseline'), id, ...(root ? { root: true as const } : {}) });
  const ids = (ls: CompiledScenario[][]): string[][] => ls.map((l) => l.map((x) => x.id));
  t.strictSame(ids(splitRootScenarios([])), [[]]);
  t.strictSame(ids(splitRootScenarios([s('a'), s('b')])), [['a', 'b']]);
  t.strictSame(ids(splitRootScenarios([s('a'), s('r1', true), s('b')])), [['a', 'r1', 'b']]);
  t.strictSame(ids(splitRootScenarios([s('r1', true), s('a'), s('r2', true), s('b'), s('r3', true)])), [['r1', 'a', 'b'], ['r2'], ['r3']]);
  t.end();
});

t.test('incident: 36 maps after one perf ballast of 32886 pages; V0 EPERM at call 5, none under V1..V4', (t) => {
  const s = get('incident');
  t.equal(s.cpus, 36);
  t.equal(s.mlock_kb, 516);
  t.equal(s.rlimit_kb, 524288);
  t.equal(s.cap_ipc_lock, false);
  t.equal(s.ops.length, 37);
  const b = s.ops[0]!;
  t.equal(b.op, 'ballast');
  if (b.op === 'ballast' && b.via === 'perf') {
    t.equal(b.buffers.reduce((n, d) => n + mappingPages(d), 0), 32886, 'ballast buffers sum to 32886 pages');
    t.strictSame(b.buffers, ballastBuffers(32886), 'the buffers are ballastBuffers(32886)');
  } else t.fail('ops[0] is a perf ballast');
  const maps = s.ops.slice(1);
  t.ok(maps.every((o) => o.op === 'map' && o.data_pages === 2), '36 two-data-page maps');
  t.strictSame(maps.map((o) => (o.op === 'map' ? o.cpu : -1)), Array.from({ length: 36 }, (_, k) => k), 'one per CPU');
  t.strictSame(maps.map((o) => (o.op === 'map' ? o.buf : '')), Array.from({ length: 36 }, (_, k) => `rb${k}`), 'named rb0..rb35');
  for (const c of ['shared', 'perf'] as const) {
    t.equal(firstEperm(s, sim(s, L('V0', c))), 5, `V0/${c}: EPERM first at call 5`);
    t.equal(sim(s, L('V0', c))[mapIdx(s)[4]!]!.check!.locked, 141255, `V0/${c}: call 5 computes locked = 141255`);
    for (const a of ACC.slice(1)) t.equal(firstEperm(s, sim(s, L(a, c))), null, `${a}/${c}: no EPERM`);
  }
  t.equal(classes(s), cls(both('V0'), both('V1', 'V1a', 'V1b', 'V2', 'V3', 'V4')));
  t.end();
});

// ---------------------------------------------------------------------------
// What each built-in tells apart (computed from the simulator)

t.test('V1 and V3 are indistinguishable on every built-in scenario without AUX ops; V1b and V3 on every one', (t) => {
  for (const s of builtins) {
    for (const c of ['shared', 'perf'] as const) {
      t.strictSame(sim(s.compiled, L('V1b', c)), sim(s.compiled, L('V3', c)).map((e, i) => (e.check ? { ...e, check: sim(s.compiled, L('V1b', c))[i]!.check } : e)), `${s.id}: V1b/${c} predicts as V3/${c}`);
      if (usesAux(s.compiled)) {
        // an AUX area partly pinned tells them apart (aux-unmap); one charged to U only does not
        if (s.id === 'aux-unmap') t.notOk(indistinguishable(s.compiled, L('V1', c), L('V3', c)), `${s.id}: AUX unmap tells V1/${c} from V3/${c}`);
        continue;
      }
      t.ok(indistinguishable(s.compiled, L('V1', c), L('V3', c)), `${s.id}: V1/${c} = V3/${c}`);
      // Identical observable predictions (the kprobe-only `check.userLocked` differs: V3 clamps U first).
      const strip = (e: ExpectedOp[]): unknown[] => e.map(({ check: _check, ...rest }) => rest);
      t.strictSame(strip(sim(s.compiled, L('V1', c))), strip(sim(s.compiled, L('V3', c))), `${s.id}: identical predictions`);
    }
  }
  t.end();
});

t.test('overage: the incident on 2 CPUs (V0 vs the rest)', (t) => {
  const s = get('overage');
  const R = rlimitPages(s.rlimit_kb);
  const v0 = steps(series(s, L('V0')));
  const v3 = steps(series(s, L('V3')));
  t.ok(v3.every((x) => x === 3), 'V3 pins ue per map');
  t.ok(v0[0]! > 3 && v0[1]! > v0[0]!, 'V0 pins the growing overage per map');
  const e = firstEperm(s, sim(s, L('V0')));
  t.ok(e !== null && e <= 4, `V0 hits EPERM early (call ${e})`);
  t.ok(series(s, L('V3')).at(-1)! <= R, 'V3 stays below RLIMIT');
  t.equal(classes(s), cls(both('V0'), both('V1', 'V1a', 'V1b', 'V2', 'V3', 'V4')));
  t.end();
});

for (const id of ['sysctl-lowered', 'cpu-offline']) {
  t.test(`${id}: V2 jumps by U+ue-L once, V1/V3 by ue, V0 by the whole overage every call`, (t) => {
    const s = get(id);
    const idx = mapIdx(s);
    const v2 = sim(s, L('V2'));
    const v3 = sim(s, L('V3'));
    const v0 = sim(s, L('V0'));
    t.notSame(pinnedSeries(s, v2), pinnedSeries(s, v3), 'V2 vs V3: different pinned series');
    t.notSame(pinnedSeries(s, v0), pinnedSeries(s, v3), 'V0 vs V3: different pinned series');
    t.notSame(pinnedSeries(s, v0), pinnedSeries(s, v2), 'V0 vs V2: different pinned series');
    const first = idx[0]!;
    const before = v2[first - 1]!;
    const c = v2[first]!.check!;
    t.ok(before.user > c.userLockLimit, `U (${before.user}) is above the lowered L (${c.userLockLimit}) before the first map`);
    const m0 = s.ops[first]!;
    const ue = m0.op === 'map' ? mappingPages(m0.data_pages) : NaN;
    t.equal(steps(pinnedSeries(s, v2))[0], before.user + ue - c.userLockLimit, 'V2: first map pins U + ue - L');
    t.ok(steps(pinnedSeries(s, v2)).slice(1).every((x) => x === ue), 'V2: later maps pin ue');
    t.ok(steps(pinnedSeries(s, v3)).every((x) => x === ue), 'V3: every map pins ue');
    const v0s = steps(pinnedSeries(s, v0));
    t.ok(v0s.every((x, k) => x === v0[idx[k]!]!.check!.userLocked - v0[idx[k]!]!.check!.userLockLimit && x > ue), 'V0: every map pins the whole overage');
    // A probe after L is restored sees V2's U pulled down to the lowered L.
    const p2 = probes(s, v2);
    const p3 = probes(s, v3);
    t.ok(p2.some((h, k) => h > 0 && p3[k] === 0), 'a probe sees V2 pulled U down');
    t.equal(classes(s), cls(both('V0'), both('V1', 'V1a', 'V1b', 'V3', 'V4'), both('V2')));
    t.end();
  });
}

t.test('remmap: V4 leaks ue per extra mapping, for good', (t) => {
  const s = get('remmap');
  const remaps = s.ops.filter((o) => o.op === 'remap').length;
  t.equal(remaps, 29, '1 map + 29 remaps of one fd');
  const ue = mappingPages(2);
  const p4 = probes(s, sim(s, L('V4')));
  const p3 = probes(s, sim(s, L('V3')));
  const last = p3.length - 1;
  t.equal(p3[last]! - p4[last]!, remaps * ue, 'final probe: V4 has 29*3 pages less headroom');
  t.equal(p3[last], userLockLimit(516, 2), 'V3 gets everything back');
  t.notSame(series(s, L('V4')), series(s, L('V3')), 'fresh buffers spill earlier under V4');
  for (const a of ['V0', 'V1', 'V2'] as const) t.ok(indistinguishable(s, L(a), L('V3')), `${a} = V3 here`);
  t.equal(classes(s), cls(both('V0', 'V1', 'V1a', 'V1b', 'V2', 'V3'), both('V4')));
  t.end();
});

t.test('shared-counter: tells the shared counter from the perf one, with calibration of io_uring ring pages', (t) => {
  const s = get('shared-counter');
  for (const a of ACC) t.notOk(indistinguishable(s, L(a, 'shared'), L(a, 'perf')), `${a}: shared vs perf differ`);
  t.notSame(series(s, L('V3', 'shared')), series(s, L('V3', 'perf')), 'the maps spill only on the shared counter');
  const all = ['V0', 'V1', 'V1a', 'V1b', 'V2', 'V3', 'V4'];
  t.equal(classes(s), cls(all.map((a) => `${a}/shared`), all.map((a) => `${a}/perf`)));
  // A shared-counter kernel whose io_uring charges 2 pages of its own (6.18): calibration absorbs them.
  const measuredShared = syntheticMeasured(s, simulate(s, L('V3', 'shared'), { ioUringExtraPages: 2 }));
  const fitShared = classify([{ scenario: s, measured: measuredShared }]).map(logicLabel);
  t.ok(fitShared.includes('V3/shared'), `a calibrated shared kernel classifies as shared (${fitShared.join(' ')})`);
  t.notOk(fitShared.some((l) => l.endsWith('/perf')), 'and not as perf');
  const measuredPerf = syntheticMeasured(s, simulate(s, L('V3', 'perf')));
  const fitPerf = classify([{ scenario: s, measured: measuredPerf }]).map(logicLabel);
  t.ok(fitPerf.includes('V3/perf'), `a perf-counter kernel classifies as perf (${fitPerf.join(' ')})`);
  t.notOk(fitPerf.some((l) => l.endsWith('/shared')), 'and not as shared');
  t.end();
});

t.test('cap-ipc-lock, paranoid-minus-one: no EPERM past RLIMIT; rlimit-small, their control, refuses', (t) => {
  const small = get('rlimit-small');
  const R = rlimitPages(small.rlimit_kb);
  for (const id of ['cap-ipc-lock', 'paranoid-minus-one']) {
    const s = get(id);
    t.strictSame({ ...s, id: '', cap_ipc_lock: false, paranoid: 2 }, { ...small, id: '' }, `${id} differs from rlimit-small only in the way around the check`);
    for (const l of ALL_LOGICS) {
      const e = sim(s, l);
      t.equal(firstEperm(s, e), null, `${id} ${logicLabel(l)}: no EPERM`);
      t.ok(e.every((x) => x.ok), `${id} ${logicLabel(l)}: every op ok (probes too)`);
      t.ok(pinnedSeries(s, e).at(-1)! > R, `${id} ${logicLabel(l)}: VmPin ends above RLIMIT (${R} pages)`);
    }
    t.equal(classes(s), cls(both('V0'), both('V1', 'V1a', 'V1b', 'V2', 'V3', 'V4')));
  }
  const e0 = firstEperm(small, sim(small, L('V0')));
  const e3 = firstEperm(small, sim(small, L('V3')));
  t.ok(e0 !== null && e3 !== null && e0 < e3, `rlimit-small: EPERM under every logic, V0 earlier (${e0} < ${e3})`);
  t.equal(e3, Math.floor(R / 3) + 1, 'V3: first EPERM once R / ue maps are pinned');
  for (const l of ALL_LOGICS) t.not(firstEperm(small, sim(small, l)), null, `rlimit-small ${logicLabel(l)}: EPERM`);
  t.equal(classes(small), cls(both('V0'), both('V1', 'V1a', 'V1b', 'V2', 'V3', 'V4')));
  t.end();
});

t.test('rlimit-sweep: first EPERM per RLIMIT step', (t) => {
  const s = get('rlimit-sweep');
  /** per rlimit step: [R pages, first EPERM call within the step or null] */
  const perStep = (e: ExpectedOp[]): [number, number | null][] => {
    const out: [number, number | null][] = [];
    let call = 0;
    for (let i = 0; i < s.ops.length; i++) {
      const o = s.ops[i]!;
      if (o.op === 'rlimit') {
        out.push([rlimitPages(o.memlock_kb), null]);
        call = 0;
      } else if (o.op === 'map') {
        call++;
        const cur = out.at(-1)!;
        if (cur[1] === null && e[i]!.errno === 'EPERM') cur[1] = call;
      }
    }
    return out;
  };
  const v3 = perStep(sim(s, L('V3')));
  const v0 = perStep(sim(s, L('V0')));
  t.equal(v3.length, 5, 'five RLIMIT steps');
  t.comment(`V3: ${v3.map(([r, c]) => `${r * 4} kB -> call ${c}`).join(', ')}`);
  t.comment(`V0: ${v0.map(([r, c]) => `${r * 4} kB -> call ${c}`).join(', ')}`);
  for (let k = 0; k < v3.length; k++) {
    const [R, c3] = v3[k]!;
    t.equal(c3, Math.floor(R / 3) + 1, `V3 at ${R * 4} kB: EPERM once R / ue maps are pinned`);
    t.ok(v0[k]![1]! <= c3!, `V0 at ${R * 4} kB: no later than V3`);
  }
  t.ok(v0.some(([, c], k) => c! < v3[k]![1]!), 'V0 strictly earlier in some step');
  t.equal(classes(s), cls(both('V0'), both('V1', 'V1a', 'V1b', 'V2', 'V3', 'V4')));
  t.end();
});

t.test('munmap-returns and baseline: every logic agrees; charges come back', (t) => {
  for (const id of ['munmap-returns', 'baseline']) {
    const s = get(id);
    t.equal(logicClasses(s).length, 1, `${id}: one class (${classes(s)})`);
    for (const l of ALL_LOGICS) {
      const e = sim(s, l);
      t.ok(e.every((x) => x.ok), `${id} ${logicLabel(l)}: every op ok`);
    }
  }
  const s = get('munmap-returns');
  const e = sim(s, L('V3'));
  const p = probes(s, e);
  t.equal(p[0], p[3], 'headroom after both unmaps is the starting headroom');
  t.equal(p[4], p.at(-1), 'and again after the ballast');
  t.ok(pinnedSeries(s, e).some((x) => x > 0), 'the second half spills into VmPin');
  t.equal(e.at(-1)!.pinned, 0, 'VmPin comes back to 0');
  t.ok(p.some((h, k) => k > 0 && h !== p[k - 1]), 'the probes see U change');
  t.end();
});

t.test('every built-in but the sanity cells tells some logics apart', (t) => {
  for (const s of builtins) {
    const c = logicClasses(s.compiled);
    t.comment(`${s.id}: ${classesLabel(c)}`);
    // sanity cells: every logic agrees (restart-clears checks that a killed helper's charges come back)
    if (s.id === 'baseline' || s.id === 'munmap-returns' || s.id === 'restart-clears') continue;
    // BPF charges the per-user counter only before 5.11: on 6.x kernels nothing differs.
    if (s.id === 'bpf-ballast') {
      t.equal(c.length, 1, 'bpf-ballast: one class on 5.11+');
      t.equal(logicClasses(s.compiled, { bpfChargesUser: true }).length, 2, 'bpf-ballast: shared | perf before 5.11');
      continue;
    }
    // memfd_secret charges user->locked_vm only on 6.1.191+ / 6.12.113+ (mm/secretmem: properly account locked pages).
    if (s.id === 'memfd-secret') {
      t.equal(c.length, 1, 'memfd-secret: one class where memfd_secret charges nothing');
      t.equal(classesLabel(logicClasses(s.compiled, { secretmemChargesUser: true })).split(' | ').length, 2, 'memfd-secret: shared | perf where it charges');
      continue;
    }
    // The same 128-page rings fit 4 kB pages' allowance under every logic; at 64 kB pages the logics part (#19).
    if (s.id === 'profiler-pages') {
      t.equal(c.length, 1, 'profiler-pages: one class at 4 kB pages');
      t.ok(logicClasses(compileAtPageSize(s.compiled, 64), { pageKb: 64 }).length >= 2, 'profiler-pages: logics part at 64 kB pages');
      continue;
    }
    t.ok(c.length >= 2, `${s.id}: ${c.length} classes`);
  }
  t.end();
});

t.test('sizes in bytes and "L" follow the page size (compileAtPageSize, #19)', (t) => {
  const incident = builtins.find((s) => s.id === 'incident')!.compiled;
  t.equal(compileAtPageSize(incident, 4), incident, '4 kB: the scenario as loaded');
  const big = compileAtPageSize(incident, 64);
  t.equal(big.page_kb, 64);
  const ballast = big.ops[0]!;
  t.ok(ballast.op === 'ballast' && 'buffers' in ballast && ballast.buffers.reduce((a, d) => a + d + 1, 0) === Math.ceil(134701056 / 65536), 'the 128.5 MiB ballast is 2056 pages of 64 kB');
  t.ok(big.ops.slice(1).every((o) => o.op === 'map' && o.data_pages === 1), 'data_bytes 8192 rounds up to one 64 kB page');
  t.not(scenarioHash(big), scenarioHash(incident), 'its own hash');
  // V0 at 64 kB pages: still call 5 refused, at its own VmPin (its own table)
  const at4 = simulate(incident, L('V0'));
  const at64 = simulate(big, L('V0'), { pageKb: 64 });
  t.equal(firstEperm(incident, at4), 5);
  t.equal(firstEperm(big, at64), 5);
  t.not(at64[4]!.pinned, at4[4]!.pinned, 'pinned_vm in pages differs');

  // a page-count scenario does not depend on the page size: same object, same hash
  const remmap = builtins.find((s) => s.id === 'remmap')!.compiled;
  t.equal(compileAtPageSize(remmap, 64), remmap);
  // "L" follows (perf_event_mlock_kb >> (PAGE_SHIFT - 10)) * cpus
  const l = compileSource({ id: 'l', description: 'an L ballast', cpus: 2, perf_event_mlock_kb: 516, ops: [{ op: 'ballast', via: 'perf', pages: 'L' }] }, 'l.json').compiled;
  const pages = (x: CompiledScenario): number => { const o = x.ops[0]!; return o.op === 'ballast' && 'buffers' in o ? o.buffers.reduce((a, d) => a + d + 1, 0) : -1; };
  t.equal(pages(l), 258);
  t.equal(pages(compileAtPageSize(l, 16)), 64, '516 >> 4 = 32 pages a CPU');
  t.equal(pages(compileAtPageSize(l, 64)), 16, '516 >> 6 = 8 pages a CPU');
  t.equal(pages(compileAtPageSize(compileAtPageSize(l, 64), 16)), 64, 'from one page size to another');
  t.equal(compileAtPageSize(compileAtPageSize(l, 64), 4).page_kb, undefined, 'back at 4 kB: no page_kb');
  t.equal(scenarioHash(compileAtPageSize(compileAtPageSize(remmap, 64), 16)), scenarioHash(remmap), 'page-count scenarios keep their hash through any path');

  // bad input names the field
  const bad = (ops: unknown[], field: RegExp): void => {
    const e = (() => { try { compileScenario({ id: 'b', description: 'bad sizes', cpus: 2, ops }, 'b.json'); return null; } catch (x) { return x as ConfigError; } })();
    t.ok(e instanceof ConfigError && field.test(e.field), `${JSON.stringify(ops)} -> ${e?.field}: ${e?.problem}`);
  };
  bad([{ op: 'map', buf: 'a', cpu: 0, data_pages: 2, data_bytes: 8192 }], /data_bytes/);
  bad([{ op: 'map', buf: 'a', cpu: 0 }], /data_pages/);
  bad([{ op: 'ballast', via: 'perf', pages: 4, bytes: 8192 }], /bytes/);
  const odd = compileSource({ id: 'o', description: 'a 12 kB ring', cpus: 1, ops: [{ op: 'map', buf: 'a', cpu: 0, data_bytes: 12288 }] }, 'o.json').compiled;
  t.match(odd.ops[0], { op: 'map', data_pages: 4 }, '12 kB at 4 kB pages: 3 pages, rounded up to 4 (a power of two, as perf record -m rounds)');
  t.match(compileAtPageSize(odd, 16).ops[0], { op: 'map', data_pages: 1 });
  t.end();
});

// ---------------------------------------------------------------------------
// The format: sugar and hashes

const base = (ops: unknown[], over: Record<string, unknown> = {}): Record<string, unknown> => ({ id: 't', description: 'a test', cpus: 2, ops, ...over });

t.test('sugar compiles away', (t) => {
  const s = compileScenario(
    base([
      { op: 'ballast', via: 'perf', pages: 'L' },
      { op: 'sysctl', name: 'perf_event_mlock_kb', value: 260 },
      { op: 'ballast', via: 'perf', pages: 'L-30' },
      { op: 'ballast', via: 'io_uring', pages: 'L+2' },
      { op: 'map', buf: 'x', cpu: 1, data_pages: 4 },
      { op: 'map', buf: 'y', cpu: 0, count: 2, data_pages: 0 },
      { op: 'map', buf: 'z', cpu: 'round-robin', count: 3, data_pages: 1 },
      { op: 'map', buf: 'e', cpu: 'each', data_pages: 2 },
      { op: 'remap', buf: 'x', count: 2 },
      { op: 'remap', buf: 'y0' },
      { op: 'unmap', buf: 'x' },
      { op: 'rlimit', memlock_kb: null },
      { op: 'unmap', buf: '*' },
    ], { cpus: 2 }),
    'sugar.json',
  );
  t.strictSame(s.ops, [
    { op: 'ballast', via: 'perf', buffers: ballastBuffers(258) },
    { op: 'sysctl', name: 'perf_event_mlock_kb', value: 260 },
    { op: 'ballast', via: 'perf', buffers: ballastBuffers(100) },
    { op: 'ballast', via: 'io_uring', pages: 132 },
    { op: 'map', buf: 'x', cpu: 1, data_pages: 4 },
    { op: 'map', buf: 'y0', cpu: 0, data_pages: 0 },
    { op: 'map', buf: 'y1', cpu: 0, data_pages: 0 },
    { op: 'map', buf: 'z0', cpu: 0, data_pages: 1 },
    { op: 'map', buf: 'z1', cpu: 1, data_pages: 1 },
    { op: 'map', buf: 'z2', cpu: 0, data_pages: 1 },
    { op: 'map', buf: 'e0', cpu: 0, data_pages: 2 },
    { op: 'map', buf: 'e1', cpu: 1, data_pages: 2 },
    { op: 'remap', buf: 'x' },
    { op: 'remap', buf: 'x' },
    { op: 'remap', buf: 'y0' },
    { op: 'unmap', buf: 'x' },
    { op: 'rlimit', memlock_kb: null },
    { op: 'unmap', buf: '*' },
  ]);
  t.strictSame({ ...s, ops: [] }, { id: 't', cpus: 2, mlock_kb: 516, paranoid: 2, rlimit_kb: 8192, cap_ipc_lock: false, ops: [] }, 'defaults');
  t.equal(compileScenario(base([{ op: 'probe' }], { rlimit_kb: null }), 'f').rlimit_kb, null, 'rlimit_kb null = unlimited');

  // "L" tracks CPU hotplug; "each" and round-robin use the online CPUs.
  const h = compileScenario(
    base([
      { op: 'cpu', cpu: 3, online: false },
      { op: 'cpu', cpu: 1, online: false },
      { op: 'ballast', via: 'perf', pages: 'L' },
      { op: 'map', buf: 'a', cpu: 'each', data_pages: 2 },
      { op: 'map', buf: 'b', cpu: 'round-robin', count: 3, data_pages: 2 },
      { op: 'cpu', cpu: 1, online: true },
      { op: 'map', buf: 'c', cpu: 1, data_pages: 2 },
    ], { cpus: 4, mlock_kb: 100 }),
    'hp.json',
  );
  const bal = h.ops[2]!;
  t.ok(bal.op === 'ballast' && bal.via === 'perf' && bal.buffers.reduce((n, d) => n + d + 1, 0) === userLockLimit(100, 2), '"L" with 2 of 4 CPUs online');
  t.strictSame(h.ops.slice(3, 8).map((o) => (o.op === 'map' ? `${o.buf}@${o.cpu}` : '')), ['a0@0', 'a1@2', 'b0@0', 'b1@2', 'b2@0']);

  // Large ballasts are split into buffers of at most 65536 data pages.
  t.strictSame(cappedBallastBuffers(32886), ballastBuffers(32886));
  t.strictSame(cappedBallastBuffers(131073), ballastBuffers(131073));
  const big = cappedBallastBuffers(1_000_000);
  t.equal(big.reduce((n, d) => n + d + 1, 0), 1_000_000);
  t.ok(big.every((d) => d <= 65536));
  t.end();
});

t.test('the worked example of harness/scenarios/README.md compiles as documented', (t) => {
  const md = readFileSync(join(BUILTIN_SCENARIO_DIR, 'README.md'), 'utf8');
  const block = /```json\n([\s\S]*?)\n```/.exec(md);
  t.ok(block, 'README has a json example');
  const s = compileScenario(JSON.parse(block![1]!), 'README.md');
  t.equal(s.ops.length, 10);
  t.strictSame(toScript(s, 1).split('\n').slice(1, 11).map((l) => l.replace(/^ballast perf .*/, 'ballast perf')), [
    'probe', 'ballast perf', 'sysctl mlock_kb 260', 'map a0 0 2', 'map a1 1 2', 'map a2 0 2', 'map a3 1 2', 'probe', 'unmap *', 'probe',
  ]);
  const b = s.ops[1]!;
  t.ok(b.op === 'ballast' && b.via === 'perf' && b.buffers.reduce((n, d) => n + d + 1, 0) === 258, 'ballast of L = 258 pages');
  t.equal(classesLabel(logicClasses(s)), cls(both('V0'), both('V1', 'V1a', 'V1b', 'V3', 'V4'), both('V2')), 'tells V2 and V0 from the rest');
  t.end();
});

t.test('scenarioHash: canonical, sugar- and key-order-independent, content-sensitive', (t) => {
  const a = compileScenario(base([{ op: 'map', buf: 'b', cpu: 'round-robin', count: 2, data_pages: 2 }]), 'a');
  const b = compileScenario(
    { ops: [{ data_pages: 2, cpu: 0, buf: 'b0', op: 'map' }, { op: 'map', buf: 'b1', cpu: 1, data_pages: 2 }], cpus: 2, mlock_kb: 516, description: 'other words', id: 't' },
    'b',
  );
  t.equal(scenarioHash(a), scenarioHash(b));
  t.not(scenarioHash(a), scenarioHash({ ...a, rlimit_kb: 8196 }));
  t.equal(canonicalJson({ b: 1, a: [true, null, -0, 'x'], c: undefined }), '{"a":[true,null,0,"x"],"b":1}');
  t.equal(scenarioHash(get('incident')), scenarioHash(JSON.parse(JSON.stringify(get('incident'))) as CompiledScenario));
  t.end();
});

// ---------------------------------------------------------------------------
// Bad inputs: each a ConfigError naming the field

const mapOp = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ op: 'map', buf: 'a', cpu: 0, data_pages: 2, ...over });
const BAD: [string, unknown, string][] = [
  // issue 14 ops
  ['uring of 0 pages', base([{ op: 'uring', pages: 0 }]), 'ops[0].pages'],
  ['uring without pages', base([{ op: 'uring' }]), 'ops[0].pages'],
  ['unknown ballast kind', base([{ op: 'ballast', via: 'secretmem', pages: 1 }]), 'ops[0].via'],
  ['memfd_secret ballast with buffers', base([{ op: 'ballast', via: 'memfd_secret', buffers: [1] }]), 'ops[0].buffers'],
  ['unmap_part of a header-only buffer', base([mapOp({ data_pages: 0 }), { op: 'unmap_part', buf: 'a' }]), 'ops[1].buf'],
  ['unmap_part of nothing', base([{ op: 'unmap_part', buf: 'a' }]), 'ops[0].buf'],
  ['map_output to nothing', base([{ op: 'map_output', buf: 'c', to: 'a' }]), 'ops[0].to'],
  ['map_output onto an open name', base([mapOp(), { op: 'map_output', buf: 'a', to: 'a' }]), 'ops[1].buf'],
  ['remap of a map_output buffer', base([mapOp(), { op: 'map_output', buf: 'c', to: 'a' }, { op: 'remap', buf: 'c' }]), 'ops[2].buf'],
  ['unmap of a map_output buffer by name', base([mapOp(), { op: 'map_output', buf: 'c', to: 'a' }, { op: 'unmap', buf: 'c' }]), 'ops[2].buf'],
  // issue 14 item 4: the uid's last exit, uid 0
  ['exit last while a helper lives', base([{ op: 'ballast', via: 'perf', buffers: [] }, { op: 'exit', last: true }]), 'ops[1].last'],
  ['exit with no helper and no "last"', base([mapOp(), { op: 'exit' }]), 'ops[1].op'],
  ['exit last as a string', base([{ op: 'exit', last: 'yes' }]), 'ops[0].last'],
  ['uid neither fresh nor root', base([{ op: 'probe' }], { uid: 0 }), 'uid'],
  ['uid misspelt', base([{ op: 'probe' }], { uid: 'roots' }), 'uid'],
  // issue 18 AUX ops
  ['aux_map on a plain map buffer', base([mapOp(), { op: 'aux_map', buf: 'a', pages: 4 }]), 'ops[1].buf'],
  ['aux_map of 3 pages', base([{ op: 'aux_ring', buf: 'a', cpu: 0, data_pages: 1 }, { op: 'aux_map', buf: 'a', pages: 3 }]), 'ops[1].pages'],
  ['aux_unmap before any aux_map', base([{ op: 'aux_ring', buf: 'a', cpu: 0, data_pages: 1 }, { op: 'aux_unmap', buf: 'a' }]), 'ops[1].buf'],
  ['aux_map after the ring is unmapped', base([{ op: 'aux_ring', buf: 'a', cpu: 0, data_pages: 1 }, { op: 'unmap', buf: 'a' }, { op: 'aux_map', buf: 'a', pages: 4 }]), 'ops[2].buf'],
  ['aux_ring on a CPU the scenario lacks', base([{ op: 'aux_ring', buf: 'a', cpu: 5, data_pages: 1 }]), 'ops[0].cpu'],
  ['not an object', [], ''],
  ['null', null, ''],
  ['unknown top field', base([{ op: 'probe' }], { cpu: 2 }), 'cpu'],
  ['__proto__ key', JSON.parse('{"id":"t","description":"d","cpus":2,"ops":[{"op":"probe"}],"__proto__":{"x":1}}'), '__proto__'],
  ['missing id', { description: 'd', cpus: 2, ops: [{ op: 'probe' }] }, 'id'],
  ['bad id', base([{ op: 'probe' }], { id: 'has space' }), 'id'],
  ['id too long', base([{ op: 'probe' }], { id: 'x'.repeat(65) }), 'id'],
  ['id with shell metachar', base([{ op: 'probe' }], { id: 'a;rm' }), 'id'],
  ['missing description', { id: 't', cpus: 2, ops: [{ op: 'probe' }] }, 'description'],
  ['empty description', base([{ op: 'probe' }], { description: '  ' }), 'description'],
  ['description with newline', base([{ op: 'probe' }], { description: 'a\nb' }), 'description'],
  ['description with escape', base([{ op: 'probe' }], { description: 'a\u001b[31m' }), 'description'],
  ['description too long', base([{ op: 'probe' }], { description: 'x'.repeat(201) }), 'description'],
  ['missing cpus', { id: 't', description: 'd', ops: [{ op: 'probe' }] }, 'cpus'],
  ['cpus 0', base([{ op: 'probe' }], { cpus: 0 }), 'cpus'],
  ['cpus 257', base([{ op: 'probe' }], { cpus: 257 }), 'cpus'],
  ['cpus 2.5', base([{ op: 'probe' }], { cpus: 2.5 }), 'cpus'],
  ['cpus as string', base([{ op: 'probe' }], { cpus: '2' }), 'cpus'],
  ['cpus NaN', base([{ op: 'probe' }], { cpus: NaN }), 'cpus'],
  ['mlock_kb negative', base([{ op: 'probe' }], { mlock_kb: -1 }), 'mlock_kb'],
  ['mlock_kb above 2^30', base([{ op: 'probe' }], { mlock_kb: 2 ** 30 + 1 }), 'mlock_kb'],
  ['paranoid 5', base([{ op: 'probe' }], { paranoid: 5 }), 'paranoid'],
  ['paranoid -2', base([{ op: 'probe' }], { paranoid: -2 }), 'paranoid'],
  ['rlimit_kb negative', base([{ op: 'probe' }], { rlimit_kb: -4 }), 'rlimit_kb'],
  ['rlimit_kb "inf"', base([{ op: 'probe' }], { rlimit_kb: 'inf' }), 'rlimit_kb'],
  ['cap_ipc_lock "yes"', base([{ op: 'probe' }], { cap_ipc_lock: 'yes' }), 'cap_ipc_lock'],
  ['cap_ipc_lock 1', base([{ op: 'probe' }], { cap_ipc_lock: 1 }), 'cap_ipc_lock'],
  ['ops missing', { id: 't', description: 'd', cpus: 2 }, 'ops'],
  ['ops not an array', base([], { ops: { op: 'probe' } }), 'ops'],
  ['ops empty', base([]), 'ops'],
  ['op not an object', base(['probe']), 'ops[0]'],
  ['sparse ops', base([{ op: 'probe' }, , { op: 'probe' }]), 'ops[1]'], // eslint-disable-line no-sparse-arrays
  ['op name missing', base([{ buf: 'a' }]), 'ops[0].op'],
  ['unknown op', base([{ op: 'mmap' }]), 'ops[0].op'],
  ['op name not a string', base([{ op: 3 }]), 'ops[0].op'],
  ['unknown op field', base([mapOp({ size: 3 })]), 'ops[0].size'],
  ['map missing data_pages', base([{ op: 'map', buf: 'a', cpu: 0 }]), 'ops[0].data_pages'],
  ['data_pages 3', base([{ op: 'probe' }, mapOp({ data_pages: 3 })]), 'ops[1].data_pages'],
  ['data_pages 131072', base([mapOp({ data_pages: 131072 })]), 'ops[0].data_pages'],
  ['data_pages negative', base([mapOp({ data_pages: -2 })]), 'ops[0].data_pages'],
  ['data_pages fractional', base([mapOp({ data_pages: 0.5 })]), 'ops[0].data_pages'],
  ['data_pages as string', base([mapOp({ data_pages: '2' })]), 'ops[0].data_pages'],
  ['cpu index = cpus', base([mapOp({ cpu: 2 })]), 'ops[0].cpu'],
  ['cpu index 300', base([mapOp({ cpu: 300 })]), 'ops[0].cpu'],
  ['cpu word', base([mapOp({ cpu: 'all' })]), 'ops[0].cpu'],
  ['map on an offline CPU', base([{ op: 'cpu', cpu: 1, online: false }, mapOp({ cpu: 1 })], { cpus: 4 }), 'ops[1].cpu'],
  ['cpu op beyond cpus', base([{ op: 'cpu', cpu: 2, online: false }]), 'ops[0].cpu'],
  ['offline CPU 0', base([{ op: 'cpu', cpu: 0, online: false }]), 'ops[0].cpu'],
  ['cpu op online not boolean', base([{ op: 'cpu', cpu: 1, online: 0 }]), 'ops[0].online'],
  ['count with "each"', base([mapOp({ cpu: 'each', count: 2 })]), 'ops[0].count'],
  ['round-robin without count', base([mapOp({ cpu: 'round-robin' })]), 'ops[0].count'],
  ['count 0', base([mapOp({ count: 0 })]), 'ops[0].count'],
  ['buffer name with blank', base([mapOp({ buf: 'a b' })]), 'ops[0].buf'],
  ['buffer name empty', base([mapOp({ buf: '' })]), 'ops[0].buf'],
  ['buffer name with semicolon', base([mapOp({ buf: 'a;b' })]), 'ops[0].buf'],
  ['buffer name "*" for map', base([mapOp({ buf: '*' })]), 'ops[0].buf'],
  ['buffer name too long', base([mapOp({ buf: 'b'.repeat(65) })]), 'ops[0].buf'],
  ['buffer name + index too long', base([mapOp({ buf: 'b'.repeat(64), count: 2 })]), 'ops[0].buf'],
  ['buffer name not a string', base([mapOp({ buf: 7 })]), 'ops[0].buf'],
  ['map of an open name', base([mapOp(), mapOp()]), 'ops[1].buf'],
  ['map count collides', base([mapOp({ buf: 'b1' }), mapOp({ buf: 'b', count: 3 })]), 'ops[1].buf'],
  ['remap of a buffer never mapped', base([{ op: 'remap', buf: 'a' }]), 'ops[0].buf'],
  ['unmap of a buffer never mapped', base([mapOp(), { op: 'unmap', buf: 'b' }]), 'ops[1].buf'],
  ['unmap twice', base([mapOp(), { op: 'unmap', buf: 'a' }, { op: 'unmap', buf: 'a' }]), 'ops[2].buf'],
  ['remap after unmap *', base([mapOp(), { op: 'unmap', buf: '*' }, { op: 'remap', buf: 'a' }]), 'ops[2].buf'],
  ['remap count 0', base([mapOp(), { op: 'remap', buf: 'a', count: 0 }]), 'ops[1].count'],
  ['ballast without via', base([{ op: 'ballast', pages: 3 }]), 'ops[0].via'],
  ['ballast via xdp', base([{ op: 'ballast', via: 'xdp', pages: 3 }]), 'ops[0].via'],
  ['ballast pages negative', base([{ op: 'ballast', via: 'perf', pages: -1 }]), 'ops[0].pages'],
  ['ballast pages fractional', base([{ op: 'ballast', via: 'perf', pages: 1.5 }]), 'ops[0].pages'],
  ['ballast pages word', base([{ op: 'ballast', via: 'perf', pages: 'lots' }]), 'ops[0].pages'],
  ['ballast pages "L*2"', base([{ op: 'ballast', via: 'perf', pages: 'L*2' }]), 'ops[0].pages'],
  ['ballast "L-N" below 0', base([{ op: 'ballast', via: 'perf', pages: 'L-999' }]), 'ops[0].pages'],
  ['ballast pages too many', base([{ op: 'ballast', via: 'io_uring', pages: 2 ** 23 }]), 'ops[0].pages'],
  ['perf ballast pages and buffers', base([{ op: 'ballast', via: 'perf', pages: 3, buffers: [2] }]), 'ops[0].buffers'],
  ['perf ballast neither', base([{ op: 'ballast', via: 'perf' }]), 'ops[0].pages'],
  ['io_uring ballast with buffers', base([{ op: 'ballast', via: 'io_uring', buffers: [2] }]), 'ops[0].buffers'],
  ['ballast buffers bad entry', base([{ op: 'ballast', via: 'perf', buffers: [2, 3] }]), 'ops[0].buffers[1]'],
  ['ballast buffers not an array', base([{ op: 'ballast', via: 'perf', buffers: 2 }]), 'ops[0].buffers'],
  ['sysctl name not allowed', base([{ op: 'sysctl', name: 'perf_event_max_sample_rate', value: 1 }]), 'ops[0].name'],
  ['sysctl name with prefix', base([{ op: 'sysctl', name: 'kernel.perf_event_mlock_kb', value: 1 }]), 'ops[0].name'],
  ['sysctl paranoid out of range', base([{ op: 'sysctl', name: 'perf_event_paranoid', value: 7 }]), 'ops[0].value'],
  ['sysctl mlock_kb out of range', base([{ op: 'sysctl', name: 'perf_event_mlock_kb', value: 2 ** 31 }]), 'ops[0].value'],
  ['sysctl missing value', base([{ op: 'sysctl', name: 'perf_event_mlock_kb' }]), 'ops[0].value'],
  ['rlimit as string', base([{ op: 'rlimit', memlock_kb: '64' }]), 'ops[0].memlock_kb'],
  ['rlimit missing', base([{ op: 'rlimit' }]), 'ops[0].rlimit_memlock_kb'],
  ['old and new name together', base([{ op: 'probe' }], { rlimit_kb: 64, rlimit_memlock_kb: 64 }), 'rlimit_kb'],
  ['probe with a field', base([{ op: 'probe', count: 2 }]), 'ops[0].count'],
  ['hang without fault_injection', base([{ op: 'hang', seconds: 1 }]), 'ops[0].op'],
  ['sysrq without fault_injection', base([{ op: 'sysrq', key: 'c' }]), 'ops[0].op'],
  ['sysrq key too long', base([{ op: 'sysrq', key: 'cc' }], { fault_injection: true }), 'ops[0].key'],
  ['sysrq key metachar', base([{ op: 'sysrq', key: '&' }], { fault_injection: true }), 'ops[0].key'],
  ['hang too long', base([{ op: 'hang', seconds: 86400 }], { fault_injection: true }), 'ops[0].seconds'],
  ['too many compiled ops (map)', base([mapOp({ buf: 'a', count: 15000 }), mapOp({ buf: 'b', count: 6000 })]), 'ops[1]'],
  ['too many compiled ops (remap)', base([mapOp(), { op: 'remap', buf: 'a', count: 20000 }]), 'ops[1]'],
  ['count too large', base([mapOp({ count: 20001 })]), 'ops[0].count'],
];

t.test('descriptions are prose: they never reach a shell, so # ( ) ; $ ` are allowed (#16 item 7)', (t) => {
  for (const d of ['cites issue #25 (samply); see the report', 'see $(reboot) and `id`: shown, never run']) {
    t.equal(validateScenario(base([{ op: 'probe' }], { description: d }), 'x.json').description, d, d);
  }
  // ids and buffer names keep the shell rule
  t.throws(() => compileScenario(base([{ op: 'probe' }], { id: 'a#b' }), 'x.json'), /x\.json: id: id contains the shell metacharacter "#"/);
  t.end();
});

t.test('bad inputs: a ConfigError naming the file, the field and a fix', (t) => {
  for (const [what, obj, field] of BAD) {
    let err: unknown;
    try {
      compileScenario(obj, 'bad.json');
    } catch (e) {
      err = e;
    }
    if (!(err instanceof ConfigError)) {
      t.fail(`${what}: expected a ConfigError, got ${err === undefined ? 'success' : String(err)}`);
      continue;
    }
    t.equal(err.file, 'bad.json', `${what}: file`);
    t.equal(err.field, field, `${what}: field ${field}`);
    if (field !== '') t.ok(err.message.includes(`bad.json: ${field}: `), `${what}: message names ${field}`);
    t.ok(err.fix.length > 5, `${what}: has a fix`);
    t.notOk(/[\u0000-\u001f]/.test(err.message), `${what}: message is one printable line`); // eslint-disable-line no-control-regex
  }
  t.end();
});

/** The ConfigError `fn` throws (fails the test on anything else). */
function configError(t: Test, fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    t.fail(`expected a ConfigError, got ${String(e)}`);
    return new ConfigError('', '', '', '');
  }
  t.fail('expected a ConfigError, got success');
  return new ConfigError('', '', '', '');
}

t.test('old field names (mlock_kb, rlimit_kb, rlimit memlock_kb) load to the same scenario, with one notice each (#11 item 8)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-scen-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ops = [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }];
  const oldFile = join(dir, 'old.json');
  const newFile = join(dir, 'new.json');
  writeFileSync(oldFile, JSON.stringify(base([...ops, { op: 'rlimit', memlock_kb: 32 }], { mlock_kb: 260, rlimit_kb: 64 })));
  writeFileSync(newFile, JSON.stringify(base([...ops, { op: 'rlimit', rlimit_memlock_kb: 32 }], { perf_event_mlock_kb: 260, rlimit_memlock_kb: 64 })));
  const notices: string[] = [];
  const old = loadScenarioFile(oldFile, (l) => notices.push(l));
  const now = loadScenarioFile(newFile, (l) => notices.push(`unexpected: ${l}`));
  t.strictSame(old.compiled, now.compiled, 'same compiled scenario');
  t.equal(old.hash, now.hash, 'same hash');
  t.equal(old.compiled.mlock_kb, 260);
  t.equal(old.compiled.rlimit_kb, 64);
  t.strictSame(notices, [
    `${oldFile}: mlock_kb: "mlock_kb" is deprecated; use "perf_event_mlock_kb" (the kernel's name)`,
    `${oldFile}: rlimit_kb: "rlimit_kb" is deprecated; use "rlimit_memlock_kb" (the kernel's name)`,
    `${oldFile}: ops[1].memlock_kb: "memlock_kb" is deprecated; use "rlimit_memlock_kb" (the kernel's name)`,
  ]);
  // an error in an old-named field names it as written
  t.throws(() => compileScenario(base([{ op: 'probe' }], { mlock_kb: -1 }), 'o.json'), /^o\.json: mlock_kb: perf_event_mlock_kb -1 is out of range/);
  // by default the notice is one line on stderr
  // (in this process: what the default sink writes to process.stderr while the file loads, synchronously)
  const r = { status: 0 as number, stderr: '' };
  const realErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((c: string | Uint8Array) => { r.stderr += String(c); return true; }) as typeof process.stderr.write;
  try { loadScenarioFile(oldFile); } catch (e) { r.status = 1; r.stderr += String(e); } finally { process.stderr.write = realErr; }
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr.trim().split('\n').filter((l) => l.includes('deprecated')).length, 3, 'three notice lines on stderr');
  t.match(r.stderr, /lockstep: .*old\.json: mlock_kb: "mlock_kb" is deprecated; use "perf_event_mlock_kb"/);
  t.end();
});

t.test('loaders: files, directories, duplicate ids', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-scen-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = JSON.stringify(base([{ op: 'probe' }], { id: 'one' }));
  writeFileSync(join(dir, 'one.json'), good);
  writeFileSync(join(dir, 'notes.txt'), 'ignored');
  const list: LoadedScenario[] = loadScenarioDir(dir);
  t.strictSame(list.map((s) => s.id), ['one']);
  writeFileSync(join(dir, 'two.json'), good);
  let e = configError(t, () => loadScenarioDir(dir));
  t.equal(e.field, 'id');
  t.match(e.message, /duplicate scenario id "one" \(also in .*one\.json\)/);
  t.match(e.file, /two\.json$/);
  writeFileSync(join(dir, 'two.json'), '{"id": "two", oops}');
  e = configError(t, () => loadScenarioDir(dir));
  t.equal(e.field, '');
  t.match(e.message, /two\.json: is not valid JSON/);
  t.match(configError(t, () => loadScenarioFile(join(dir, 'missing.json'))).message, /cannot be read \(ENOENT\)/);
  t.match(configError(t, () => loadScenarioFile(dir)).message, /not a regular file/);
  t.match(configError(t, () => loadScenarioDir(join(dir, 'nope'))).message, /cannot be listed \(ENOENT\)/);
  t.end();
});

// ---------------------------------------------------------------------------
// Property: random and mutated scenario objects


/** A random scenario object that is valid by construction (the generator tracks open buffers and online CPUs). */
function genValid(r: () => number): Record<string, unknown> {
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const cpus = pick([1, 2, 2, 4, 8, 36]);
  const online = Array.from({ length: cpus }, () => true);
  const open = new Set<string>();
  let name = 0;
  const ops: Record<string, unknown>[] = [];
  const n = int(1, 25);
  for (let k = 0; k < n; k++) {
    const up = online.flatMap((on, c) => (on ? [c] : []));
    const kind = pick(['map', 'map', 'map', 'remap', 'unmap', 'probe', 'ballast', 'rlimit', 'sysctl', 'cpu']);
    const dp = pick([0, 1, 2, 2, 4, 64]);
    if (kind === 'map') {
      const style = pick(['one', 'count', 'each', 'rr']);
      const buf = `b${name++}-`;
      if (style === 'one') {
        ops.push({ op: 'map', buf, cpu: pick(up), data_pages: dp });
        open.add(buf);
      } else if (style === 'each') {
        ops.push({ op: 'map', buf, cpu: 'each', data_pages: dp });
        up.forEach((_, j) => open.add(`${buf}${j}`));
      } else {
        const count = int(1, 6);
        ops.push({ op: 'map', buf, cpu: style === 'rr' ? 'round-robin' : pick(up), count, data_pages: dp });
        for (let j = 0; j < count; j++) open.add(`${buf}${j}`);
      }
    } else if ((kind === 'remap' || kind === 'unmap') && open.size > 0) {
      const buf = pick([...open]);
      if (kind === 'remap') ops.push(r() < 0.5 ? { op: 'remap', buf } : { op: 'remap', buf, count: int(1, 5) });
      else if (r() < 0.3) {
        ops.push({ op: 'unmap', buf: '*' });
        open.clear();
      } else {
        ops.push({ op: 'unmap', buf });
        open.delete(buf);
      }
    } else if (kind === 'ballast') {
      const via = pick(['perf', 'io_uring']);
      const pages = r() < 0.5 ? int(0, 2000) : pick(['L', 'L+5', 'L-0', 'L+100']);
      ops.push(via === 'perf' && r() < 0.2 ? { op: 'ballast', via, buffers: [pick([0, 1, 8]), 2] } : { op: 'ballast', via, pages });
    } else if (kind === 'rlimit') ops.push({ op: 'rlimit', memlock_kb: r() < 0.2 ? null : int(0, 8192) });
    else if (kind === 'sysctl') {
      ops.push(r() < 0.5 ? { op: 'sysctl', name: 'perf_event_mlock_kb', value: int(0, 1024) } : { op: 'sysctl', name: 'perf_event_paranoid', value: int(-1, 4) });
    } else if (kind === 'cpu' && cpus > 1) {
      const c = int(1, cpus - 1);
      online[c] = r() < 0.5;
      ops.push({ op: 'cpu', cpu: c, online: online[c] });
    } else ops.push({ op: 'probe' });
  }
  const s: Record<string, unknown> = { id: `rand-${int(0, 99999)}`, description: 'random scenario', cpus, ops };
  if (r() < 0.5) s.mlock_kb = int(0, 2048);
  if (r() < 0.3) s.paranoid = int(-1, 4);
  if (r() < 0.5) s.rlimit_kb = r() < 0.2 ? null : int(0, 8192);
  if (r() < 0.3) s.cap_ipc_lock = r() < 0.5;
  return s;
}

const JUNK: readonly unknown[] = [
  null, undefined, true, false, 0, -0, -1, 1, 2, 3, 7, 0.5, -1.5, 255, 256, 257, 65536, 65537, 2 ** 30, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, NaN, Infinity, -Infinity,
  '', ' ', 'a', '*', 'L', 'L+', 'L-1', 'L+999999999', 'each', 'round-robin', 'perf', 'io_uring', 'map', 'probe', 'unmap', 'remap', 'cpu',
  'perf_event_mlock_kb', 'perf_event_paranoid', '$(reboot)', 'a\nb', '\u0000', '\u2028', 'x'.repeat(300), '__proto__', 'constructor',
  [], [1], [3], [null], {}, { op: 'probe' }, { op: 'map' }, Object.create(null), new Date(0), 10n, Symbol('s'), () => 1,
];

/** Apply one random mutation somewhere in the (already cloned) object tree. */
function mutate(obj: unknown, r: () => number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  if (r() < 0.05) return pick(JUNK);
  // Collect containers.
  const spots: (Record<string, unknown> | unknown[])[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth > 6 || typeof v !== 'object' || v === null) return;
    if (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype) {
      spots.push(v as Record<string, unknown>);
      for (const x of Object.values(v)) walk(x, depth + 1);
    }
  };
  walk(obj, 0);
  if (spots.length === 0) return pick(JUNK);
  const c = pick(spots);
  const keys = Object.keys(c);
  const fields = ['op', 'buf', 'cpu', 'count', 'data_pages', 'pages', 'buffers', 'via', 'name', 'value', 'memlock_kb', 'online', 'seconds', 'key', 'id', 'cpus', 'ops', 'rlimit_kb', 'mlock_kb', 'paranoid', 'cap_ipc_lock', 'fault_injection', 'description', 'bogus'];
  const m = r();
  if (Array.isArray(c)) {
    if (m < 0.3 && c.length > 0) c.splice(Math.floor(r() * c.length), 1);
    else if (m < 0.5) c.push(pick(JUNK));
    else if (m < 0.6 && c.length > 0) c.push(structuredClone(pick(c)));
    else if (c.length > 0) c[Math.floor(r() * c.length)] = pick(JUNK);
    else c.push({ op: pick(['probe', 'map', 'remap', 'unmap']), buf: 'zz' });
  } else if (m < 0.25 && keys.length > 0) delete c[pick(keys)];
  else if (m < 0.75 && keys.length > 0) c[pick(keys)] = pick(JUNK);
  else c[pick(fields)] = pick(JUNK);
  return obj;
}

/** One line of the reproducer's op script grammar (harness/PROTOCOL.md). */
function protocolLine(line: string): boolean {
  const N = '(?:0|[1-9][0-9]*)';
  const ID = '[A-Za-z0-9_.-]{1,64}';
  const res = [
    `begin ${ID} uid=${N} cpus=${N} mlock_kb=${N} paranoid=-?${N} rlimit_kb=(?:${N}|inf) cap_ipc_lock=[01]`,
    `sysctl mlock_kb ${N}`,
    `sysctl paranoid -?${N}`,
    `rlimit (?:${N}|inf)`,
    `ballast perf(?:(?: ${N})+| )`,
    `ballast io_uring ${N}`,
    `ballast bpf ${N}`,
    `ballast memfd_secret ${N}`,
    `uring [1-9][0-9]*`,
    `unmap_part ${ID}`,
    `map_output ${ID} ${ID}`,
    'exit(?: last)?',
    `map ${ID} ${N} ${N}`,
    `handoff ${ID} ${N} ${N}`,
    `kill_helper (?:${N}|\\*)`,
    'cap_ipc_lock [01]',
    `remap ${ID}`,
    `unmap (?:${ID}|\\*)`,
    'probe',
    `cpu ${N} [01]`,
    `hang ${N}`,
    'sysrq [A-Za-z0-9]',
    `aux_ring ${ID} ${N} ${N}`,
    `aux_map ${ID} [1-9][0-9]*`,
    `aux_unmap ${ID}`,
    'end',
  ];
  return res.some((re) => new RegExp(`^${re}$`).test(line));
}

t.test('property: 2000 random and mutated scenario objects', (t) => {
  const r = prng(0x10c5_7e9);
  let valid = 0;
  let rejected = 0;
  let slowest = 0;
  const started = performance.now();
  const problems: string[] = [];
  for (let k = 0; k < 2000; k++) {
    const v = genValid(r);
    const mutations = k % 4 === 0 ? 0 : 1 + Math.floor(r() * 3);
    let obj: unknown = v;
    if (mutations > 0) {
      obj = structuredClone(v);
      for (let j = 0; j < mutations; j++) obj = mutate(obj, r);
    }
    const t0 = performance.now();
    let s: CompiledScenario | undefined;
    try {
      s = compileScenario(obj, `gen-${k}.json`);
    } catch (e) {
      if (!(e instanceof ConfigError)) problems.push(`#${k}: ${e instanceof Error ? e.stack : String(e)}`);
      else if (e.field !== '' && !e.message.includes(`: ${e.field}: `)) problems.push(`#${k}: message lacks field ${e.field}: ${e.message}`);
      rejected++;
    }
    if (mutations === 0 && s === undefined) problems.push(`#${k}: a valid scenario was rejected: ${JSON.stringify(v)}`);
    if (s !== undefined) {
      valid++;
      if (s.ops.length > SCENARIO_LIMITS.maxOps) problems.push(`#${k}: ${s.ops.length} ops`);
      // What compiles must run: the simulator meets no script error, the reproducer no bad line.
      for (const l of ALL_LOGICS) {
        try {
          simulate(s, l);
        } catch (e) {
          problems.push(`#${k} ${logicLabel(l)}: ${String(e)}`);
          break;
        }
      }
      if (s.ops.length < 5000) {
        for (const line of toScript(s, 3000000).trimEnd().split('\n')) {
          if (!protocolLine(line)) {
            problems.push(`#${k}: bad script line ${JSON.stringify(line)}`);
            break;
          }
        }
      }
      try {
        scenarioHash(s);
      } catch (e) {
        problems.push(`#${k}: scenarioHash: ${String(e)}`);
      }
    }
    slowest = Math.max(slowest, performance.now() - t0);
  }
  const total = performance.now() - started;
  t.strictSame(problems.slice(0, 10), [], 'no non-ConfigError exception, no rejected valid scenario, everything compiled runs');
  t.ok(valid > 500 && rejected > 500, `both outcomes exercised (${valid} compiled, ${rejected} rejected)`);
  t.ok(slowest < 2000, `slowest single case ${slowest.toFixed(1)} ms`);
  t.ok(total < 120_000, `total ${(total / 1000).toFixed(1)} s`);
  t.end();
});
