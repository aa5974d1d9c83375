// Reading runs back: one classifier, one label (for one results directory,
// table.md, report.html, `lockstep table`, `lockstep classify` and
// `lockstep diff --json` print the same label for every kernel: the answer
// of src/diff/evidence.ts), and `lockstep diff`'s KernelCI categories and
// exit codes. Pure: simulated cells written as real results.json files,
// then the real CLI over them.

import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBatch } from '../lib/cli-batch.ts';
import { type Logic, parseLogic, simulate } from '../../src/model/index.ts';
import { simOptionsForVersion } from '../../src/model/simulate.ts';
import { cellsFromOutcome, cellWithoutRun } from '../../src/matrix/cells.ts';
import { RESULTS_SCHEMA, type CellResult, type CellVerdict, type Results } from '../../src/results/schema.ts';
import { cellCategory } from '../../src/report/compare.ts';
import { exitForVerdicts } from '../../src/cli/common.ts';
import { serializeResults } from '../../src/results/write.ts';
import type { GroupOutcome } from '../../src/runner/runtime.ts';
import { syntheticMeasured } from '../../src/diff/discriminate.ts';
import { builtinScenarios, scenarioHash } from '../../src/scenario/load.ts';
import type { CompiledScenario } from '../../src/scenario/ops.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Each subtest's command lines in one process (test/lib/cli-batch.ts: main() in-process, cwd ROOT). */
const lockstep = async (...argvs: string[][]): Promise<{ code: number | null; stdout: string; stderr: string }[]> => runBatch(argvs, { cwd: ROOT });
const all = builtinScenarios().map((l) => l.compiled);
const two = all.filter((s) => s.cpus === 2);
const get = (id: string) => all.find((s) => s.id === id)!;

function cells(kernel: string, logic: Logic | null, truth: Logic, scen: CompiledScenario[], tweak?: (s: CompiledScenario, m: ReturnType<typeof syntheticMeasured>) => void): CellResult[] {
  const map = new Map(scen.map((s) => {
    const ops = syntheticMeasured(s, simulate(s, truth, VERSION_OPTS));
    tweak?.(s, ops);
    return [s.id, { scenario: s.id, ops, errors: [], ended: true }];
  }));
  const outcome: GroupOutcome = {
    status: 'ok', detail: '', faults: [], consoleTail: '', consoleLog: null, resultsLog: null, accel: 'tcg', accelWhy: 'simulated',
    bootMs: 1000, wallMs: 2000, argv: ['qemu-system-x86_64'],
    stream: { scenarios: map, order: scen.map((s) => s.id), done: true, garbage: [], garbageCount: 0 },
  };
  return cellsFromOutcome(ctx(kernel, logic), scen, outcome);
}
// the kernels below are all 6.1.192: its version-driven model options apply to measuring and predicting alike
const VERSION_OPTS = simOptionsForVersion('6.1.192');
const ctx = (kernel: string, logic: Logic | null) => ({ kernel, logic, simOpts: VERSION_OPTS, runtime: 'qemu' as const, startedAt: '2026-01-01T00:00:00.000Z', scenarioHash, rerun: (s: string) => `node bin/lockstep.mjs run --kernels ${kernel} --scenarios ${s}` });

t.test('table.md, report.html, table, classify and diff give every kernel the same label', async (t) => {
  const v3 = parseLogic('V3/shared');
  const munmap = get('munmap-returns');
  const kernels: [string, string | null][] = [['k-v3', 'V3/shared'], ['k-v4perf', 'V4/perf'], ['k-unknown', null], ['k-amb', 'V3/shared'], ['k-none', 'V3/shared'], ['k-skip', 'V3/shared']];
  const r: Results = {
    schema: RESULTS_SCHEMA, lockstep_version: 'test', started_at: '2026-01-01T00:00:00.000Z', finished_at: '2026-01-01T00:01:00.000Z', complete: true,
    host: { release: 'test', cpus: 2, accel: 'tcg', accel_why: 'simulated' },
    kernels: kernels.map(([id, exp]) => ({ id, kind: 'image', version: '6.1.192', expected_logic: exp, expect_reason: 'test', artifact_sha256: null })),
    scenarios: all.map((s) => ({ id: s.id, hash: scenarioHash(s), cpus: s.cpus, def: s })),
    cells: [
      ...cells('k-v3', v3, v3, two),
      ...cells('k-v4perf', parseLogic('V4/perf'), parseLogic('V4/perf'), two),
      ...cells('k-unknown', null, parseLogic('V2/shared'), two),
      ...cells('k-amb', v3, v3, [get('baseline')]),
      ...cells('k-none', v3, v3, [munmap], (_s, m) => {
        const k = munmap.ops.findIndex((o) => o.op === 'map');
        m[k] = { ...m[k]!, vmpin_kb: 4 };
      }),
      ...two.map((s) => cellWithoutRun(ctx('k-skip', v3), s, 'SKIP', 'test: cannot run here')),
    ],
  };
  const want: Record<string, string> = {
    'k-v3': 'V1b|V3/shared', 'k-v4perf': 'V4/perf', 'k-unknown': 'V2/shared',
    'k-amb': 'ambiguous: V0/shared, V0/perf, V1|V3/shared, V1|V3/perf, V2/shared, V2/perf, V4/shared, V4/perf', 'k-none': 'none', 'k-skip': 'no cells',
  };
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-one-label-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'results.json'), serializeResults(r));

  const [report, table, classify, diff] = await lockstep(['report', dir], ['table', dir], ['classify', '--json', dir], ['diff', '--json', dir, dir]);
  t.equal(report!.code, 0, report!.stderr);
  const tableMd = await readFile(join(dir, 'table.md'), 'utf8');
  const html = await readFile(join(dir, 'report.html'), 'utf8');
  const tableCli = table!.stdout;
  t.equal(classify!.code, 1, 'classify: k-none fits no logic -> exit 1');
  const cj = JSON.parse(classify!.stdout) as { kernel: string; label: string }[];
  t.equal(diff!.code, 0, 'a run against itself: nothing changed');
  const dj = JSON.parse(diff!.stdout) as { classification: { kernel: string; old: string; new: string; category: string }[] };

  const row = (md: string, k: string) => new RegExp(`^\\| ${k} \\| [^|]+ \\| ((?:[^|\\\\]|\\\\\\|)+) \\|`, 'm').exec(md)?.[1]?.trim().replace(/\\\|/g, '|');
  const htmlLabel = (k: string) => new RegExp(`<tr data-kernel="${k}"><td>${k}</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>`).exec(html)?.[1]?.replace(/&amp;/g, '&');
  for (const [k, label] of Object.entries(want)) {
    t.equal(row(tableMd, k), label, `${k}: table.md`);
    t.equal(row(tableCli, k), label, `${k}: lockstep table`);
    t.equal(htmlLabel(k), label, `${k}: report.html`);
    t.equal(cj.find((c) => c.kernel === k)?.label, label, `${k}: lockstep classify`);
    const d = dj.classification.find((c) => c.kernel === k);
    t.same([d?.old, d?.new, d?.category], [label, label, 'unchanged'], `${k}: lockstep diff`);
  }
});

t.test('diff categories, cell by cell', async (t) => {
  const f = (verdict: CellVerdict, e: number | null = null) => ({ verdict, first_eperm_measured: e });
  t.equal(cellCategory(f('MATCH'), f('MISMATCH')), 'regression');
  t.equal(cellCategory(f('MATCH'), f('PANIC')), 'regression', 'a kernel oops is behaviour');
  t.equal(cellCategory(f('MATCH'), f('TIMEOUT')), 'unstable', 'MATCH -> TIMEOUT says nothing about the kernel');
  t.equal(cellCategory(f('MATCH'), f('BOOT_FAIL')), 'unstable');
  t.equal(cellCategory(f('MISMATCH'), f('MATCH')), 'fixed');
  t.equal(cellCategory(f('TIMEOUT'), f('MATCH')), 'fixed');
  t.equal(cellCategory(f('TIMEOUT'), f('MISMATCH')), 'regression', 'it ran now, and mismatches');
  t.equal(cellCategory(f('MISMATCH'), f('MISMATCH')), 'still_failing');
  t.equal(cellCategory(f('MISMATCH'), f('TIMEOUT')), 'still_failing');
  t.equal(cellCategory(f('MATCH', 3), f('MATCH', 4)), 'changed');
  t.equal(cellCategory(f('SKIP'), f('MATCH')), 'changed');
  t.equal(cellCategory(f('MATCH', 3), f('MATCH', 3)), null);
  t.equal(exitForVerdicts(['MATCH', 'SKIP', 'UNCHECKED']), 0);
  t.equal(exitForVerdicts(['MATCH', 'TIMEOUT', 'BOOT_FAIL']), 3, 'only infrastructure failed');
  t.equal(exitForVerdicts(['TIMEOUT', 'MISMATCH']), 1, 'behaviour wins');
});

t.test('lockstep diff --json: one behaviour change and one timeout are one regression and one unstable cell', async (t) => {
  const v3 = parseLogic('V3/shared');
  const base: Results = {
    schema: RESULTS_SCHEMA, lockstep_version: 'test', started_at: '2026-01-01T00:00:00.000Z', complete: true,
    host: { release: 'test', cpus: 2, accel: 'tcg', accel_why: 'simulated' },
    kernels: [{ id: 'k', kind: 'image', version: '6.1.192', expected_logic: 'V3/shared', expect_reason: 'test', artifact_sha256: null }],
    scenarios: two.map((s) => ({ id: s.id, hash: scenarioHash(s), cpus: s.cpus, def: s })),
    cells: cells('k', v3, v3, two),
  };
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-diff-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const write = async (name: string, r: Results) => { const p = join(dir, `${name}.json`); await writeFile(p, serializeResults(r)); return p; };
  const old = await write('old', base);
  // Tonight: sysctl-lowered behaves like V2 (a real behaviour change), remmap's boot timed out.
  const v2 = parseLogic('V2/shared');
  const sl = get('sysctl-lowered');
  const changed = cells('k', v3, v2, [sl])[0]!;
  t.equal(changed.verdict, 'MISMATCH');
  const timeout = cellWithoutRun(ctx('k', v3), get('remmap'), 'TIMEOUT', 'VM killed at its 60s timeout during remmap');
  const both = await write('both', { ...base, cells: base.cells.map((c) => (c.scenario === sl.id ? changed : c.scenario === 'remmap' ? timeout : c)) });
  const onlyTimeout = await write('timeout', { ...base, cells: base.cells.map((c) => (c.scenario === 'remmap' ? timeout : c)) });
  const runs = await lockstep(['diff', '--json', old, both], ['diff', '--json', old, onlyTimeout], ['diff', old, onlyTimeout], ['diff', onlyTimeout, old]);
  const [r, u, text, back] = [runs[0]!, runs[1]!, runs[2]!, runs[3]!];
  t.equal(r.code, 1, 'a behaviour regression: exit 1');
  const j = JSON.parse(r.stdout) as { counts: Record<string, number>; regressions: number; unstable: number; cells: { scenario: string; category: string }[]; classification: { category: string; old: string; new: string }[] };
  t.same(j.cells.map((c) => [c.scenario, c.category]).sort(), [['remmap', 'unstable'], ['sysctl-lowered', 'regression']]);
  t.equal(j.counts.regression, 1);
  t.equal(j.counts.unstable, 1);
  t.equal(j.classification[0]!.category, 'regression', `the classification moved too: ${j.classification[0]!.old} -> ${j.classification[0]!.new}`);

  t.equal(u.code, 3, 'only infrastructure changed: exit 3');
  const uj = JSON.parse(u.stdout) as { counts: Record<string, number>; classification: { category: string; old: string; new: string }[] };
  t.same([uj.counts.regression, uj.counts.unstable], [0, 1]);
  t.equal(uj.classification[0]!.category, 'unchanged', `the other cells still classify the kernel alike (${uj.classification[0]!.new})`);
  t.match(text.stdout, /^UNSTABLE k x remmap: MATCH EPERM - -> TIMEOUT EPERM - \(verdict\)$/m);
  t.equal(back.code, 0, 'the timeout fixed: exit 0');
});
