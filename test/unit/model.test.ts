import t from 'tap';
import { prng } from '../lib/prng.ts';
import { type CompiledScenario, type Op, ballastBuffers, mappingPages, userLockLimit } from '../../src/scenario/ops.ts';
import {
  ALL_LOGICS,
  type Accounting,
  type ExpectedOp,
  type Logic,
  PROBE_MAX_PAGES,
  RLIM_INFINITY_PAGES,
  ScriptError,
  logicLabel,
  parseLogic,
  simulate,
  splitV0,
  splitV1,
  splitV2,
  splitV3,
  splitV4,
} from '../../src/model/index.ts';

const MiB_KB = 1024;
const shared = (accounting: Accounting): Logic => ({ accounting, counter: 'shared' });

const scenario = (ops: Op[], over: Partial<CompiledScenario> = {}): CompiledScenario => ({
  id: 't',
  cpus: 4,
  mlock_kb: 516, // L = 129 * 4 = 516 pages
  paranoid: 2,
  rlimit_kb: null,
  cap_ipc_lock: false,
  ops,
  ...over,
});

const maps = (count: number, dataPages = 2, prefix = 'b', cpus = 36): Op[] =>
  Array.from({ length: count }, (_, k): Op => ({ op: 'map', buf: `${prefix}${k}`, cpu: k % cpus, data_pages: dataPages }));

const mapIdx = (s: CompiledScenario): number[] => s.ops.flatMap((o, i) => (o.op === 'map' ? [i] : []));
const firstEperm = (s: CompiledScenario, e: ExpectedOp[]): number | null => {
  const k = mapIdx(s).findIndex((i) => e[i]!.errno === 'EPERM');
  return k < 0 ? null : k + 1;
};

// ---------------------------------------------------------------------------
// The incident (shared/incident.md)

const INCIDENT_U = 32886;
const incident = (rlimit_kb: number | null, ballast: Op, over: Partial<CompiledScenario> = {}): CompiledScenario =>
  scenario([ballast, ...maps(36)], { id: 'incident', cpus: 36, mlock_kb: 516, rlimit_kb, ...over });
const perfBallast: Op = { op: 'ballast', via: 'perf', buffers: ballastBuffers(INCIDENT_U) };
const uringBallast: Op = { op: 'ballast', via: 'io_uring', pages: INCIDENT_U };

// The kprobe's rows: call, user_locked, extra, pinned_vm before, locked, result.
const TABLE: [number, number, number, number, number, 'ok' | 'EPERM'][] = [
  [1, 32889, 28245, 0, 28245, 'ok'],
  [2, 32892, 28248, 28245, 56493, 'ok'],
  [3, 32895, 28251, 56493, 84744, 'ok'],
  [4, 32898, 28254, 84744, 112998, 'ok'],
  [5, 32901, 28257, 112998, 141255, 'EPERM'],
  [6, 32904, 28260, 141255, 169515, 'EPERM'],
];

t.test('incident: the kprobe table under V0 (RLIMIT 512 MiB, 36 CPUs, mlock_kb 516)', (t) => {
  const s = incident(512 * MiB_KB, perfBallast);
  const e = simulate(s, shared('V0'));
  t.equal(e[0]!.user, INCIDENT_U, 'the perf ballast leaves U at exactly 32886 pages');
  t.equal(e[0]!.pinned, 0, 'the ballast does not touch the worker');
  const idx = mapIdx(s);
  for (const [call, userLocked, extra, pinnedBefore, locked, result] of TABLE.slice(0, 5)) {
    const r = e[idx[call - 1]!]!;
    t.strictSame(
      r.check,
      { userLocked, extra, pinnedBefore, locked, lockLimit: 131072, userLockLimit: 4644 },
      `call ${call}: check values`,
    );
    t.equal(r.ok, result === 'ok', `call ${call}: ${result}`);
    t.equal(r.errno, result === 'ok' ? '' : 'EPERM', `call ${call}: errno`);
  }
  t.equal(firstEperm(s, e), 5, 'first EPERM at call 5');
  // After the refused call 5, nothing changed: P and U are still those after call 4.
  t.equal(e[idx[4]!]!.pinned, 112998);
  t.equal(e[idx[4]!]!.user, 32898);
  // Every later call is refused too: the program could never start.
  t.ok(idx.slice(4).every((i) => e[i]!.errno === 'EPERM'), 'calls 5..36 all EPERM');
  t.end();
});

t.test('incident: call 6 row (what the kprobe printed as if call 5 had been admitted)', (t) => {
  // The table's call-6 row cannot come from the real run: the kernel refused
  // call 5, so P stayed at 112998. The kprobe printed what the check would
  // compute had call 5 been admitted (P before = 141255, U = 32904). To
  // reproduce it, run the same workload with an RLIMIT large enough (1 GiB =
  // 262144 pages) that call 5 is admitted, and read call 6's check values.
  const s = incident(1024 * MiB_KB, perfBallast);
  const e = simulate(s, shared('V0'));
  const idx = mapIdx(s);
  for (const [call, userLocked, extra, pinnedBefore, locked] of TABLE) {
    t.strictSame(
      e[idx[call - 1]!]!.check,
      { userLocked, extra, pinnedBefore, locked, lockLimit: 262144, userLockLimit: 4644 },
      `call ${call} admitted under 1 GiB: check values`,
    );
  }
  t.equal(e[idx[5]!]!.ok, true, 'call 6 is admitted under 1 GiB');
  t.equal(e[idx[5]!]!.pinned, 169515);
  t.end();
});

t.test('incident: raising RLIMIT 2/4/7/10x does not help under V0; CAP_IPC_LOCK and mlock_kb = 512 MiB do', (t) => {
  // P after k admitted calls = 28245k + 3k(k-1)/2; the first EPERM is the first k with P_k > R.
  const expectFirst: Record<number, number | null> = { 1: 5, 2: 10, 4: 19, 7: 33, 10: null };
  for (const f of [1, 2, 4, 7, 10]) {
    const R = f * 131072;
    let P = 0;
    let want: number | null = null;
    for (let k = 1; k <= 36 && want === null; k++) {
      P += 28245 + 3 * (k - 1);
      if (P > R) want = k;
    }
    t.equal(want, expectFirst[f], `closed form for ${f} x 512 MiB`);
    const s = incident(f * 512 * MiB_KB, perfBallast);
    t.equal(firstEperm(s, simulate(s, shared('V0'))), want, `${f} x 512 MiB: first EPERM at call ${want}`);
  }
  // Note: with one 3-page buffer per CPU on 36 CPUs, 10 x 512 MiB (1310720 pages) admits all
  // 36 calls (P_36 = 1018710); the incident's program must have mapped more than that.
  const cap = incident(512 * MiB_KB, perfBallast, { cap_ipc_lock: true });
  t.equal(firstEperm(cap, simulate(cap, shared('V0'))), null, 'CAP_IPC_LOCK: no EPERM');
  const big = incident(512 * MiB_KB, perfBallast, { mlock_kb: 512 * MiB_KB });
  const eb = simulate(big, shared('V0'));
  t.equal(firstEperm(big, eb), null, 'perf_event_mlock_kb = 512 MiB: no EPERM');
  t.equal(eb.at(-1)!.pinned, 0, '... and nothing pinned at all');
  const par = incident(512 * MiB_KB, perfBallast, { paranoid: -1 });
  t.equal(firstEperm(par, simulate(par, shared('V0'))), null, 'paranoid -1: no EPERM');
  t.end();
});

t.test('incident: no EPERM under V1..V4 (either counter, either ballast)', (t) => {
  for (const logic of ALL_LOGICS) {
    if (logic.accounting === 'V0') continue;
    for (const ballast of [perfBallast, uringBallast]) {
      const s = incident(512 * MiB_KB, ballast);
      const e = simulate(s, logic);
      t.equal(firstEperm(s, e), null, `${logicLabel(logic)} with ${ballast.op === 'ballast' ? ballast.via : ''} ballast`);
    }
  }
  // With U = 32886 on the shared counter (io_uring ballast), V1/V3/V4 charge each call's 3 pages to P.
  // (A what-if: the reproducer's helpers have RLIMIT_MEMLOCK 8 MiB, so a 32886-page io_uring ballast
  // is refused with ENOMEM in every runtime; the incident's other root chargers had no such limit.)
  const s = incident(512 * MiB_KB, uringBallast);
  t.equal(simulate(s, shared('V3'))[0]!.errno, 'ENOMEM', 'under the helpers\' 8 MiB RLIMIT_MEMLOCK the ballast is refused');
  const open = { helperRlimitKb: null };
  for (const a of ['V1', 'V3', 'V4'] as const) {
    const e = simulate(s, shared(a), open);
    t.strictSame(mapIdx(s).slice(0, 4).map((i) => e[i]!.pinned), [3, 6, 9, 12], `${a}: VmPin grows by ue per call`);
    t.equal(e.at(-1)!.user, INCIDENT_U, `${a}: U untouched above L`);
  }
  // V2: the first call pulls the whole overage into P once, then ue per call.
  const e2 = simulate(s, shared('V2'), open);
  t.strictSame(mapIdx(s).slice(0, 3).map((i) => e2[i]!.pinned), [28245, 28248, 28251], 'V2: overage once, then ue');
  t.equal(e2[1]!.user, 4644, 'V2: U pulled down to L');
  // V0 with the io_uring ballast on the shared counter: the same table as with the perf ballast.
  const e0 = simulate(s, shared('V0'), open);
  t.equal(firstEperm(s, e0), 5);
  t.equal(e0[5]!.check!.locked, 141255);
  // On the perf-only counter io_uring does not count: U = 0, nothing spills.
  const ep = simulate(s, { accounting: 'V0', counter: 'perf' });
  t.equal(firstEperm(s, ep), null);
  t.equal(ep.at(-1)!.pinned, 0);
  t.end();
});

// ---------------------------------------------------------------------------
// The split functions

t.test('split functions: the formulas of kernel-history.md', (t) => {
  // L = 10
  t.strictSame(splitV0(4, 3, 10), { userLocked: 7, extra: 0, userCharge: 3 });
  t.strictSame(splitV0(9, 3, 10), { userLocked: 12, extra: 2, userCharge: 3 });
  t.strictSame(splitV0(20, 3, 10), { userLocked: 23, extra: 13, userCharge: 3 });
  t.strictSame(splitV1(4, 3, 10), { userLocked: 7, extra: 0, userCharge: 3 });
  t.strictSame(splitV1(9, 3, 10), { userLocked: 12, extra: 2, userCharge: 1 });
  t.strictSame(splitV1(10, 3, 10), { userLocked: 13, extra: 3, userCharge: 0 });
  t.strictSame(splitV1(20, 3, 10), { userLocked: 23, extra: 3, userCharge: 0 });
  t.strictSame(splitV2(9, 3, 10), { userLocked: 12, extra: 2, userCharge: 1 });
  t.strictSame(splitV2(20, 3, 10), { userLocked: 23, extra: 13, userCharge: -10 }, 'V2: negative ue\' above L');
  t.strictSame(splitV3(20, 3, 10), { userLocked: 13, extra: 3, userCharge: 0 }, 'V3: user_locked clamped');
  t.strictSame(splitV3(9, 3, 10), { userLocked: 12, extra: 2, userCharge: 1 });
  t.strictSame(splitV4(20, 3, 10), splitV3(20, 3, 10));
  const out = { userLocked: -1, extra: -1, userCharge: -1 };
  t.equal(splitV2(20, 3, 10, out), out, 'fills and returns the out object');
  t.strictSame(out, { userLocked: 23, extra: 13, userCharge: -10 });
  t.end();
});

t.test('V1 and V3 compute the same split for every ring-buffer mapping', (t) => {
  let cases = 0;
  for (let L = 0; L <= 40; L += 4) {
    for (let U = 0; U <= 60; U++) {
      for (const ue of [1, 2, 3, 5, 9, 17]) {
        const a = splitV1(U, ue, L);
        const b = splitV3(U, ue, L);
        if (a.extra !== b.extra || a.userCharge !== b.userCharge) t.fail(`U=${U} ue=${ue} L=${L}: V1 ${JSON.stringify(a)} V3 ${JSON.stringify(b)}`);
        if (a.extra < 0 || a.extra > ue) t.fail(`extra out of 0..ue at U=${U} ue=${ue} L=${L}`);
        cases++;
      }
    }
  }
  t.pass(`${cases} (U, ue, L) cases agree`);
  t.end();
});

t.test('logicLabel / parseLogic / ALL_LOGICS', (t) => {
  t.equal(logicLabel({ accounting: 'V3', counter: 'perf' }), 'V3/perf');
  t.equal(ALL_LOGICS.length, 14);
  t.equal(new Set(ALL_LOGICS.map(logicLabel)).size, 14);
  t.strictSame(parseLogic('V1a/shared'), { accounting: 'V1a', counter: 'shared' });
  for (const l of ALL_LOGICS) t.strictSame(parseLogic(logicLabel(l)), l);
  t.throws(() => parseLogic('V5/perf'));
  t.end();
});

t.test('a U below zero reads as unsigned in perf_mmap(): V1 and V3 pin the whole mapping', (t) => {
  // V1's AUX unmap can take U below zero; user_locked is an unsigned long.
  t.strictSame(splitV1(-20, 3, 10), { userLocked: -17, extra: 3, userCharge: 0 });
  t.strictSame(splitV1(-1, 3, 10), { userLocked: 2, extra: 0, userCharge: 3 }, 'back at or above zero: the sum wraps back');
  t.strictSame(splitV3(-20, 3, 10), { userLocked: 13, extra: 3, userCharge: 0 });
  t.end();
});

// ---------------------------------------------------------------------------
// AUX areas (aux_ring / aux_map / aux_unmap)

t.test('AUX unmap: V1 gives all back to U, V1a leaks U when pinned, V1b/V3 give back what was charged', (t) => {
  // 2 CPUs: L = 258. U = L - 4 by ballast, +2 by the ring: an 8-page area charges 2 to U and 6 to P.
  const s = scenario([
    { op: 'ballast', via: 'perf', buffers: ballastBuffers(254) },
    { op: 'aux_ring', buf: 'a', cpu: 0, data_pages: 1 },
    { op: 'aux_map', buf: 'a', pages: 8 },
    { op: 'aux_unmap', buf: 'a' },
    { op: 'probe' },
    { op: 'aux_map', buf: 'a', pages: 8 },
    { op: 'unmap', buf: 'a' },
  ], { cpus: 2 });
  const at = (a: Accounting) => simulate(s, shared(a));
  for (const a of ['V1', 'V1a', 'V1b', 'V3'] as const) t.strictSame([at(a)[2]!.pinned, at(a)[2]!.user], [6, 258], `${a}: the map splits 2 to U, 6 to P`);
  t.strictSame([at('V1')[3]!.pinned, at('V1')[3]!.user, at('V1')[4]!.headroom], [0, 250, 8], 'V1: U -= 8 (all of aux_nr_pages)');
  t.strictSame([at('V1a')[3]!.pinned, at('V1a')[3]!.user, at('V1a')[4]!.headroom], [0, 258, 0], 'V1a: P -= 6 only, U keeps 2');
  t.strictSame([at('V1b')[3]!.pinned, at('V1b')[3]!.user, at('V1b')[4]!.headroom], [0, 256, 2], 'V1b: U -= 2, P -= 6');
  t.strictSame(at('V3'), at('V1b'), 'V3 and V1b agree op by op');
  t.strictSame([at('V1')[5]!.pinned, at('V1a')[5]!.pinned, at('V1b')[5]!.pinned], [0, 8, 6], 'mapped again: the split follows the U each left');
  t.end();
});

t.test('V1b and V3 are one function (#18): no op sequence tells fix-1b (36b3db03b474) from fix-5 (003461559ef7)', (t) => {
  // The split: V3 clamps U to L before adding ue (003461559ef7), V1 branches on U >= L (d44248a41337):
  // for every U >= 0 they agree, on all three of userLocked' effects (extra, userCharge) and on the check.
  let grid = 0;
  for (const L of [0, 1, 9, 129, 258, 516]) {
    for (let U = 0; U <= L + 40; U++) {
      for (const ue of [1, 2, 3, 5, 9, 17, 129, 257, 1025]) {
        const a = splitV1(U, ue, L);
        const b = splitV3(U, ue, L);
        if (a.extra !== b.extra || a.userCharge !== b.userCharge) t.fail(`U ${U} ue ${ue} L ${L}: V1 ${JSON.stringify(a)} V3 ${JSON.stringify(b)}`);
        grid++;
      }
    }
  }
  t.ok(grid > 10_000, `${grid} (U, ue, L) points agree`);
  // U < 0 is where they could differ, and only V1's `all` AUX unmap makes one; V1b's `split` gives
  // back exactly what was charged. Random op sequences with AUX areas, sysctl and rlimit changes,
  // ballasts and exits: V1b and V3 predict the same for every op, on both counters, at 4 and 64 kB.
  const r = prng(0x36b3db03);
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  let differ = 0;
  let v1Differs = 0;
  let auxUnmaps = 0;
  const runs = 1500;
  for (let k = 0; k < runs; k++) {
    const cpus = pick([1, 2, 4]);
    const open = new Map<string, { aux: number; pages: number }>();
    const ops: Op[] = [{ op: 'ballast', via: 'perf', buffers: [] }];
    let name = 0;
    for (let n = int(1, 30); n > 0; n--) {
      const kind = pick(['map', 'aux_ring', 'aux_ring', 'aux_map', 'aux_map', 'aux_unmap', 'aux_unmap', 'remap', 'unmap', 'probe', 'ballast', 'sysctl', 'rlimit', 'exit']);
      const bufs = [...open.keys()];
      if (kind === 'map' || kind === 'aux_ring') {
        const buf = `b${name++}`;
        ops.push({ op: kind, buf, cpu: int(0, cpus - 1), data_pages: pick([1, 2, 8, 64, 128]) });
        open.set(buf, { aux: kind === 'aux_ring' ? 0 : -1, pages: 0 });
      } else if (kind === 'aux_map' && bufs.some((b) => open.get(b)!.aux >= 0)) {
        const buf = pick(bufs.filter((b) => open.get(b)!.aux >= 0));
        const st = open.get(buf)!;
        ops.push({ op: 'aux_map', buf, pages: st.aux > 0 ? st.pages : (st.pages = pick([1, 2, 4, 16, 64, 256])) });
        st.aux++;
      } else if (kind === 'aux_unmap' && bufs.some((b) => open.get(b)!.aux > 0)) {
        const buf = pick(bufs.filter((b) => open.get(b)!.aux > 0));
        ops.push({ op: 'aux_unmap', buf });
        open.get(buf)!.aux--;
        auxUnmaps++;
      } else if (kind === 'remap' && bufs.length) ops.push({ op: 'remap', buf: pick(bufs) });
      else if (kind === 'unmap' && bufs.length) {
        const buf = pick(bufs);
        ops.push({ op: 'unmap', buf });
        open.delete(buf);
      } else if (kind === 'probe') ops.push({ op: 'probe' });
      else if (kind === 'ballast') ops.push(r() < 0.5 ? { op: 'ballast', via: 'perf', buffers: ballastBuffers(int(0, 600)) } : { op: 'ballast', via: 'io_uring', pages: int(0, 300) });
      else if (kind === 'sysctl') ops.push({ op: 'sysctl', name: 'perf_event_mlock_kb', value: pick([0, 8, 260, 516, 1024]) });
      else if (kind === 'rlimit') ops.push({ op: 'rlimit', memlock_kb: pick([null, 0, 16, 64, 1024]) });
      else if (kind === 'exit') {
        ops.push({ op: 'exit' });
        open.clear();
      }
    }
    const s = scenario(ops, { cpus, rlimit_kb: pick([null, 64, 8192]) });
    for (const counter of ['shared', 'perf'] as const) {
      for (const pageKb of [4, 64]) {
        const a = simulate(s, { accounting: 'V1b', counter }, { pageKb });
        const b = simulate(s, { accounting: 'V3', counter }, { pageKb });
        // Everything but `check.userLocked`, the clamped value V3 compares (not observable): ok, errno, P, U, probes.
        const seen = (e: ExpectedOp[]): string => JSON.stringify(e.map(({ check: _c, ...rest }) => rest));
        if (seen(a) !== seen(simulate(s, { accounting: 'V1', counter }, { pageKb }))) v1Differs++;
        if (seen(a) !== seen(b)) {
          differ++;
          if (differ <= 3) t.fail(`run ${k} ${counter} ${pageKb} kB: V1b and V3 differ: ${JSON.stringify(ops)}`);
        }
      }
    }
  }
  t.equal(differ, 0, `${runs} random scenarios x 2 counters x 2 page sizes: V1b and V3 never differ`);
  t.ok(auxUnmaps > 300, `the sequences unmap AUX areas (${auxUnmaps} aux_unmap ops)`);
  t.ok(v1Differs > 50, `the same sequences do tell V1 (5e6c3c7b1ec2's parent) from V1b: ${v1Differs} of ${runs * 4}`);
  t.end();
});

t.test('AUX re-mmap while mapped: V4 charges U again, never given back; others charge nothing', (t) => {
  const s = scenario([
    { op: 'aux_ring', buf: 'a', cpu: 0, data_pages: 1 },
    { op: 'aux_map', buf: 'a', pages: 4 },
    { op: 'aux_map', buf: 'a', pages: 4 },
    { op: 'aux_unmap', buf: 'a' },
    { op: 'aux_unmap', buf: 'a' },
    { op: 'aux_map', buf: 'a', pages: 2 },
    { op: 'aux_unmap', buf: 'a' },
  ]);
  const v3 = simulate(s, shared('V3'));
  const v4 = simulate(s, shared('V4'));
  t.strictSame(v3.map((o) => o.user), [2, 6, 6, 6, 2, 4, 2]);
  t.strictSame(v4.map((o) => o.user), [2, 6, 10, 10, 6, 8, 6], 'V4 leaks the second mapping\'s 4 pages');
  const bad = scenario([{ op: 'aux_ring', buf: 'a', cpu: 0, data_pages: 1 }, { op: 'aux_map', buf: 'a', pages: 4 }, { op: 'aux_map', buf: 'a', pages: 8 }]);
  t.match(simulate(bad, shared('V3'))[2], { ok: false, errno: 'EINVAL' }, 'a second mapping of another size: EINVAL');
  const refused = scenario([{ op: 'aux_ring', buf: 'a', cpu: 0, data_pages: 1 }, { op: 'aux_unmap', buf: 'a' }]);
  t.match(simulate(refused, shared('V3'))[1], { ok: false, errno: 'EINVAL' }, 'aux_unmap with no live AUX mapping: EINVAL');
  t.end();
});

// ---------------------------------------------------------------------------
// Observable differences (bottom of kernel-history.md)

t.test('V0 vs the rest: start with U above L (ballast), map a few buffers', (t) => {
  // L = 516; perf ballast of L + 100 pages.
  const s = scenario([{ op: 'ballast', via: 'perf', buffers: ballastBuffers(616) }, ...maps(3, 2, 'b', 4)]);
  const e0 = simulate(s, shared('V0'));
  t.equal(e0[0]!.user, 616);
  t.strictSame([1, 2, 3].map((i) => e0[i]!.pinned), [103, 209, 318], 'V0: VmPin grows by the whole overage per call');
  for (const a of ['V1', 'V2', 'V3', 'V4'] as const) {
    const e = simulate(s, shared(a));
    t.equal(e[0]!.user, 516, `${a}: the helper charges U up to L only`);
    t.equal(e[0]!.helperPinned, 100, `${a}: the helper's P takes the other 100 pages`);
    t.strictSame([1, 2, 3].map((i) => e[i]!.pinned), [3, 6, 9], `${a}: VmPin grows by ue per call`);
  }
  // V0's helper pinned: recompute independently.
  let U = 0;
  let hp = 0;
  for (const d of ballastBuffers(616)) {
    U += d + 1;
    hp += Math.max(0, U - 516);
  }
  t.equal(e0[0]!.helperPinned, hp, `V0 helper pinned = ${hp}`);
  t.end();
});

t.test('V2 vs V1/V3: fill U to L, lower perf_event_mlock_kb, map once more', (t) => {
  const ops: Op[] = [
    { op: 'ballast', via: 'perf', buffers: ballastBuffers(516) }, // U = L = 516
    { op: 'sysctl', name: 'perf_event_mlock_kb', value: 260 }, // L = 65 * 4 = 260
    { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
    { op: 'map', buf: 'b', cpu: 1, data_pages: 2 },
    { op: 'unmap', buf: 'a' },
    { op: 'unmap', buf: 'b' },
  ];
  const s = scenario(ops);
  const e2 = simulate(s, shared('V2'));
  t.equal(e2[0]!.user, 516);
  t.equal(e2[2]!.check!.userLockLimit, 260, 'L recomputed from the live sysctl');
  t.equal(e2[2]!.pinned, 516 + 3 - 260, 'V2: VmPin jumps by U + ue - L');
  t.equal(e2[2]!.user, 260, 'V2: U pulled down to L');
  t.equal(e2[3]!.pinned, 259 + 3, 'V2: then ue per call');
  t.equal(e2[4]!.user, 516, 'V2: unmapping gives the negative charge back (U rises to where it was)');
  t.equal(e2[5]!.pinned, 0);
  for (const a of ['V1', 'V3', 'V4'] as const) {
    const e = simulate(s, shared(a));
    t.equal(e[2]!.pinned, 3, `${a}: VmPin grows by ue`);
    t.equal(e[2]!.user, 516, `${a}: U unchanged`);
  }
  const e0 = simulate(s, shared('V0'));
  t.strictSame([e0[2]!.pinned, e0[3]!.pinned], [259, 259 + 262], 'V0: the whole overage every call');
  t.end();
});

t.test('V2 vs V1/V3 through CPU hotplug; cpu ops track the online set', (t) => {
  const ops: Op[] = [
    { op: 'ballast', via: 'perf', buffers: ballastBuffers(516) },
    { op: 'cpu', cpu: 3, online: false }, // L = 129 * 3 = 387
    { op: 'cpu', cpu: 3, online: false }, // already offline: still 3 CPUs
    { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
    { op: 'cpu', cpu: 3, online: true }, // back to 516
    { op: 'map', buf: 'b', cpu: 0, data_pages: 2 },
  ];
  const s = scenario(ops);
  const e2 = simulate(s, shared('V2'));
  t.equal(e2[3]!.check!.userLockLimit, 387);
  t.equal(e2[3]!.pinned, 516 + 3 - 387, 'V2: VmPin jumps by U + ue - L');
  t.equal(e2[5]!.check!.userLockLimit, 516);
  t.equal(e2[5]!.pinned, 132, 'U = 387 < L = 516 again: the next map charges U');
  const e3 = simulate(s, shared('V3'));
  t.equal(e3[3]!.pinned, 3);
  t.equal(e3[5]!.pinned, 6);
  t.end();
});

t.test('V4 remap leak: 30 mappings of one fd, unmap, probe headroom = L - 29*3', (t) => {
  const ops: Op[] = [
    { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
    ...Array.from({ length: 29 }, (): Op => ({ op: 'remap', buf: 'a' })),
    { op: 'unmap', buf: 'a' },
    { op: 'probe' },
  ];
  const s = scenario(ops);
  const L = userLockLimit(516, 4);
  const e4 = simulate(s, shared('V4'));
  t.equal(e4[29]!.user, 3 + 29 * 3, 'V4: every remap charges ue to U');
  t.equal(e4[29]!.pinned, 0, 'V4: remaps never touch VmPin');
  t.equal(e4[30]!.user, 29 * 3, 'V4: only the first charge is given back');
  t.equal(e4[31]!.headroom, L - 29 * 3, `V4: headroom ${L - 29 * 3}`);
  t.equal(e4[31]!.ok, true);
  for (const a of ['V0', 'V1', 'V2', 'V3'] as const) {
    const e = simulate(s, shared(a));
    t.equal(e[29]!.user, 3, `${a}: a remap charges nothing`);
    t.equal(e[31]!.headroom, L, `${a}: full headroom after unmap`);
  }
  // The remap charge is unchecked: it is admitted with U far above L and RLIMIT 0.
  const tight = scenario(
    [{ op: 'map', buf: 'a', cpu: 0, data_pages: 255 }, ...Array.from({ length: 5 }, (): Op => ({ op: 'remap', buf: 'a' }))],
    { rlimit_kb: 0 },
  );
  const et = simulate(tight, shared('V4'));
  t.ok(et.every((x) => x.ok), 'all admitted');
  t.equal(et.at(-1)!.user, 6 * 256);
  t.end();
});

t.test('shared vs perf counter: io_uring ballast moves the spill point only on the shared counter', (t) => {
  const s = scenario([{ op: 'ballast', via: 'io_uring', pages: 100 }, { op: 'probe' }, { op: 'map', buf: 'a', cpu: 0, data_pages: 511 }]);
  for (const a of ['V0', 'V1', 'V2', 'V3', 'V4'] as const) {
    const es = simulate(s, shared(a));
    const ep = simulate(s, { accounting: a, counter: 'perf' });
    t.equal(es[1]!.headroom, 416, `${a}/shared: headroom L - 100`);
    t.equal(ep[1]!.headroom, 516, `${a}/perf: headroom L`);
    t.equal(es[2]!.pinned, 100 + 512 - 516, `${a}/shared: a 512-page map spills`);
    t.equal(ep[2]!.pinned, 0, `${a}/perf: it does not`);
    t.equal(es[0]!.helperPinned, undefined, 'io_uring helper pinned is not predicted');
    const ex = simulate(s, shared(a), { ioUringExtraPages: 5 });
    t.equal(ex[1]!.headroom, 411, `${a}/shared: io_uring extra pages count too`);
    t.equal(simulate(s, { accounting: a, counter: 'perf' }, { ioUringExtraPages: 5 })[1]!.headroom, 516);
  }
  t.end();
});

t.test('V1 and V3 are identical on ring-buffer scenarios (random scripts)', (t) => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const strip = (e: ExpectedOp[]): unknown[] => e.map(({ check, ...rest }) => ({ ...rest, extra: check?.extra, locked: check?.locked }));
  let scripts = 0;
  let distinct = 0;
  for (let k = 0; k < 300; k++) {
    const ops: Op[] = [];
    const open: string[] = [];
    let next = 0;
    for (let j = 0; j < 40; j++) {
      const r = rnd(11);
      if (r <= 3) {
        const name = `b${next++}`;
        ops.push({ op: 'map', buf: name, cpu: 0, data_pages: [0, 1, 2, 4, 8, 64][rnd(6)]! });
        open.push(name);
      } else if (r === 4 && open.length) ops.push({ op: 'remap', buf: open[rnd(open.length)]! });
      else if (r === 5 && open.length) ops.push({ op: 'unmap', buf: open.splice(rnd(open.length), 1)[0]! });
      else if (r === 6) ops.push({ op: 'probe' });
      else if (r === 7) ops.push({ op: 'sysctl', name: 'perf_event_mlock_kb', value: [16, 64, 260, 516][rnd(4)]! });
      else if (r === 8) ops.push({ op: 'cpu', cpu: rnd(4), online: rnd(2) === 0 });
      else if (r === 9) ops.push(rnd(2) ? { op: 'ballast', via: 'perf', buffers: ballastBuffers(rnd(400)) } : { op: 'ballast', via: 'io_uring', pages: rnd(400) });
      else ops.push({ op: 'rlimit', memlock_kb: [null, 0, 64, 1024, 4096][rnd(5)]! });
    }
    if (rnd(3) === 0) ops.push({ op: 'unmap', buf: '*' }, { op: 'probe' });
    const s = scenario(ops);
    for (const counter of ['shared', 'perf'] as const) {
      const e1 = simulate(s, { accounting: 'V1', counter });
      const e3 = simulate(s, { accounting: 'V3', counter });
      t.strictSame(strip(e1), strip(e3), `script ${k} ${counter}`, { diagnostic: false });
      const e2 = simulate(s, { accounting: 'V2', counter });
      if (JSON.stringify(strip(e2)) !== JSON.stringify(strip(e3))) distinct++;
      scripts++;
    }
  }
  t.ok(distinct > 0, `the same random scripts do tell V2 from V3 (${distinct} of ${scripts})`);
  t.end();
});

// ---------------------------------------------------------------------------
// State, give-back, probe, EPERM rule, ballast

t.test('unmap gives the remembered charges back', (t) => {
  const s = scenario([
    { op: 'map', buf: 'a', cpu: 0, data_pages: 256 }, // 257 pages, U = 257
    { op: 'map', buf: 'b', cpu: 1, data_pages: 256 }, // U + 257 = 514 <= 516
    { op: 'map', buf: 'c', cpu: 2, data_pages: 8 }, // 9 pages: 2 to U, 7 to P (V1..V4)
    { op: 'unmap', buf: 'b' },
    { op: 'map', buf: 'd', cpu: 3, data_pages: 4 }, // 5 pages, fit again
    { op: 'unmap', buf: 'c' },
    { op: 'unmap', buf: '*' },
    { op: 'probe' },
  ]);
  const e = simulate(s, shared('V3'));
  t.strictSame(e.map((x) => [x.user, x.pinned]), [[257, 0], [514, 0], [516, 7], [259, 7], [264, 7], [262, 0], [0, 0], [0, 0]]);
  t.equal(e[7]!.headroom, 516);
  const e0 = simulate(s, shared('V0'));
  t.strictSame(e0.map((x) => [x.user, x.pinned]), [[257, 0], [514, 0], [523, 7], [266, 7], [271, 7], [262, 0], [0, 0], [0, 0]]);
  t.end();
});

t.test('unmap * gives back in map order and keeps the ballast', (t) => {
  const s = scenario([
    { op: 'ballast', via: 'io_uring', pages: 600 }, // U = 600 > L on the shared counter
    ...maps(3, 2, 'x', 4),
    { op: 'unmap', buf: '*' },
    { op: 'map', buf: 'x0', cpu: 0, data_pages: 2 }, // a name may be reused after unmap
  ]);
  for (const a of ['V0', 'V1', 'V2', 'V3', 'V4'] as const) {
    const e = simulate(s, shared(a));
    t.equal(e[4]!.user, 600, `${a}: U back to the ballast`);
    t.equal(e[4]!.pinned, 0, `${a}: P back to 0`);
  }
  t.equal(simulate(s, shared('V2'))[5]!.pinned, 600 + 3 - 516, 'V2 after unmap *: the overage again');
  t.end();
});

t.test('probe: headroom, spill EPERM, P over the limit, the 2^18-page cap', (t) => {
  // U above L (V0 ballast 616), RLIMIT 100 pages: the spill map would charge U + 1 - L = 101 > 100.
  const s = scenario([{ op: 'ballast', via: 'perf', buffers: ballastBuffers(616) }, { op: 'probe' }], { rlimit_kb: 400 });
  const e0 = simulate(s, shared('V0'));
  t.strictSame(e0[1], { ok: false, errno: 'EPERM', pinned: 0, user: 616, headroom: 0 }, 'V0: EPERM at the spill');
  const e3 = simulate(s, shared('V3'));
  t.strictSame(e3[1], { ok: true, errno: '', pinned: 0, user: 516, headroom: 0 }, 'V3: spill costs 1 page');
  t.equal(simulate({ ...s, cap_ipc_lock: true }, shared('V0'))[1]!.ok, true, 'CAP_IPC_LOCK: the spill is admitted');
  t.equal(simulate({ ...s, paranoid: -1 }, shared('V0'))[1]!.ok, true, 'paranoid -1: the spill is admitted');

  // P already over a lowered RLIMIT: even the first 1-page map is refused.
  const over = scenario([{ op: 'map', buf: 'a', cpu: 0, data_pages: 1023 }, { op: 'rlimit', memlock_kb: 1024 }, { op: 'probe' }, { op: 'map', buf: 'z', cpu: 0, data_pages: 0 }]);
  const eo = simulate(over, shared('V3'));
  t.equal(eo[0]!.pinned, 1024 - 516);
  t.strictSame(eo[2], { ok: false, errno: 'EPERM', pinned: 508, user: 516, headroom: 0 }, 'probe refused at once');
  t.equal(eo[3]!.errno, 'EPERM', 'and so is a 1-page map with extra 0');
  t.equal(eo[3]!.check!.extra, 1);
  // ... even when U is below L: the probe's first map (extra 0) is refused, headroom 0.
  const below = scenario([...over.ops.slice(0, 2), { op: 'sysctl', name: 'perf_event_mlock_kb', value: 1028 }, { op: 'probe' }]);
  t.strictSame(simulate(below, shared('V3'))[3], { ok: false, errno: 'EPERM', pinned: 508, user: 516, headroom: 0 }, 'P > R with U < L');
  t.equal(simulate({ ...below, cap_ipc_lock: true }, shared('V3'))[3]!.headroom, 1028 - 516, 'with CAP_IPC_LOCK the probe runs');

  // Probe leaves U and P unchanged, in the middle of a script.
  const mid = scenario([{ op: 'map', buf: 'a', cpu: 0, data_pages: 63 }, { op: 'probe' }, { op: 'map', buf: 'b', cpu: 0, data_pages: 0 }]);
  for (const l of ALL_LOGICS) {
    const e = simulate(mid, l);
    t.equal(e[1]!.headroom, 516 - 64, `${logicLabel(l)} headroom`);
    t.strictSame([e[1]!.user, e[1]!.pinned, e[2]!.user], [64, 0, 65]);
  }

  // perf_event_mlock_kb 512 MiB: 131072 pages on 1 CPU, measured to the page; on 2 CPUs
  // (262144 pages) the probe stops at its 2^18-page cap without spilling.
  const big = scenario([{ op: 'probe' }], { mlock_kb: 512 * MiB_KB, cpus: 1 });
  t.strictSame(simulate(big, shared('V3'))[0], { ok: true, errno: '', pinned: 0, user: 0, headroom: 131072 });
  const huge = scenario([{ op: 'probe' }], { mlock_kb: 512 * MiB_KB, cpus: 2 });
  t.strictSame(simulate(huge, shared('V3'))[0], { ok: true, errno: '', pinned: 0, user: 0, headroom: PROBE_MAX_PAGES });
  t.equal(PROBE_MAX_PAGES, 262144);
  t.end();
});

t.test('rlimit ops and the unlimited lock_limit', (t) => {
  const s = scenario([
    { op: 'ballast', via: 'io_uring', pages: 516 },
    { op: 'map', buf: 'a', cpu: 0, data_pages: 7 }, // extra 8
    { op: 'rlimit', memlock_kb: 60 }, // R = 15
    { op: 'map', buf: 'b', cpu: 0, data_pages: 7 }, // 8 + 8 = 16 > 15: EPERM
    { op: 'rlimit', memlock_kb: 63 }, // 63 >> 2 = 15 still
    { op: 'map', buf: 'c', cpu: 0, data_pages: 7 },
    { op: 'rlimit', memlock_kb: 64 }, // R = 16
    { op: 'remap', buf: 'b' }, // b's mmap failed: this is b's first mapping, fully checked
    { op: 'rlimit', memlock_kb: null },
  ]);
  const e = simulate(s, shared('V3'));
  t.equal(e[1]!.check!.lockLimit, RLIM_INFINITY_PAGES);
  t.strictSame([e[3]!.errno, e[3]!.check!.locked, e[3]!.check!.lockLimit], ['EPERM', 16, 15]);
  t.equal(e[5]!.errno, 'EPERM');
  t.strictSame([e[7]!.ok, e[7]!.pinned, e[7]!.check!.lockLimit], [true, 16, 16], 'remap after a failed map is a first mapping');
  t.ok(e.every((x, i) => x.check !== undefined || [0, 2, 4, 6, 8].includes(i)));
  t.end();
});

t.test('ballastBuffers sums exactly; a V0 perf ballast gives exactly that U', (t) => {
  const ns = [...Array.from({ length: 2049 }, (_, k) => k), 4643, 4644, 4645, 32886, 131072, 1 << 20];
  let bad = 0;
  for (const n of ns) {
    const b = ballastBuffers(n);
    if (b.reduce((a, d) => a + mappingPages(d), 0) !== n) bad++;
    if (!b.every((d) => d === 0 || (d & (d - 1)) === 0)) bad++;
  }
  t.equal(bad, 0, `${ns.length} sizes sum exactly, power-of-two data pages`);
  const L = userLockLimit(516, 36);
  for (const n of [0, 1, 2, 100, L, L + 1, 32886]) {
    const s = scenario([{ op: 'ballast', via: 'perf', buffers: ballastBuffers(n) }], { cpus: 36 });
    t.equal(simulate(s, shared('V0'))[0]!.user, n, `V0 perf ballast ${n}: U = ${n}`);
    const e1 = simulate(s, shared('V1'))[0]!;
    t.strictSame([e1.user, e1.helperPinned], [Math.min(n, L), Math.max(0, n - L)], `V1 perf ballast ${n}: U capped at L`);
  }
  t.end();
});

t.test('script errors and controller ops', (t) => {
  t.throws(() => simulate(scenario([{ op: 'unmap', buf: 'nope' }]), shared('V3')), ScriptError);
  t.throws(() => simulate(scenario([{ op: 'remap', buf: 'nope' }]), shared('V3')), ScriptError);
  t.throws(() => simulate(scenario([...maps(1), ...maps(1)]), shared('V3')), ScriptError);
  t.throws(() => simulate(scenario([]), shared('V3'), { ioUringExtraPages: -1 }), RangeError);
  const e = simulate(
    scenario([{ op: 'hang', seconds: 5 }, { op: 'sysrq', key: 'w' }, { op: 'sysctl', name: 'perf_event_paranoid', value: -1 }, ...maps(1, 1023)], { rlimit_kb: 0 }),
    shared('V3'),
  );
  t.strictSame(e.slice(0, 3).map((x) => x.ok), [true, true, true]);
  t.equal(e[3]!.ok, true, 'paranoid -1 set by sysctl: a map over RLIMIT 0 is admitted');
  t.equal(e[3]!.pinned, 1024 - 516);
  t.equal(simulate(scenario([]), shared('V0')).length, 0);
  t.end();
});

// ---------------------------------------------------------------------------
// BPF ballast and worker exit (scenario depth)

t.test('ballast via bpf: charges U only on a shared counter of a kernel before 5.11', (t) => {
  const s = scenario([{ op: 'ballast', via: 'bpf', pages: 100 }, { op: 'probe' }, ...maps(5, 127)], { cpus: 2 }); // L = 258
  for (const logic of ALL_LOGICS) {
    const before511 = simulate(s, logic, { bpfChargesUser: true });
    const since511 = simulate(s, logic, { bpfChargesUser: false });
    const dflt = simulate(s, logic);
    t.strictSame(dflt, since511, `${logicLabel(logic)}: the default is a 5.11+ kernel`);
    t.equal(since511[1]!.headroom, 258, `${logicLabel(logic)}: no BPF charge since 5.11`);
    t.equal(before511[1]!.headroom, logic.counter === 'shared' ? 158 : 258, `${logicLabel(logic)}: before 5.11`);
  }
  // The spill point of perf moves only where BPF shares perf's counter.
  const spill = (e: ExpectedOp[]): number => e.slice(2).findIndex((x) => x.pinned > 0) + 1;
  t.equal(spill(simulate(s, shared('V3'), { bpfChargesUser: false })), 3, '128-page maps: the 3rd spills with U from perf alone (384 > 258)');
  t.equal(spill(simulate(s, shared('V3'), { bpfChargesUser: true })), 2, 'with 100 BPF pages in U, the 2nd already does');
  t.end();
});

t.test('simOptionsForVersion: BPF charges locked_vm before 5.11 only', async (t) => {
  const { simOptionsForVersion } = await import('../../src/model/simulate.ts');
  t.equal(simOptionsForVersion('4.19.103').bpfChargesUser, true);
  t.equal(simOptionsForVersion('5.10.200').bpfChargesUser, true);
  t.equal(simOptionsForVersion('5.11.0').bpfChargesUser, false);
  t.equal(simOptionsForVersion('6.18.44-fc-v509').bpfChargesUser, false);
  t.strictSame(simOptionsForVersion('junk'), {});
});

t.test('exit: the dying worker gives its charges back, V4 keeps the re-mmap leak with the uid', (t) => {
  const s = scenario(
    [
      { op: 'ballast', via: 'perf', buffers: [] }, // keeps the uid alive
      { op: 'rlimit', memlock_kb: 4 },
      { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
      { op: 'remap', buf: 'a' },
      { op: 'remap', buf: 'a' },
      { op: 'exit' },
      { op: 'probe' },
      { op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, // the name is free again after the exit
    ],
    { cpus: 2, rlimit_kb: 64 },
  );
  for (const logic of ALL_LOGICS) {
    const e = simulate(s, logic);
    const leak = logic.accounting === 'V4' ? 6 : 0;
    t.equal(e[5]!.pinned, 0, `${logicLabel(logic)}: the new worker pins nothing`);
    t.equal(e[5]!.user, leak, `${logicLabel(logic)}: U after the exit`);
    t.equal(e[6]!.headroom, 258 - leak, `${logicLabel(logic)}: probe after the exit`);
    t.equal(e[7]!.ok, true, `${logicLabel(logic)}: the new worker has the scenario's RLIMIT again`);
  }
  t.end();
});

t.test('exit last: a fresh uid\'s record is freed with its last process, root_user keeps V4\'s leak (#14 item 4)', (t) => {
  // The leak: 9 re-mmaps of a 3-page buffer under V4 (v6.15+), 27 pages on U after the unmap.
  const ops: Op[] = [
    { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
    ...Array.from({ length: 9 }, (): Op => ({ op: 'remap', buf: 'a' })),
    { op: 'unmap', buf: 'a' },
    { op: 'probe' },
    { op: 'exit', last: true },
    { op: 'probe' },
  ];
  for (const root of [false, true]) {
    const s = scenario(ops, { cpus: 2, ...(root ? { root: true as const } : {}) });
    for (const logic of ALL_LOGICS) {
      const e = simulate(s, logic);
      const leak = logic.accounting === 'V4' ? 27 : 0;
      const who = `${root ? 'root' : 'fresh uid'} ${logicLabel(logic)}`;
      t.equal(e[11]!.headroom, 258 - leak, `${who}: probe before the exit`);
      t.equal(e[12]!.user, root ? leak : 0, `${who}: U after the last exit (free_uid, kernel/user.c; root_user is static)`);
      t.equal(e[13]!.headroom, 258 - (root ? leak : 0), `${who}: probe after the last exit`);
    }
  }
  t.end();
});

// ---------------------------------------------------------------------------
// Issue 14: the counter split keyed on the upstream version line, page size

t.test('counter split: "perf: Track the perf mlock gift separately" by upstream line (stable 6.1.191, 6.12.115, 7.2.13; mainline 7.3)', async (t) => {
  const { counterFor, resolveExpect } = await import('../../src/kernels/expect.ts');
  const { parseSpec } = await import('../../src/kernels/spec.ts');
  const c = (v: string): string => counterFor(v).row.counter;
  // stable 6.1.191: the change, inside Debian 6.1.192's ChangeLog-6.1.191 list
  t.equal(c('6.1.190'), 'shared', '6.1.190 (Debian bookworm, measured V3/shared)');
  t.equal(c('6.1.191'), 'perf', 'stable 6.1.191');
  t.equal(c('6.1.192'), 'perf', '6.1.192 (Debian bookworm-security, measured V3/perf)');
  // stable 6.12.115
  t.equal(c('6.12.114'), 'shared');
  t.equal(c('6.12.115'), 'perf', 'stable 6.12.115');
  t.equal(c('6.12.117'), 'perf');
  // not in mainline before 7.3 (measured: experimental 7.3-rc7 V4/shared); host 6.18.44 measured shared
  for (const v of ['6.13.0', '6.15.0', '6.18.0', '6.18.44', '7.0.0', '7.1.0', '7.2.0', '7.3.0-rc7', '7.3~rc7-1~exp1']) t.equal(c(v), 'shared', `${v}: mainline / measured shared`);
  // 7.2.y: 7.2.12 headers' user_struct lacks perf_mlock, 7.2.13 has it (sid 7.2.13 measured V4/perf)
  for (const v of ['7.2.1', '7.2.6', '7.2.11', '7.2.12']) t.equal(c(v), 'shared', `${v}: before the 7.2.13 stable`);
  t.equal(c('7.2.13'), 'perf', 'sid 7.2.13');
  t.equal(c('7.2.20'), 'perf');
  // 7.3 final: inferred (7.3.4 read, 7.3-rc7 lacks it, not in the 7.3.2-7.3.4 lists), and every later mainline
  for (const v of ['7.3.0', '7.3.4', '7.4.0', '8.0.0']) t.equal(c(v), 'perf', `${v}: from mainline v7.3`);
  t.match(counterFor('7.3.0').text, /inferred: 7\.3\.4 has it, 7\.3-rc7 lacks it/, 'the reason says 7.3.0 is inferred');
  t.match(counterFor('7.2.13').text, /^7\.2\.y >= 7\.2\.13: .*stable 7\.2\.13/);
  // nothing known: the counter stays open, never a guess
  for (const v of ['5.10.252', '5.15.190', '6.6.1', '6.6.120', '6.18.45', '7.0.5', '7.1.9']) t.equal(c(v), 'unknown', `${v}: unknown`);
  for (const v of ['5.10.240', '5.10.241', '5.10.251', '5.15.189', '6.18.44', '7.0.0', '7.1.0']) t.equal(c(v), 'shared', `${v}: before the open range of its line (5.10.y: read shared through 5.10.251)`);
  // the distro does not matter any more: an upstream 6.1.192 image is perf too
  const img = (version: string) => parseSpec({ id: 'k', kind: 'image', path: '/k', version }, 'x.json');
  t.equal(logicLabel(resolveExpect(img('6.1.192'), '6.1.192').logic!), 'V3/perf');
  t.equal(logicLabel(resolveExpect(img('7.0.3'), '7.0.3').logic!), 'V4/unknown');
  t.match(resolveExpect(img('7.0.3'), '7.0.3').reason, /7\.0\.y from 7\.0\.1: not known/);
  t.equal(logicLabel(resolveExpect(img('7.3.4'), '7.3.4').logic!), 'V4/perf', 'trixie-backports 7.3.4');
  t.equal(logicLabel(resolveExpect(img('7.2.12'), '7.2.12').logic!), 'V4/shared', 'trixie-backports 7.2.12');
});

t.test('an unknown counter carries both predictions; the measurement picks, never a guessed MISMATCH', async (t) => {
  const { diffExpected } = await import('../../src/diff/classify.ts');
  const { syntheticMeasured } = await import('../../src/diff/discriminate.ts');
  // io_uring ballast then a probe: shared and perf differ.
  const s = scenario([{ op: 'probe' }, { op: 'ballast', via: 'io_uring', pages: 100 }, { op: 'probe' }], { cpus: 2 });
  for (const counter of ['shared', 'perf'] as const) {
    const measured = syntheticMeasured(s, simulate(s, { accounting: 'V4', counter }));
    const d = diffExpected({ scenario: s, measured }, { accounting: 'V4', counter: 'unknown' });
    t.equal(d.verdict, 'MATCH', `a ${counter} kernel matches the open expectation`);
    t.equal(d.counterNote, `counter: unknown, measured ${counter}`);
    t.same(d.logic, { accounting: 'V4', counter });
    const known = diffExpected({ scenario: s, measured }, { accounting: 'V4', counter: counter === 'shared' ? 'perf' : 'shared' });
    t.equal(known.verdict, 'MISMATCH', `a known wrong counter still mismatches (${counter})`);
    t.equal(known.counterNote, undefined);
  }
  const plain = scenario([{ op: 'probe' }], { cpus: 2 });
  const both = diffExpected({ scenario: plain, measured: syntheticMeasured(plain, simulate(plain, shared('V4'))) }, { accounting: 'V4', counter: 'unknown' });
  t.equal(both.counterNote, 'counter: unknown, not told apart by this cell');
  const v0 = syntheticMeasured(s, simulate(s, shared('V0')));
  v0[0]!.headroom = 1; // no logic fits
  t.equal(diffExpected({ scenario: s, measured: v0 }, { accounting: 'V4', counter: 'unknown' }).verdict, 'MISMATCH', 'a kernel neither counter explains still mismatches');
});

t.test('page size is a model input: default perf_event_mlock_kb = 512 + PAGE_SIZE/1024 (kernel/events/core.c)', async (t) => {
  const { defaultMlockKb, rlimitPages, checkPageKb } = await import('../../src/model/accounting.ts');
  const { diffCell } = await import('../../src/diff/diff.ts');
  const { syntheticMeasured } = await import('../../src/diff/discriminate.ts');
  t.equal(defaultMlockKb(4), 516);
  t.equal(defaultMlockKb(16), 528);
  t.equal(defaultMlockKb(64), 576);
  t.equal(userLockLimit(defaultMlockKb(4), 1, 4), 129, '129 pages per CPU on 4K pages');
  t.equal(userLockLimit(defaultMlockKb(16), 1, 16), 33, '33 on 16K');
  t.equal(userLockLimit(defaultMlockKb(64), 1, 64), 9, '9 on 64K');
  t.equal(rlimitPages(8192, 64), 128, 'RLIMIT_MEMLOCK >> PAGE_SHIFT');
  t.equal(rlimitPages(8192), 2048);
  t.throws(() => checkPageKb(8), RangeError);
  // 64K pages: 2 CPUs at 576 kB = 18 pages; four 4-page buffers spill the last 2 pages
  const s = scenario([...maps(4, 4, 'b', 2), { op: 'probe' }], { cpus: 2, mlock_kb: 576, rlimit_kb: 8192 });
  const e = simulate(s, shared('V3'), { pageKb: 64 });
  t.same(mapIdx(s).map((i) => e[i]!.pinned), [0, 0, 0, 2]);
  t.equal(e[4]!.headroom, 0);
  t.equal(e[mapIdx(s)[3]!]!.check!.lockLimit, 128);
  // the diff reads VmPin in the same pages
  const m = syntheticMeasured(s, e).map((x) => ({ ...x, vmpin_kb: (x.vmpin_kb / 4) * 64 }));
  t.equal(diffCell(s.ops, m, e, 64).verdict, 'MATCH', 'VmPin kB / 64 on a 64K kernel');
  t.equal(diffCell(s.ops, m, e).verdict, 'MISMATCH', 'read as 4K pages it would not match');
});

t.test('simOptionsForVersion carries the reported page size', async (t) => {
  const { simOptionsForVersion } = await import('../../src/model/simulate.ts');
  t.equal(simOptionsForVersion('6.12.115', 16).pageKb, 16);
  t.throws(() => simOptionsForVersion('6.12.115', 3), RangeError);
  t.strictSame(simOptionsForVersion('x', 16), { pageKb: 16 }, 'no version: only the page size');
  t.throws(() => simOptionsForVersion('99999999999999999999.1'), /beyond/, 'a version beyond any kernel is refused');
});

t.test('new errors by version: partial munmap EINVAL (v6.17; 6.16.1, 6.12.42, 6.1.148), map_output EBUSY (6.19, 6.18.8)', async (t) => {
  const { simOptionsForVersion } = await import('../../src/model/simulate.ts');
  const einval = (v: string) => simOptionsForVersion(v).partialMunmapEinval;
  const ebusy = (v: string) => simOptionsForVersion(v).mapOutputEbusy;
  t.equal(einval('6.1.147'), false);
  t.equal(einval('6.1.148'), true, 'stable 6.1.148 (Debian changelog: "perf/core: Prevent VMA split of buffer mappings")');
  t.equal(einval('6.12.41'), false);
  t.equal(einval('6.12.42'), true, 'stable 6.12.42');
  t.equal(einval('6.16.0'), false);
  t.equal(einval('6.16.1'), true, 'stable 6.16.1');
  t.equal(einval('6.17.0'), true, 'v6.17');
  t.equal(einval('7.2.13'), true);
  t.equal(einval('5.10.200'), false);
  t.equal(einval('5.10.240'), false);
  t.equal(einval('5.10.241'), true, 'stable 5.10.241 (Debian 5.10.251-5 changelog, ChangeLog-5.10.241 list; measured on bullseye-security 5.10.251)');
  t.equal(ebusy('6.18.7'), false);
  t.equal(ebusy('6.18.8'), true, 'stable 6.18.8');
  t.equal(ebusy('6.18.44'), true);
  t.equal(ebusy('6.19.0'), true, 'v6.19');
  t.equal(ebusy('6.15.0'), false);
  t.equal(ebusy('6.12.117'), false);
  const secret = (v: string) => simOptionsForVersion(v).secretmemChargesUser;
  t.equal(secret('6.1.190'), false);
  t.equal(secret('6.1.191'), true, 'stable 6.1.191 ("mm/secretmem: properly account locked pages")');
  t.equal(secret('6.12.112'), false);
  t.equal(secret('6.12.113'), true, 'stable 6.12.113');
  t.equal(secret('6.18.44'), false, 'measured: the 6.18.44 host charges nothing');
  t.equal(secret('7.3.0-rc7'), true, 'measured: Debian experimental 7.3-rc7 charges user->locked_vm');
  t.equal(secret('7.2.0'), true, 'mainline v7.2 (the 7.2.6 and 7.2.12 headers name CONFIG_SECRETMEM in the locked_vm guard)');
  t.equal(secret('7.2.6'), true, 'trixie-backports 7.2.6');
  t.equal(secret('7.1.9'), false, '6.19..7.1: taken to lack it');
  t.equal(secret('7.2.0-rc7'), false, 'a 7.2 prerelease is before v7.2');
  t.end();
});

t.test('uring: registered pages count in the worker\'s pinned_vm only where uringChargesPinned (v5.9+, 309758254ea6)', (t) => {
  const s = scenario([{ op: 'uring', pages: 50 }, { op: 'probe' }, { op: 'exit' }, { op: 'probe' }], { cpus: 2, rlimit_kb: 1024 });
  for (const uringChargesPinned of [true, false]) {
    const e = simulate(s, shared('V3'), { uringChargesPinned });
    t.equal(e[0]!.pinned, uringChargesPinned ? 50 : 0, `pinned after the registration (${uringChargesPinned})`);
    t.equal(e[0]!.user, 50, 'user->locked_vm charged either way');
    t.equal(e[3]!.pinned, 0, 'nothing pinned after the exit');
    t.equal(e[3]!.headroom, 258, 'and the charge given back');
  }
  const capped = scenario([{ op: 'uring', pages: 50 }], { cpus: 2, rlimit_kb: 1024, cap_ipc_lock: true });
  t.same(simulate(capped, shared('V3'), { uringChargesPinned: false })[0], { ok: true, errno: '', pinned: 0, user: 0 }, 'before v5.9 with CAP_IPC_LOCK: nothing charged anywhere');
  t.same(simulate(capped, shared('V3'))[0], { ok: true, errno: '', pinned: 50, user: 0 }, 'the default (v5.9+): pinned_vm even with CAP_IPC_LOCK');
  t.end();
});

t.test('unmap_part: EINVAL where refused, else ok with the charges kept until the rest goes', (t) => {
  const s = scenario([{ op: 'map', buf: 'a', cpu: 0, data_pages: 4 }, { op: 'unmap_part', buf: 'a' }, { op: 'probe' }, { op: 'unmap', buf: 'a' }, { op: 'probe' }], { cpus: 2 });
  for (const partialMunmapEinval of [false, true]) {
    const e = simulate(s, shared('V3'), { partialMunmapEinval });
    t.equal(e[1]!.ok, !partialMunmapEinval);
    t.equal(e[1]!.errno, partialMunmapEinval ? 'EINVAL' : '');
    t.equal(e[2]!.headroom, 258 - 5, 'still charged');
    t.equal(e[4]!.headroom, 258, 'all given back by the unmap');
  }
  t.end();
});

t.test('map_output: shares the ring buffer (V3), charges again and leaks (V4 before 6.18.8), EBUSY (6.18.8+, 6.19)', (t) => {
  const s = scenario([
    { op: 'map', buf: 'a', cpu: 0, data_pages: 4 },
    { op: 'map_output', buf: 'c', to: 'a' },
    { op: 'probe' },
    { op: 'unmap', buf: 'a' },
    { op: 'probe' },
    { op: 'unmap', buf: '*' },
    { op: 'probe' },
  ], { cpus: 2 });
  const v3 = simulate(s, shared('V3'));
  t.same([v3[1]!.ok, v3[2]!.headroom, v3[4]!.headroom, v3[6]!.headroom], [true, 253, 253, 258], 'V3: shared, held by c after a goes, all back at the end');
  const v4 = simulate(s, shared('V4'));
  t.same([v4[1]!.ok, v4[2]!.headroom, v4[4]!.headroom, v4[6]!.headroom], [true, 248, 248, 253], 'V4: charged again, 5 pages leak');
  const busy = simulate(s, shared('V4'), { mapOutputEbusy: true });
  t.same([busy[1]!.ok, busy[1]!.errno, busy[2]!.headroom, busy[4]!.headroom], [false, 'EBUSY', 253, 258], 'EBUSY: nothing shared, nothing leaked');
  t.end();
});

t.test('the EPERM rule and io_uring: perf charges on a shared counter make a registration fail with ENOMEM', (t) => {
  // RLIMIT 1024 kB = 256 pages. Fill U with 258 pages of perf (L), then register 100 pages.
  const s = scenario([
    { op: 'map', buf: 'a', cpu: 0, data_pages: 128 },
    { op: 'map', buf: 'b', cpu: 1, data_pages: 64 },
    { op: 'uring', pages: 100 },
    { op: 'unmap', buf: '*' },
    { op: 'uring', pages: 100 },
    { op: 'map', buf: 'c', cpu: 0, data_pages: 256 },
  ], { cpus: 2, rlimit_kb: 1024 });
  const sh = simulate(s, shared('V3'));
  t.same([sh[2]!.ok, sh[2]!.errno], [false, 'ENOMEM'], 'shared: U 194 + 100 > 256: ENOMEM');
  t.same([sh[4]!.ok, sh[4]!.pinned], [true, 100], 'after the unmap it fits; VmPin grows by the registration');
  t.same([sh[5]!.ok, sh[5]!.pinned, sh[5]!.check!.extra], [true, 199, 99], 'the registration took U: 100 + 257 - 258 = 99 pages spill to pinned_vm');
  const pf = simulate(s, { accounting: 'V3', counter: 'perf' });
  t.same([pf[2]!.ok, pf[2]!.pinned], [true, 100], 'perf counter: io_uring does not see perf\'s charges');
  const capped = simulate({ ...s, cap_ipc_lock: true }, shared('V3'));
  t.equal(capped[2]!.ok, true, 'CAP_IPC_LOCK: io_uring checks nothing');
  // EPERM: P from io_uring counts against RLIMIT_MEMLOCK in perf_mmap() too
  const e = simulate(scenario([{ op: 'uring', pages: 250 }, { op: 'map', buf: 'x', cpu: 0, data_pages: 256 }], { cpus: 2, rlimit_kb: 1024 }), shared('V3'));
  t.same([e[1]!.ok, e[1]!.errno, e[1]!.check!.extra, e[1]!.check!.locked], [false, 'EPERM', 249, 499], 'perf: pinned_vm 250 (io_uring) + extra 249 > 256: EPERM');
  t.end();
});

t.test('memfd_secret ballast: eats the shared allowance where it charges user->locked_vm (6.1.191+, 6.12.113+)', (t) => {
  const s = scenario([{ op: 'ballast', via: 'memfd_secret', pages: 100 }, { op: 'probe' }], { cpus: 2 });
  t.equal(simulate(s, shared('V3'), { secretmemChargesUser: true })[1]!.headroom, 158, 'shared counter eaten');
  t.equal(simulate(s, { accounting: 'V3', counter: 'perf' }, { secretmemChargesUser: true })[1]!.headroom, 258, 'perf counter untouched');
  t.equal(simulate(s, shared('V3'))[1]!.headroom, 258, 'kernels that do not charge it');
  t.end();
});

t.test('lockstep simulate --kernel-version: the version-driven options and the incident table (5.3)', async (t) => {
  // every command line in one process (test/lib/cli-batch.ts: main() in-process); a nonzero exit throws with its stderr, as execFileSync did
  const { runBatch } = await import('../lib/cli-batch.ts');
  const argvs = [['incident', '--kernel-version', '5.3'], ['bpf-ballast', '--kernel-version', '5.4', '--json'], ['bpf-ballast', '--kernel-version', '6.1.190', '--json'], ['shared-counter', '--kernel-version', '7.0.3'], ['incident', '--kernel-version', 'banana']];
  const runs = await runBatch(argvs.map((a) => ['simulate', ...a]));
  const run = (...a: string[]): string => {
    const r = runs[argvs.findIndex((x) => x.join(' ') === a.join(' '))]!;
    if (r.code !== 0) throw Object.assign(new Error(`lockstep simulate ${a.join(' ')}: exit ${r.code}`), { stderr: r.stderr });
    return r.stdout;
  };
  const inc = run('incident', '--kernel-version', '5.3');
  t.match(inc, /kernel 5\.3: V0\/shared/);
  const rows = inc.split('\n').filter((l) => /^\s+\d+\s+map/.test(l));
  t.same(rows.slice(0, 4).map((l) => Number(l.trim().split(/\s+/)[3])), [28245, 56493, 84744, 112998], 'pinned after calls 1..4');
  t.match(rows[4]!, /EPERM/, 'EPERM at call 5');
  t.notMatch(rows[3]!, /EPERM/);
  // BPF charges user->locked_vm before 5.11 only: the probe after the ballast moves on 5.4, not on 6.1.
  const headroom = (v: string): number[] => run('bpf-ballast', '--kernel-version', v, '--json').trim().split('\n').map((l) => JSON.parse(l) as { op: string; expected: { headroom?: number } }).filter((x) => x.op === 'probe').map((x) => x.expected.headroom!);
  t.equal(headroom('5.4')[1], 158, '5.4: BPF ate 100 pages of the shared counter');
  t.equal(headroom('6.1.190')[1], 258, '6.1: memcg-accounted, nothing charged');
  // an unknown counter prints both predictions
  const open = run('shared-counter', '--kernel-version', '7.0.3');
  t.match(open, /V4\/unknown/);
  t.match(open, /under V4\/shared/);
  t.match(open, /under V4\/perf/);
  let err = '';
  try { run('incident', '--kernel-version', 'banana'); } catch (e) { err = String((e as { stderr: string }).stderr); }
  t.match(err, /--kernel-version: "banana" is not a kernel version/);
});
