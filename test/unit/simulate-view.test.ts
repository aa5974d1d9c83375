// What `lockstep simulate` and `lockstep scenarios list` print (#16 items 5
// and 7): the pure formatting over real built-in scenarios and the model's
// real predictions, then the same through bin/lockstep.mjs. Expected values
// come from each scenario's design (its description), not from a past output.

import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { type CompiledScenario, mappingPages, userLockLimit } from '../../src/scenario/ops.ts';
import { ALL_LOGICS, type Logic, logicLabel, parseLogic, PROBE_MAX_PAGES, simulate } from '../../src/model/index.ts';
import { compareLogics, describeOp, probesText, refusedText, renderAll, renderOps, summarize, type Refusal } from '../../src/cli/simulate-view.ts';
import { renderScenarioList, wrap, type ScenarioRow } from '../../src/cli/scenarios-view.ts';
import { runBatch, type BatchRun } from '../lib/cli-batch.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const BUILTIN = builtinScenarios();
const scenario = (id: string): CompiledScenario => BUILTIN.find((l) => l.id === id)!.compiled;
const runsOf = (s: CompiledScenario) => ALL_LOGICS.map((logic) => ({ logic, e: simulate(s, logic) }));
const labels = (pred: (l: Logic) => boolean): string[] => ALL_LOGICS.filter(pred).map(logicLabel);

t.test('remmap under all logics: the V4 leak is a group of its own, parting at the first remap', (t) => {
  const s = scenario('remmap');
  const v = compareLogics(s, runsOf(s));
  const firstRemap = s.ops.findIndex((op) => op.op === 'remap');
  const remaps = s.ops.filter((op) => op.op === 'remap').length;
  t.equal(remaps, 29, 'the scenario re-maps 29 times');
  t.equal(v.part_op, firstRemap, 'logics part at the first remap');
  t.strictSame(v.groups.map((g) => g.logics), [labels((l) => l.accounting !== 'V4'), labels((l) => l.accounting === 'V4')]);
  const [old, v4] = v.groups;
  t.equal(old!.parts, null);
  t.equal(v4!.parts!.i, firstRemap);
  t.equal(v4!.parts!.from, 'V0/shared');
  t.match(v4!.parts!.how, /^user 6 \(V0\/shared: 3\)$/, 'the second mapping of a 2-data-page ring charges its 3 pages again');
  const leak = remaps * mappingPages(2);
  t.equal(v4!.summary.user_pages, leak, 'V4 keeps 29 x 3 pages of U after every unmap');
  t.equal(old!.summary.user_pages, 0, 'V0..V3 give everything back');
  const L = userLockLimit(s.mlock_kb, s.cpus);
  t.equal(v4!.summary.probes.at(-1)!.headroom, L - leak, 'the last probe of V4 is short by the leak');
  t.equal(old!.summary.probes.at(-1)!.headroom, L);
  t.equal(v4!.summary.refused.length, 0);

  const text = renderAll(s, v);
  const heads = text.filter((l) => /^V\d\//.test(l));
  t.equal(heads.length, 2, 'two blocks, not ten identical lines');
  t.match(text[1]!, new RegExp(`^logics part at op ${firstRemap} \\(remap,buf:a\\)`));
  t.ok(text.some((l) => l.includes(`per-user counter U ${leak} pages`)), 'the leak is printed');
  t.ok(text.some((l) => l.includes(`probe headroom: `) && l.includes(`: ${L - leak}`)), 'and the probes it shortens');
  // docs/commands.md's example is this output
  const md = readFileSync(join(ROOT, 'docs', 'commands.md'), 'utf8').split('\n');
  const from = md.findIndex((l) => l.startsWith('    remmap under 14 logics'));
  t.ok(from > 0, 'docs/commands.md shows the remmap example');
  t.strictSame(md.slice(from, from + text.length).map((l) => l.replace(/^ {4}/, '')), text, 'docs/commands.md shows what simulate prints');
  t.end();
});

t.test('rlimit-sweep: every EPERM point of the sweep, not only the first', (t) => {
  const s = scenario('rlimit-sweep');
  // The design: 12 maps of 3 pages per RLIMIT step; under V1..V4 the first EPERM of a step is call R/12 + 1 (R in kB).
  const steps = s.ops.filter((op) => op.op === 'rlimit').map((op) => (op as { memlock_kb: number }).memlock_kb);
  t.strictSame(steps, [0, 16, 32, 64, 128]);
  const want = steps.flatMap((r, k) => Array.from({ length: 12 }, (_, j) => 12 * k + j + 1).filter((c) => c - 12 * k >= Math.floor(r / (mappingPages(2) * 4)) + 1));
  for (const a of ['V1', 'V2', 'V3', 'V4'] as const) {
    const m = summarize(s, parseLogic(`${a}/shared`), simulate(s, parseLogic(`${a}/shared`)));
    t.strictSame(m.refused.map((r) => r.call), want, `${a}: refused calls`);
    t.ok(m.refused.every((r) => r.op === 'map' && r.errno === 'EPERM'));
    t.equal(m.first_eperm, 1);
  }
  const v0 = summarize(s, parseLogic('V0/shared'), simulate(s, parseLogic('V0/shared')));
  const v0calls = new Set(v0.refused.map((r) => r.call));
  t.ok(want.every((c) => v0calls.has(c)), 'V0 refuses every call V1..V4 refuse');
  t.ok(v0calls.size > want.length, 'and more (earlier in a step)');
  // the text: one run per step, each with its call and op range
  const v3 = summarize(s, parseLogic('V3/shared'), simulate(s, parseLogic('V3/shared')));
  const text = refusedText(v3.refused);
  t.equal(text.match(/#\d+-#\d+ \(ops \d+-\d+\)/g)?.length, steps.length, `one run per step: ${text}`);
  t.match(text, /^map EPERM #1-#12 \(ops \d+-\d+\), #14-#24 /);

  const v = compareLogics(s, runsOf(s));
  t.strictSame(v.groups.map((g) => g.logics), [labels((l) => l.accounting === 'V0'), labels((l) => l.accounting !== 'V0')]);
  t.end();
});

t.test('incident: V0 refuses calls 5..36, its final pinned_vm in pages and kB', (t) => {
  const s = scenario('incident');
  const v = compareLogics(s, runsOf(s));
  t.equal(v.groups.length, 2);
  const v0 = v.groups[0]!.summary;
  t.strictSame(v0.refused.map((r) => r.call), Array.from({ length: 32 }, (_, k) => k + 5));
  t.equal(v0.vmpin_pages, 112998, 'the incident table: pinned after call 4');
  t.equal(v0.vmpin_kb, 112998 * 4);
  t.equal(summarize(s, parseLogic('V0/shared'), simulate(s, parseLogic('V0/shared')), 16).vmpin_kb, 112998 * 16, 'kB follow the page size');
  t.strictSame(v.groups[1]!.summary.refused, []);
  t.equal(v.part_op, 0, 'the ballast already charges differently');
  t.end();
});

t.test('refusedText and probesText', (t) => {
  const m = (i: number, call: number): Refusal => ({ i, op: 'map', call, errno: 'EPERM' });
  t.equal(refusedText([]), 'none');
  t.equal(refusedText([m(4, 3)]), 'map EPERM #3 (op 4)');
  t.equal(refusedText([m(4, 3), m(5, 4), m(9, 5), m(20, 9)]), 'map EPERM #3-#5 (ops 4-9), #9 (op 20)');
  t.equal(refusedText([{ i: 2, op: 'uring', errno: 'ENOMEM' }, m(7, 4), { i: 8, op: 'probe', errno: 'EPERM' }, { i: 9, op: 'probe', errno: 'EPERM' }]),
    'uring ENOMEM op 2; map EPERM #4 (op 7); probe EPERM ops 8-9');
  t.equal(probesText([]), 'no probe');
  t.equal(probesText([{ i: 0, headroom: 258, ok: true }, { i: 3, headroom: 0, ok: false }, { i: 5, headroom: PROBE_MAX_PAGES, ok: true }]), `op 0: 258, op 3: 0 (EPERM), op 5: >=${PROBE_MAX_PAGES}`);
  t.end();
});

t.test('renderOps: the what column is as wide as the longest op, never cut', (t) => {
  const s = scenario('incident');
  const lines = renderOps(s, parseLogic('V0/shared'), simulate(s, parseLogic('V0/shared')));
  const ballast = describeOp(s.ops[0]!);
  t.ok(ballast.length > 27, `a long op: ${ballast}`);
  t.ok(lines[2]!.includes(` ${ballast} `), 'printed whole');
  const resultAt = lines[1]!.indexOf('result');
  for (const l of lines.slice(2, 2 + s.ops.length)) t.match(l.slice(resultAt), /^(ok|EPERM)\s/, 'the result column lines up');
  t.match(lines.at(-1)!, /^refused: map EPERM #5-#36 \(ops 5-36\); final pinned_vm 112998 pages = VmPin 451992 kB, U \d+ pages; probe headroom: no probe$/);
  t.end();
});

t.test('renderScenarioList: widths from the data, descriptions wrapped under their column', (t) => {
  t.strictSame(wrap('a bb ccc dddd', 6), ['a bb', 'ccc', 'dddd']);
  t.strictSame(wrap('averyveryverylongword x', 5), ['averyveryverylongword', 'x']);
  t.strictSame(wrap('  ', 10), []);
  const rows: ScenarioRow[] = [
    ...BUILTIN.map((l) => ({ id: l.id, cpus: l.compiled.cpus_any ? ('any' as const) : l.compiled.cpus, ops: l.compiled.ops.length, description: l.description })),
    { id: 'a-scenario-id-of-forty-characters-long-x', cpus: 128, ops: 123456, description: 'Long id, six-digit op count: the columns still line up and this text wraps under its own column' },
  ];
  const width = 100;
  const lines = renderScenarioList(rows, width);
  const descAt = lines[0]!.indexOf('description');
  const cpusEnd = lines[0]!.indexOf('CPUs') + 4;
  t.ok(descAt > 40, 'the description column starts after the longest id');
  let k = 0;
  for (const l of lines.slice(1)) {
    t.ok(l.length <= width || !l.slice(descAt).includes(' '), `within ${width} columns: ${l}`);
    if (l.startsWith(' ')) { t.equal(l.search(/\S/), descAt, 'a continuation line starts under the description'); continue; }
    const r = rows[k++]!;
    t.ok(l.startsWith(`${r.id} `), `row of ${r.id}`);
    t.equal(l.slice(0, cpusEnd).trimEnd().endsWith(String(r.cpus)), true, `${r.id}: CPUs end under "CPUs"`);
  }
  t.equal(k, rows.length, 'one row per scenario');
  // the description, re-joined from its lines, is the whole description
  const text = lines.slice(1).join('\n');
  for (const r of rows) t.ok(text.replace(/\n\s+/g, ' ').includes(r.description.replace(/\s+/g, ' ')), `${r.id}: whole description`);
  // ids so long that less than 32 columns are left: the descriptions go under the rows
  const narrow = renderScenarioList([{ id: 'x'.repeat(64), cpus: 'any', ops: 3, description: 'short words here' }], 90);
  t.strictSame(narrow, [`${'id'.padEnd(64)}  CPUs  ops`, `${'x'.repeat(64)}   any    3`, '    short words here']);
  t.end();
});

t.test('through bin/lockstep.mjs', async (t) => {
  // every command line of the subtests below in one process (test/lib/cli-batch.ts: main() in-process, cwd ROOT)
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-list-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const id = 'profiler-on-a-32-cpu-machine-long-id-xyz';
  const description = 'An unprivileged profiler maps one ring per CPU, and this sentence is long enough to need two lines at a width of 100 columns';
  writeFileSync(join(dir, `${id}.json`), JSON.stringify({ id, description, cpus: 'any', ops: [{ op: 'probe' }] }));
  const argvs = [
    ['simulate', 'remmap', '--logic', 'all'], ['simulate', 'remmap', '--logic', 'all', '--json'], ['simulate', 'rlimit-sweep', '--logic', 'V3'],
    ['scenarios', 'list', '--scenario-file', dir, '--width', '100'], ['scenarios', 'list', '--json'], ['simulate', '--help'], ['scenarios', 'list', '--help'],
  ];
  const runs = await runBatch(argvs, { cwd: ROOT });
  const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const r: BatchRun = runs[argvs.findIndex((a) => a.join('\0') === args.join('\0'))]!;
    return { status: r.code, stdout: r.stdout, stderr: r.stderr };
  };
  t.test('simulate remmap --logic all: two blocks, the leak, where they part', (t) => {
    const r = cli('simulate', 'remmap', '--logic', 'all');
    t.equal(r.status, 0, r.stderr);
    const heads = r.stdout.split('\n').filter((l) => /^V\d\//.test(l));
    t.strictSame(heads, ['V0/shared V0/perf V1/shared V1/perf V1a/shared V1a/perf V1b/shared V1b/perf V2/shared V2/perf V3/shared V3/perf  (12 logics, same prediction)', 'V4/shared V4/perf  (2 logics, same prediction)']);
    t.match(r.stdout, /logics part at op 2 \(remap,buf:a\)/);
    t.match(r.stdout, /parts from V0\/shared at op 2 \(remap,buf:a\): user 6 \(V0\/shared: 3\)/);
    t.match(r.stdout, /per-user counter U 87 pages/);
    t.end();
  });
  t.test('simulate remmap --logic all --json', (t) => {
    const r = cli('simulate', 'remmap', '--logic', 'all', '--json');
    t.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { scenario: string; part_op: number; groups: { logics: string[] }[]; logics: { logic: string; group: number; user_pages: number; vmpin_kb: number; refused: unknown[]; probes: { headroom: number }[] }[] };
    t.equal(j.scenario, 'remmap');
    t.equal(j.part_op, 2);
    t.equal(j.logics.length, 14);
    t.strictSame(j.logics.map((l) => l.logic), ALL_LOGICS.map(logicLabel), 'every logic, in V0/shared, V0/perf, .. order');
    const v4 = j.logics.find((l) => l.logic === 'V4/perf')!;
    t.equal(v4.user_pages, 87);
    t.equal(v4.group, 1);
    t.equal(j.logics.find((l) => l.logic === 'V2/perf')!.group, 0);
    t.end();
  });
  t.test('simulate rlimit-sweep --logic V3: every refused call in the summary line', (t) => {
    const r = cli('simulate', 'rlimit-sweep', '--logic', 'V3');
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout.trim().split('\n').at(-1)!, /^refused: map EPERM #1-#12 \(ops 3-14\), #14-#24 \(ops 18-28\), #27-#36 \(ops 33-42\), #42-#48 \(ops 50-56\), #59-#60 \(ops 69-70\); final pinned_vm 0 pages = VmPin 0 kB/);
    t.end();
  });
  t.test('scenarios list: a 40-character id and a long description from a scenario file', (t) => {
    const r = cli('scenarios', 'list', '--scenario-file', dir, '--width', '100');
    t.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const cpusEnd = lines[0]!.indexOf('CPUs') + 4;
    const row = lines.find((l) => l.startsWith(`${id} `))!;
    t.ok(row, 'the long id is printed whole');
    t.equal(row.slice(0, cpusEnd).trimEnd().slice(-3), 'any', 'its CPUs under "CPUs"');
    const base = lines.find((l) => l.startsWith('baseline '))!;
    t.equal(base.slice(0, cpusEnd).trimEnd().slice(-3), 'any', 'and the built-ins\' too');
    t.ok(lines.every((l) => l.length <= 100), 'within --width');
    t.match(r.stdout.replace(/\n\s+/g, ' '), description);
    const j = JSON.parse(cli('scenarios', 'list', '--json').stdout) as { id: string; description: string }[];
    t.strictSame(j.map((x) => [x.id, x.description]), BUILTIN.map((l) => [l.id, l.description]), '--json: every built-in with its description');
    t.end();
  });
  t.test('--help says what is printed', (t) => {
    const sim = cli('simulate', '--help').stdout;
    t.match(sim, /every refused call/);
    t.match(sim, /parts from/);
    t.match(sim, /VmPin/);
    t.match(sim, /probe's headroom/);
    const list = cli('scenarios', 'list', '--help').stdout;
    t.match(list, /description, wrapped to --width/);
    t.match(list, /--json/);
    t.end();
  });
});
