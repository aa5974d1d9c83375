import t from 'tap';
import { type CompiledScenario, type Op, ballastBuffers } from '../../src/scenario/ops.ts';
import { type ExpectedOp, type Logic, ALL_LOGICS, logicLabel, simulate } from '../../src/model/index.ts';
import { type MeasuredOp, IO_URING_EXTRA_MAX, calibrate, classify, diffCalibrated, diffCell } from '../../src/diff/index.ts';

const scenario = (id: string, ops: Op[], over: Partial<CompiledScenario> = {}): CompiledScenario => ({
  id,
  cpus: 4,
  mlock_kb: 516, // L = 516 pages
  paranoid: 2,
  rlimit_kb: null,
  cap_ipc_lock: false,
  ops,
  ...over,
});

/** A measured stream as a kernel behaving exactly like `e` would print it. */
const measuredFrom = (ops: Op[], e: ExpectedOp[]): MeasuredOp[] =>
  e.map((x, i) => {
    const m: MeasuredOp = { i, op: ops[i]!.op, ok: x.ok, errno: x.errno, vmpin_kb: x.pinned * 4, vmlck_kb: 0 };
    if (x.headroom !== undefined) {
      m.headroom = x.headroom;
      m.spilled = x.ok;
    }
    if (x.helperPinned !== undefined) m.helper_vmpin_kb = x.helperPinned * 4;
    return m;
  });

// The incident, calls 1..5, measured stream written by hand from the kprobe table
// (not from the model): VmPin after each call; call 5 refused.
const incidentOps: Op[] = [
  { op: 'ballast', via: 'perf', buffers: ballastBuffers(32886) },
  ...Array.from({ length: 5 }, (_, k): Op => ({ op: 'map', buf: `rb${k}`, cpu: k, data_pages: 2 })),
];
const incident = scenario('incident', incidentOps, { cpus: 36, rlimit_kb: 512 * 1024 });
const pin = (pages: number, i: number, op = 'map', ok = true): MeasuredOp => ({ i, op, ok, errno: ok ? '' : 'EPERM', vmpin_kb: pages * 4, vmlck_kb: 0 });
const incidentMeasured: MeasuredOp[] = [
  { i: 0, op: 'ballast', ok: true, errno: '', vmpin_kb: 0, vmlck_kb: 0, mapped: incidentOps[0]!.op === 'ballast' && incidentOps[0]!.via === 'perf' ? incidentOps[0]!.buffers.length : 0 },
  pin(28245, 1),
  pin(56493, 2),
  pin(84744, 3),
  pin(112998, 4),
  pin(112998, 5, 'map', false),
];
const V = (accounting: Logic['accounting'], counter: Logic['counter'] = 'shared'): Logic => ({ accounting, counter });

t.test('MATCH: the incident measured by hand vs V0', (t) => {
  const d = diffCell(incident.ops, incidentMeasured, simulate(incident, V('V0')));
  t.equal(d.verdict, 'MATCH');
  t.equal(d.firstDivergence, undefined);
  t.equal(d.missing, undefined);
  t.equal(d.firstEpermMeasured, 5, 'first EPERM: call 5 among map ops (1-based)');
  t.equal(d.firstEpermExpected, 5);
  t.strictSame(d.pinnedSeriesMeasured, [28245, 56493, 84744, 112998, 112998]);
  t.strictSame(d.pinnedSeriesExpected, d.pinnedSeriesMeasured);
  t.end();
});

t.test('MISMATCH names the first divergent op with both values', (t) => {
  const d3 = diffCell(incident.ops, incidentMeasured, simulate(incident, V('V3')));
  t.equal(d3.verdict, 'MISMATCH');
  // Under V3 the perf ballast leaves U at L, so call 1 pins 3 pages, not 28245.
  t.strictSame(d3.firstDivergence, { i: 1, op: 'map', field: 'pinned', measured: 28245, expected: 3 });
  t.equal(d3.firstEpermMeasured, 5);
  t.equal(d3.firstEpermExpected, null);
  t.strictSame(d3.pinnedSeriesExpected, [3, 6, 9, 12, 15]);

  // ok/errno is compared before pinned: call 5 admitted by the measured kernel.
  const admitted = incidentMeasured.map((m) => ({ ...m }));
  admitted[5] = pin(141255, 5);
  const d = diffCell(incident.ops, admitted, simulate(incident, V('V0')));
  t.strictSame(d.firstDivergence, { i: 5, op: 'map', field: 'ok', measured: true, expected: false });
  t.equal(d.firstEpermMeasured, null);

  // errno differs while ok agrees.
  const enomem = incidentMeasured.map((m) => ({ ...m }));
  enomem[5] = { ...enomem[5]!, errno: 'ENOMEM' };
  t.strictSame(diffCell(incident.ops, enomem, simulate(incident, V('V0'))).firstDivergence, {
    i: 5,
    op: 'map',
    field: 'errno',
    measured: 'ENOMEM',
    expected: 'EPERM',
  });

  // Only the first divergence is reported even when later ops differ too.
  const two = incidentMeasured.map((m) => ({ ...m }));
  two[2] = pin(56494, 2);
  two[3] = pin(1, 3);
  t.strictSame(diffCell(incident.ops, two, simulate(incident, V('V0'))).firstDivergence, { i: 2, op: 'map', field: 'pinned', measured: 56494, expected: 56493 });
  t.end();
});

t.test('probe headroom, helper pinned and controller ops', (t) => {
  const s = scenario('probe', [
    { op: 'ballast', via: 'perf', buffers: ballastBuffers(600) },
    { op: 'sysctl', name: 'perf_event_mlock_kb', value: 1028 }, // L = 257 * 4 = 1028
    { op: 'probe' },
  ]);
  const e = simulate(s, V('V3'));
  t.equal(e[2]!.headroom, 1028 - 516);
  const m = measuredFrom(s.ops, e);
  t.equal(diffCell(s.ops, m, e).verdict, 'MATCH');

  const h = m.map((x) => ({ ...x }));
  h[2]!.headroom = 500;
  t.strictSame(diffCell(s.ops, h, e).firstDivergence, { i: 2, op: 'probe', field: 'headroom', measured: 500, expected: 512 });

  const hp = m.map((x) => ({ ...x }));
  hp[0]!.helper_vmpin_kb = 4 * 83;
  t.strictSame(diffCell(s.ops, hp, e).firstDivergence, { i: 0, op: 'ballast', field: 'helperPinned', measured: 83, expected: 84 });
  const noHp = m.map((x) => ({ ...x }));
  delete noHp[0]!.helper_vmpin_kb;
  t.equal(diffCell(s.ops, noHp, e).verdict, 'MATCH', 'helper pinned compared only when both sides have it');

  // A controller op compares ok only: a VmPin oddity on the sysctl line is not a divergence...
  const ctl = m.map((x) => ({ ...x }));
  ctl[1]!.vmpin_kb = 4096;
  ctl[1]!.errno = 'EINVAL';
  t.equal(diffCell(s.ops, ctl, e).verdict, 'MATCH');
  // ...but a failed sysctl is.
  ctl[1]!.ok = false;
  t.strictSame(diffCell(s.ops, ctl, e).firstDivergence, { i: 1, op: 'sysctl', field: 'ok', measured: false, expected: true });
  t.end();
});

t.test('ERROR on a truncated or malformed measured stream', (t) => {
  const e = simulate(incident, V('V0'));
  const cut = diffCell(incident.ops, incidentMeasured.slice(0, 3), e);
  t.equal(cut.verdict, 'ERROR');
  t.match(cut.missing, /last measured op is i=2 \(map\)/);
  t.match(cut.missing, /ops 3\.\.5 of 6 missing/);
  t.strictSame(cut.pinnedSeriesMeasured, [28245, 56493], 'series of what was seen');
  t.equal(cut.pinnedSeriesExpected.length, 5);
  t.equal(cut.firstEpermMeasured, null);

  const none = diffCell(incident.ops, [], e);
  t.equal(none.verdict, 'ERROR');
  t.match(none.missing, /no op was measured/);

  // A divergence seen before the stream broke off is still reported (verdict stays ERROR).
  const cutBad = incidentMeasured.slice(0, 3).map((m) => ({ ...m }));
  cutBad[2] = pin(1, 2);
  const db = diffCell(incident.ops, cutBad, e);
  t.equal(db.verdict, 'ERROR');
  t.equal(db.firstDivergence?.i, 2);

  const gap = diffCell(incident.ops, incidentMeasured.filter((m) => m.i !== 3), e);
  t.equal(gap.verdict, 'ERROR');
  t.match(gap.missing, /last measured op is i=2/);

  const dup = diffCell(incident.ops, [...incidentMeasured, incidentMeasured[4]!], e);
  t.equal(dup.verdict, 'ERROR');
  t.match(dup.missing, /i=4 \(map\) appears twice/);

  const extra = diffCell(incident.ops, [...incidentMeasured, { ...incidentMeasured[5]!, i: 6 }], e);
  t.equal(extra.verdict, 'ERROR');
  t.match(extra.missing, /outside the script's 6 ops/);

  const wrong = incidentMeasured.map((m) => ({ ...m }));
  wrong[3]!.op = 'probe';
  const dw = diffCell(incident.ops, wrong, e);
  t.equal(dw.verdict, 'ERROR');
  t.match(dw.missing, /measured op i=3 is 'probe' but the script's op 3 is 'map'/);

  t.throws(() => diffCell(incident.ops, incidentMeasured, e.slice(1)), RangeError);
  t.end();
});

// io_uring ballast followed by a probe: the calibration scenario.
const uring = scenario('shared-counter', [
  { op: 'ballast', via: 'io_uring', pages: 200 },
  { op: 'probe' },
  { op: 'map', buf: 'a', cpu: 0, data_pages: 511 },
]);

t.test('calibrate: io_uring extra pages inside and outside bounds', (t) => {
  // A kernel whose io_uring charges 2 more pages (its rings) than the registered buffers.
  const truth = simulate(uring, V('V3'), { ioUringExtraPages: 2 });
  t.equal(truth[1]!.headroom, 516 - 202);
  const m = measuredFrom(uring.ops, truth);
  t.equal(diffCell(uring.ops, m, simulate(uring, V('V3'))).verdict, 'MISMATCH', 'uncalibrated: mismatch');

  const c = calibrate(uring, V('V3'), m);
  t.strictSame(c.calibrated, { ioUringExtraPages: 2 });
  t.equal(c.expected[1]!.headroom, 314);
  t.equal(diffCell(uring.ops, m, c.expected).verdict, 'MATCH');
  const dc = diffCalibrated({ scenario: uring, measured: m }, V('V3'));
  t.equal(dc.verdict, 'MATCH');
  t.strictSame(dc.calibrated, { ioUringExtraPages: 2 });

  // Exactly 0 is recorded as measured too.
  t.strictSame(calibrate(uring, V('V3'), measuredFrom(uring.ops, simulate(uring, V('V3')))).calibrated, { ioUringExtraPages: 0 });
  // The bound itself is accepted.
  const atMax = measuredFrom(uring.ops, simulate(uring, V('V3'), { ioUringExtraPages: IO_URING_EXTRA_MAX }));
  t.strictSame(calibrate(uring, V('V3'), atMax).calibrated, { ioUringExtraPages: IO_URING_EXTRA_MAX });

  // Outside the bounds: 100 pages more, or a headroom larger than the model allows: keep 0, mismatch honestly.
  const far = measuredFrom(uring.ops, simulate(uring, V('V3'), { ioUringExtraPages: 100 }));
  const cf = calibrate(uring, V('V3'), far);
  t.equal(cf.calibrated, undefined);
  t.match(cf.note, /inferred 100 extra pages/);
  t.equal(cf.expected[1]!.headroom, 316, 'kept the uncalibrated prediction');
  const df = diffCalibrated({ scenario: uring, measured: far }, V('V3'));
  t.strictSame(df.firstDivergence, { i: 1, op: 'probe', field: 'headroom', measured: 216, expected: 316 });
  t.match(df.calibrationNote, /not applied/);

  const more = measuredFrom(uring.ops, simulate(uring, V('V3')));
  more[1]!.headroom = 320;
  const cm = calibrate(uring, V('V3'), more);
  t.equal(cm.calibrated, undefined);
  t.match(cm.note, /inferred -4/);

  // The perf counter: io_uring is not perf's business, nothing to calibrate.
  const cp = calibrate(uring, V('V3', 'perf'), m);
  t.equal(cp.calibrated, undefined);
  t.equal(cp.note, undefined);
  t.equal(cp.expected[1]!.headroom, 516);

  // No probe after the ballast: nothing to calibrate from.
  const noProbe = scenario('np', [{ op: 'probe' }, { op: 'ballast', via: 'io_uring', pages: 10 }]);
  t.equal(calibrate(noProbe, V('V3'), measuredFrom(noProbe.ops, simulate(noProbe, V('V3')))).calibrated, undefined);

  // Truncated before the probe: not calibrated, and says so.
  const ct = calibrate(uring, V('V3'), m.slice(0, 1));
  t.equal(ct.calibrated, undefined);
  t.match(ct.note, /no measured headroom for probe op 1/);

  // Two io_uring helpers before the probe: the difference is split per ballast op.
  const two = scenario('two', [
    { op: 'ballast', via: 'io_uring', pages: 50 },
    { op: 'ballast', via: 'io_uring', pages: 50 },
    { op: 'probe' },
  ]);
  const m2 = measuredFrom(two.ops, simulate(two, V('V1'), { ioUringExtraPages: 3 }));
  t.equal(m2[2]!.headroom, 516 - 106);
  t.strictSame(calibrate(two, V('V1'), m2).calibrated, { ioUringExtraPages: 3 });
  t.end();
});

// A set of scenarios that discriminates everything the model can tell apart.
const cells = (): CompiledScenario[] => [
  scenario('incident', [{ op: 'ballast', via: 'perf', buffers: ballastBuffers(32886) }, ...Array.from({ length: 8 }, (_, k): Op => ({ op: 'map', buf: `rb${k}`, cpu: k, data_pages: 2 }))], {
    cpus: 36,
    rlimit_kb: 512 * 1024,
  }),
  scenario('sysctl-lowered', [
    { op: 'ballast', via: 'perf', buffers: ballastBuffers(516) },
    { op: 'sysctl', name: 'perf_event_mlock_kb', value: 260 },
    { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
  ]),
  scenario('remmap', [
    { op: 'map', buf: 'a', cpu: 0, data_pages: 2 },
    ...Array.from({ length: 29 }, (): Op => ({ op: 'remap', buf: 'a' })),
    { op: 'unmap', buf: 'a' },
    { op: 'probe' },
  ]),
  uring,
];

t.test('classify: narrowing the candidates', (t) => {
  const all = cells();
  const measure = (l: Logic, scenarios: CompiledScenario[], extra = 0) =>
    scenarios.map((scenario) => ({ scenario, measured: measuredFrom(scenario.ops, simulate(scenario, l, { ioUringExtraPages: extra })) }));
  const labels = (ls: Logic[]) => ls.map(logicLabel);

  // With the incident cell alone, V0 is pinned down but the counter is not.
  t.strictSame(labels(classify(measure(V('V0'), [all[0]!]))), ['V0/shared', 'V0/perf'], 'incident only: counter ambiguous');
  // The io_uring cell tells the counters apart.
  t.strictSame(labels(classify(measure(V('V0'), all))), ['V0/shared']);

  // A V3 kernel with a shared counter and io_uring rings charging 4 pages: V1 and V3 stay together.
  t.strictSame(labels(classify(measure(V('V3'), all, 4))), ['V1/shared', 'V1a/shared', 'V1b/shared', 'V3/shared'], 'V1, V1a, V1b and V3 are one class on ring buffers');
  t.strictSame(labels(classify(measure(V('V2'), all))), ['V2/shared']);
  t.strictSame(labels(classify(measure(V('V4', 'perf'), all))), ['V4/perf']);
  t.strictSame(labels(classify(measure(V('V1', 'perf'), all))), ['V1/perf', 'V1a/perf', 'V1b/perf', 'V3/perf']);

  // Without the remap cell V4 cannot be told from V1/V3.
  t.strictSame(labels(classify(measure(V('V4'), [all[0]!, all[1]!, all[3]!]))), ['V1/shared', 'V1a/shared', 'V1b/shared', 'V3/shared', 'V4/shared']);

  // No cells: nothing ruled out.
  t.equal(classify([]).length, ALL_LOGICS.length);

  // A kernel no logic explains: a measured VmPin that fits nobody.
  const odd = measure(V('V3'), all);
  odd[1]!.measured = odd[1]!.measured.map((m) => (m.i === 2 ? { ...m, vmpin_kb: 4 * 7 } : m));
  t.strictSame(classify(odd), []);

  // A restricted candidate list.
  t.strictSame(labels(classify(measure(V('V3'), all), [V('V3'), V('V4')])), ['V3/shared']);

  // A truncated cell matches no logic (callers leave errored cells out).
  const trunc = measure(V('V3'), all);
  trunc[0]!.measured = trunc[0]!.measured.slice(0, 2);
  t.strictSame(classify(trunc), []);
  t.end();
});
