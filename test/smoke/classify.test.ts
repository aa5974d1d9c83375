// The classifier: which logic a kernel behaves like, from its measured cells
// only, with the evidence. Pure tests over synthetic kernels (what a kernel
// implementing exactly one logic would print), then real measurements of
// three kernels that differ: the host (6.18, V4/shared), Debian 6.1.190
// (V3/shared) and Debian 6.1.192 (V3/perf), each once with its expected
// logic (MATCH cells) and once with expect: unknown (UNCHECKED cells).
// Tier: smoke (its subtests moved unchanged from test/classify.test.ts; the rest is in test/unit/classify.test.ts, test/integration/classify.test.ts).

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { classifyKernel, refutationText } from '../../src/diff/evidence.ts';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { builtinSpecsDir, loadSpecFile, parseSpec } from '../../src/kernels/spec.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { renderTable } from '../../src/results/table.ts';

const exec = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const scenarios = builtinScenarios().map((l) => l.compiled);
const get = (id: string) => scenarios.find((s) => s.id === id)!;

// ---------------------------------------------------------------------------
// Real kernels

t.test('real kernels: host = V4/shared, Debian 6.1.190 = V1|V3/shared, 6.1.192 = V1|V3/perf, with and without an expectation', async (t) => {
  const auto = [
    ...(await loadSpecFile(join(builtinSpecsDir(), 'host.json'))),
    ...(await loadSpecFile(join(builtinSpecsDir(), 'debian-6.1.190.json'))),
    ...(await loadSpecFile(join(builtinSpecsDir(), 'debian-6.1.192.json'))),
  ];
  // The same kernels under other ids, classify only.
  const unknown = [
    parseSpec({ id: 'u-host', kind: 'host', expect: 'unknown' }, 'test'),
    parseSpec({ id: 'u-6.1.190', kind: 'debian-image', package: 'linux-image-6.1.0-54-cloud-amd64-unsigned', version: '6.1.190', package_version: '6.1.190-1', expect: 'unknown' }, 'test'),
    parseSpec({ id: 'u-6.1.192', kind: 'debian-image', package: 'linux-image-6.1.0-56-cloud-amd64-unsigned', version: '6.1.192', package_version: '6.1.192-2', expect: 'unknown' }, 'test'),
  ];
  const ids = ['baseline', 'overage', 'sysctl-lowered', 'remmap', 'shared-counter'];
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-classify-'));
  const r = await runMatrix({
    kernels: [...auto, ...unknown], scenarios: ids.map(get), outDir: dir, cacheDir: defaultCacheDir(),
    jobs: 2, opTimeoutS: 60, log: (l) => t.comment(l), rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  const want: Record<string, string> = {
    host: 'V4/shared', 'u-host': 'V4/shared',
    'debian-6.1.190': 'V1|V3/shared', 'u-6.1.190': 'V1|V3/shared',
    'debian-6.1.192': 'V1|V3/perf', 'u-6.1.192': 'V1|V3/perf',
  };
  for (const [kernel, label] of Object.entries(want)) {
    const cells = r.cells.filter((c) => c.kernel === kernel);
    const verdicts = new Set(cells.map((c) => c.verdict));
    t.strictSame([...verdicts], [kernel.startsWith('u-') ? 'UNCHECKED' : 'MATCH'], `${kernel}: every cell measured (${[...verdicts].join(', ')})`);
    const c = classifyKernel(r, kernel);
    t.equal(c.label, label, `${kernel}: classified ${c.label}`);
    t.equal(c.scenarios.length, ids.length, `${kernel}: from all ${ids.length} cells`);
    for (const e of c.evidence) t.comment(`${kernel}: ${refutationText(e)}`);
    const ev = (scenario: string) => c.evidence.filter((e) => e.scenario === scenario).flatMap((e) => e.ruledOut);
    // What told the candidates apart, kernel by kernel.
    t.ok(ev('overage').includes('V0/shared') && ev('overage').includes('V0/perf'), `${kernel}: overage rules out V0`);
    t.ok(ev('sysctl-lowered').includes('V2/shared'), `${kernel}: sysctl-lowered rules out V2`);
    if (label.startsWith('V4')) t.ok(ev('remmap').includes('V3/shared'), `${kernel}: remmap rules out V3 (the leak is there)`);
    else t.ok(ev('remmap').includes('V4/shared') && ev('remmap').includes('V4/perf'), `${kernel}: remmap rules out V4 (no leak)`);
    const otherCounter = label.endsWith('/shared') ? 'perf' : 'shared';
    t.ok(ev('shared-counter').includes(`V3/${otherCounter}`), `${kernel}: shared-counter rules out the ${otherCounter} counter`);
  }

  // The classified column of the table.
  const table = renderTable(r);
  t.match(table, /\| kernel \| expected logic \| classified \|/);
  // "V1|V3" is written "V1\|V3" inside the markdown table
  t.match(table, /\| u-6\.1\.192 \([^)]*\) \| unknown \| V1\\\|V3\/perf \|/, 'expect: unknown, classified only');
  t.match(table, /\| debian-6\.1\.190 \([^)]*\) \| V3\/shared \| V1\\\|V3\/shared \|/);

  // The command, from the written results.
  const cli = await exec(process.execPath, [join(ROOT, 'bin/lockstep.mjs'), 'classify', '--kernel', 'u-host,u-6.1.190', dir]);
  t.match(cli.stdout, /^u-host: V4\/shared {2}\(5 cells; no expected logic \(expect: unknown\)\)$/m);
  t.match(cli.stdout, /^u-6\.1\.190: V1\|V3\/shared /m);
  t.match(cli.stdout, /remmap ruled out V4\/shared, V4\/perf: op \d+ \(probe\): headroom measured \d+, predicted \d+/);
  const json = JSON.parse((await exec(process.execPath, [join(ROOT, 'bin/lockstep.mjs'), 'classify', '--json', '--kernel', 'debian-6.1.192', join(dir, 'results.json')])).stdout) as { label: string; expected_logic: string }[];
  t.strictSame(json.map((j) => [j.label, j.expected_logic]), [['V1|V3/perf', 'V3/perf']]);
  t.ok((await readFile(join(dir, 'table.md'), 'utf8')).includes('| classified |'), 'table.md has the column');
  await rm(dir, { recursive: true, force: true });
});
