// One classifier, one label: for one results directory, table.md, report.html,
// `lockstep table`, `lockstep classify` and `lockstep diff --json` print the
// same classification label for every kernel (the answer of
// src/diff/evidence.ts). Pure: simulated cells written as a real
// results.json, then the real CLI over it.

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { type Logic, parseLogic, simulate } from '../src/model/index.ts';
import { cellsFromOutcome, cellWithoutRun } from '../src/matrix/cells.ts';
import { RESULTS_SCHEMA, type CellResult, type Results } from '../src/results/schema.ts';
import { serializeResults } from '../src/results/write.ts';
import type { GroupOutcome } from '../src/runner/runtime.ts';
import { syntheticMeasured } from '../src/scenario/discriminate.ts';
import { builtinScenarios, scenarioHash } from '../src/scenario/load.ts';
import type { CompiledScenario } from '../src/scenario/ops.ts';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const lockstep = async (args: string[]): Promise<{ code: number; stdout: string }> => {
  try {
    const r = await exec(process.execPath, [join(ROOT, 'bin/lockstep.mjs'), ...args], { env: { ...process.env, GITHUB_STEP_SUMMARY: '' } });
    return { code: 0, stdout: r.stdout };
  } catch (e) {
    const x = e as { code: number; stdout: string };
    return { code: x.code, stdout: x.stdout };
  }
};
const all = builtinScenarios().map((l) => l.compiled);
const two = all.filter((s) => s.cpus === 2);
const get = (id: string) => all.find((s) => s.id === id)!;

function cells(kernel: string, logic: Logic | null, truth: Logic, scen: CompiledScenario[], tweak?: (s: CompiledScenario, m: ReturnType<typeof syntheticMeasured>) => void): CellResult[] {
  const map = new Map(scen.map((s) => {
    const ops = syntheticMeasured(s, simulate(s, truth));
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
const ctx = (kernel: string, logic: Logic | null) => ({ kernel, logic, runtime: 'qemu' as const, startedAt: '2026-01-01T00:00:00.000Z', scenarioHash, rerun: (s: string) => `node bin/lockstep.mjs run --kernels ${kernel} --scenarios ${s}` });

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
    'k-v3': 'V1|V3/shared', 'k-v4perf': 'V4/perf', 'k-unknown': 'V2/shared',
    'k-amb': 'ambiguous: V0/shared, V0/perf, V1|V3/shared, V1|V3/perf, V2/shared, V2/perf, V4/shared, V4/perf', 'k-none': 'none', 'k-skip': 'no cells',
  };
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-one-label-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'results.json'), serializeResults(r));

  t.equal((await lockstep(['report', dir])).code, 0);
  const tableMd = await readFile(join(dir, 'table.md'), 'utf8');
  const html = await readFile(join(dir, 'report.html'), 'utf8');
  const tableCli = (await lockstep(['table', dir])).stdout;
  const classify = await lockstep(['classify', '--json', dir]);
  t.equal(classify.code, 1, 'classify: k-none fits no logic -> exit 1');
  const cj = JSON.parse(classify.stdout) as { kernel: string; label: string }[];
  const diff = await lockstep(['diff', '--json', dir, dir]);
  t.equal(diff.code, 0, 'a run against itself: nothing changed');
  const dj = JSON.parse(diff.stdout) as { classification: { kernel: string; old: string; new: string; category: string }[] };

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
