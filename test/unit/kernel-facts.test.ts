// src/kernel-facts: the one version parser, the one table of upstream
// changes, and what the model derives from each row. Pure: no QEMU, no
// network, no kernel build.

import t from 'tap';
import {
  type UpstreamChange, ACCOUNTING_TABLE, carries, changeByKey, compareKernelVersions, counterFactFor, formatKernelVersion, KernelVersionError,
  modelFlagsFor, parseKernelVersion, PERF_MLOCK_GIFT, readKernelVersion, UPSTREAM_CHANGES,
} from '../../src/kernel-facts/index.ts';
import { counterFor, resolveExpect } from '../../src/kernels/expect.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import { logicLabel, type Logic } from '../../src/model/accounting.ts';
import { simOptionsForVersion, simulate } from '../../src/model/simulate.ts';
import { calibrate, diffExpected } from '../../src/diff/classify.ts';
import { syntheticMeasured } from '../../src/diff/discriminate.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { ConfigError } from '../../src/util/errors.ts';

const V = parseKernelVersion;

t.test('one parser: MAJOR.MINOR[.PATCH], -rc kept, where people write it', (t) => {
  t.same(V('5.3'), { major: 5, minor: 3, patch: 0, rc: null });
  t.same(V('6.18.44-fc-v509'), { major: 6, minor: 18, patch: 44, rc: null });
  t.same(V('7.3.0-rc7'), { major: 7, minor: 3, patch: 0, rc: 7 });
  t.same(V('5.5-rc5'), { major: 5, minor: 5, patch: 0, rc: 5 });
  t.same(V('7.3~rc7-1~exp1'), { major: 7, minor: 3, patch: 0, rc: 7 }, 'Debian spells an rc with ~');
  t.same(V('linux-6.1.192'), { major: 6, minor: 1, patch: 192, rc: null });
  t.same(V('v5.4'), { major: 5, minor: 4, patch: 0, rc: null });
  t.equal(formatKernelVersion(V('7.3~rc7')), '7.3.0-rc7');
  t.equal(formatKernelVersion(V('7.3~rc7'), false), '7.3.0');
  t.equal(readKernelVersion('banana'), null);
  t.equal(readKernelVersion('6'), null, 'a bare major is no kernel version');
  t.throws(() => V('banana'), /is not a kernel version: no MAJOR/);
  t.end();
});

t.test('an -rc is a prerelease: after every 7.2.y, before 7.3.0', (t) => {
  const order = ['7.2.0', '7.2.13', '7.2.99', '7.3.0-rc1', '7.3.0-rc7', '7.3.0', '7.3.1', '7.10.0', '8.0.0-rc1'];
  for (let i = 0; i + 1 < order.length; i++) t.ok(compareKernelVersions(V(order[i]!), V(order[i + 1]!)) < 0, `${order[i]} < ${order[i + 1]}`);
  t.equal(compareKernelVersions(V('7.3'), V('7.3.0')), 0);
  t.end();
});

t.test('versions beyond any real kernel are refused, naming the value (issue 26 item 6)', async (t) => {
  for (const bad of ['99999999999999999999.1', '100.1', '6.99999999999999999999', '6.1.99999999999999999999', '7.3.0-rc99999999999999999999']) {
    const e = (() => { try { readKernelVersion(bad); return null; } catch (err) { return err; } })();
    t.ok(e instanceof KernelVersionError, `${bad}: refused`);
    t.ok(e instanceof RangeError, 'a RangeError');
    t.match((e as Error).message, JSON.stringify(bad), 'the message names the value');
  }
  t.same(V('99.0.1'), { major: 99, minor: 0, patch: 1, rc: null }, 'major 99 still reads');
  // a spec's "version": one ConfigError line naming the field
  const spec = (): unknown => parseSpec({ id: 'k', kind: 'image', path: '/k', version: '99999999999999999999.1' }, 'k.json');
  const e = (() => { try { spec(); return null; } catch (err) { return err; } })();
  t.ok(e instanceof ConfigError, 'spec version refused at parse');
  t.match((e as ConfigError).field, /version/);
  t.notMatch((e as Error).message, /\n/, 'one line');
  t.end();
});

t.test('the table: unique keys, readable releases, a source for every row, inferred mainlines say so', (t) => {
  const keys = new Set<string>();
  for (const c of UPSTREAM_CHANGES) {
    t.notOk(keys.has(c.key), `${c.key}: unique`);
    keys.add(c.key);
    if (c.commit !== null) t.match(c.commit, /^[0-9a-f]{12}$/, `${c.key}: a 12-digit commit id`);
    t.ok(c.source.length > 20, `${c.key}: has a source`);
    for (const r of [...c.stables, ...(c.unknownFrom ?? []), ...(c.mainline ? [c.mainline] : [])]) t.ok(readKernelVersion(r), `${c.key}: ${r} reads`);
    const lines = c.stables.map((s) => s.split('.').slice(0, 2).join('.'));
    t.equal(new Set(lines).size, lines.length, `${c.key}: one release per stable line`);
    if (c.mainlineInferred) t.match(c.source, /inferred/, `${c.key}: the source says what is inferred`);
  }
  t.equal(changeByKey(PERF_MLOCK_GIFT).switches.kind, 'counter');
  t.ok(ACCOUNTING_TABLE.length > 10);
  t.end();
});

t.test('carries: mainline, stable line, unknown line, else not', (t) => {
  const gift = changeByKey(PERF_MLOCK_GIFT);
  const cases: [string, string][] = [
    ['6.1.190', 'no'], ['6.1.191', 'yes'], ['6.12.114', 'no'], ['6.12.115', 'yes'], ['6.6.1', 'unknown'], ['6.6.0', 'no'],
    ['7.2.12', 'no'], ['7.2.13', 'yes'], ['7.3.0-rc7', 'no'], ['7.3.0', 'yes'], ['7.4.2', 'yes'], ['6.18.45', 'unknown'], ['6.18.44', 'no'],
  ];
  for (const [v, want] of cases) t.equal(carries(gift, V(v)), want, `${v}: ${want}`);
  t.end();
});

t.test('this autumn\'s facts (issue 24) through expect and the simulator options', (t) => {
  const label = (v: string): string => logicLabel(resolveExpect(parseSpec({ id: 'k', kind: 'image', path: '/k', version: v }, 'k.json'), v).logic!);
  t.equal(label('7.2.6'), 'V4/shared', 'trixie-backports 7.2.6');
  t.equal(label('7.2.11'), 'V4/shared');
  t.equal(label('7.2.12'), 'V4/shared', '7.2.12 headers: user_struct has no perf_mlock');
  t.equal(label('7.2.13'), 'V4/perf');
  t.equal(label('7.3.0-rc7'), 'V4/shared', 'experimental 7.3-rc7');
  t.equal(label('7.3.4'), 'V4/perf', 'trixie-backports 7.3.4');
  t.equal(label('7.4.0'), 'V4/perf', 'later mainline');
  t.equal(label('6.12.118'), 'V3/perf', 'trixie-security');
  t.equal(label('7.1.5'), 'V4/unknown', 'nothing known for 7.1.y');
  const o = simOptionsForVersion;
  t.equal(o('7.2.0').secretmemChargesUser, true, 'secretmem: mainline 7.2');
  t.equal(o('7.1.9').secretmemChargesUser, false);
  t.equal(o('7.2.10').ioUringExtraPages, undefined, '7.2.10: ring pages left to calibration');
  t.equal(o('7.2.11').ioUringExtraPages, 0, '7.2.11: rings uncharged');
  t.equal(o('7.3.0-rc7').ioUringExtraPages, undefined, '7.3-rc: not known, calibrated');
  t.equal(o('7.3.4').ioUringExtraPages, 0);
  t.equal(o('6.12.118').ioUringExtraPages, undefined);
  t.equal(o('5.8.18').uringChargesPinned, false, 'before v5.9');
  t.equal(o('5.9.0').uringChargesPinned, true, 'v5.9: 309758254ea6');
  t.equal(o('5.10.223').uringChargesPinned, true);
  t.equal(o('5.9.0-rc1').uringChargesPinned, false, 'an rc of 5.9 is before v5.9 in this table');
  t.notOk('uringRingsUncharged' in o('7.3.4'), 'the flag becomes ioUringExtraPages, not an option of its own');
  t.end();
});

t.test('uring-refused at 5.4 vs 5.10: registered buffers count in pinned_vm only from v5.9', (t) => {
  const s = builtinScenarios().find((x) => x.id === 'uring-refused')!.compiled;
  const at = (version: string): { logic: Logic; e: ReturnType<typeof simulate> } => {
    const spec = parseSpec({ id: 'k', kind: 'image', path: '/k', version }, 'k.json');
    const exp = resolveExpect(spec, version).logic!;
    const logic: Logic = { accounting: exp.accounting, counter: exp.counter === 'perf' ? 'perf' : 'shared' };
    return { logic, e: simulate(s, logic, simOptionsForVersion(version)) };
  };
  const old = at('5.4.0');
  const now = at('5.10.223');
  t.equal(s.ops[4]!.op, 'uring');
  t.equal(old.e[4]!.pinned, 0, '5.4: op 4 (uring) pins nothing in mm->pinned_vm (measured on real v5.4.0)');
  t.equal(now.e[4]!.pinned, 100, '5.10: op 4 (uring) adds its 100 pages to pinned_vm (measured on Debian 5.10.223)');
  t.equal(old.e[4]!.user, now.e[4]!.user, 'user->locked_vm is charged the same on both');
  t.equal(old.e[7]!.ok, true, '5.4: the last map still fits under RLIMIT_MEMLOCK');
  t.equal(now.e[7]!.errno, 'EPERM', '5.10: the registered pages push the last map over RLIMIT_MEMLOCK');
  // a 5.4 kernel measured as the lead saw it MATCHes under the version's options, as it did not before
  const measured = syntheticMeasured(s, old.e);
  t.equal(diffExpected({ scenario: s, measured }, old.logic, simOptionsForVersion('5.4.0')).verdict, 'MATCH');
  const before = diffExpected({ scenario: s, measured }, old.logic, { ...simOptionsForVersion('5.4.0'), uringChargesPinned: true });
  t.equal(before.verdict, 'MISMATCH', 'with pinned_vm charged on every version (the old model) it mismatches');
  t.equal(before.firstDivergence?.i, 4, 'at op 4, as measured: "pinned measured 0, expected 100"');
  t.end();
});

t.test('io_uring ring pages: the version says 0 from 7.2.11, so calibration does not apply there', (t) => {
  const s = builtinScenarios().find((x) => x.id === 'shared-counter')!.compiled;
  const logic: Logic = { accounting: 'V4', counter: 'shared' };
  const withRings = syntheticMeasured(s, simulate(s, logic, { ioUringExtraPages: 2 }));
  const c10 = calibrate(s, logic, withRings, simOptionsForVersion('7.2.10'));
  t.same(c10.calibrated, { ioUringExtraPages: 2 }, '7.2.10: calibrated from the probe');
  const c11 = calibrate(s, logic, withRings, simOptionsForVersion('7.2.11'));
  t.equal(c11.calibrated, undefined, '7.2.11: not calibrated');
  t.equal(diffExpected({ scenario: s, measured: withRings }, logic, simOptionsForVersion('7.2.11')).verdict, 'MISMATCH', 'a 7.2.11 charging ring pages would be a real mismatch');
  const clean = syntheticMeasured(s, simulate(s, logic));
  t.equal(diffExpected({ scenario: s, measured: clean }, logic, simOptionsForVersion('7.2.11')).verdict, 'MATCH');
  t.end();
});

// Issue 27's done-when: a new stable fact is one row. The fixtures below are made up.
t.test('a made-up stable backport is a one-row change: the derived options and expectation follow', (t) => {
  const madeUp: UpstreamChange = {
    key: 'made-up-uring-pinned-backport',
    commit: null,
    title: 'io_uring: report pinned memory usage (made-up 5.4.300 backport)',
    mainline: null,
    stables: ['5.4.300'],
    switches: { kind: 'flag', flag: 'uringChargesPinned', value: true },
    source: 'test fixture, not a fact',
  };
  const table = [...UPSTREAM_CHANGES, madeUp];
  t.equal(simOptionsForVersion('5.4.300').uringChargesPinned, false, 'without the row: 5.4.300 lacks it');
  t.equal(simOptionsForVersion('5.4.300', undefined, table).uringChargesPinned, true, 'with the row: 5.4.300 has it');
  t.equal(simOptionsForVersion('5.4.299', undefined, table).uringChargesPinned, false, '5.4.299 still lacks it');
  t.equal(simOptionsForVersion('5.3.18', undefined, table).uringChargesPinned, false, 'other lines unchanged');
  const s = builtinScenarios().find((x) => x.id === 'uring-refused')!.compiled;
  const logic: Logic = { accounting: 'V3', counter: 'shared' };
  t.equal(simulate(s, logic, simOptionsForVersion('5.4.300'))[4]!.pinned, 0);
  t.equal(simulate(s, logic, simOptionsForVersion('5.4.300', undefined, table))[4]!.pinned, 100, 'the expected uring op follows the row');

  // the counter: the gift row gains a 6.6.y stable release (a one-row edit)
  const gift = changeByKey(PERF_MLOCK_GIFT);
  const table2 = UPSTREAM_CHANGES.map((c) => (c === gift ? { ...gift, stables: [...gift.stables, '6.6.130'] } : c));
  t.equal(counterFor('6.6.130').row.counter, 'unknown', 'today: nothing known for 6.6.y');
  t.equal(counterFor('6.6.130', table2).row.counter, 'perf', 'with the row: perf from 6.6.130');
  t.equal(counterFor('6.6.129', table2).row.counter, 'unknown', 'before it: still unknown (6.6.1 onward)');
  t.match(counterFactFor(V('6.6.130'), table2).why, /6\.6\.y >= 6\.6\.130: .*stable 6\.6\.130/);
  // flags untouched by a counter-only row
  t.same(modelFlagsFor(V('6.6.130'), table2), modelFlagsFor(V('6.6.130')));
  t.end();
});
