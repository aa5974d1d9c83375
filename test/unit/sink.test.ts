// The results sink (src/matrix/sink.ts) writes results.json after every
// group with each cell's portable copy made once: what it writes equals the
// whole portableJson of the run at every step, and a recorded cell cannot be
// changed afterwards (it would differ from the copy already written).

import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderEvent, ResultsSink } from '../../src/matrix/sink.ts';
import type { PlannedGroup } from '../../src/matrix/plan.ts';
import { pathRoots, portableJson } from '../../src/results/paths.ts';
import { checkResults, type CellResult, type Results } from '../../src/results/schema.ts';
import { serializeResults } from '../../src/results/write.ts';

const ROOT = join(import.meta.dirname, '../..');
const published = (): Results => checkResults(JSON.parse(readFileSync(join(ROOT, 'results/results.json'), 'utf8')), 'results/results.json');

t.test('every write equals portableJson of the whole run; recorded cells are frozen', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'lockstep-sink-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const pub = published();
  // cells as a run holds them: absolute log paths under the results directory and the cache
  const cells: CellResult[] = pub.cells.map((c, k) => ({ ...c, console_log: join(out, 'logs', `${c.kernel}@2cpu`, 'console.log'), ...(k % 7 === 0 ? { reason: `see /var/cache/x/${k} and ${out}/logs` } : {}) }));
  const roots = pathRoots({ out, cache: '/var/cache/x', tmp: tmpdir() });
  const results: Results = { ...pub, cells: [] };
  const sink = new ResultsSink(results, out, roots, cells.length, () => {});
  const kernels = [...new Set(cells.map((c) => c.kernel))];
  const whole: CellResult[] = [];
  for (const [k, id] of kernels.entries()) {
    const group = cells.filter((c) => c.kernel === id);
    whole.push(...group.map((c) => ({ ...c })));
    sink.add({ key: `${id}@2cpu` } as PlannedGroup, group);
    await sink.persist();
    if (k % 5 !== 0 && k !== kernels.length - 1) continue;
    const want = serializeResults(portableJson({ ...results, cells: whole.slice().sort((a, b) => a.kernel.localeCompare(b.kernel) || a.scenario.localeCompare(b.scenario)) }, roots));
    t.equal(readFileSync(join(out, 'results.json'), 'utf8'), want, `after ${k + 1} of ${kernels.length} groups: the same bytes as the whole run made portable`);
  }
  const written = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { cells: { console_log?: string; reason?: string }[] };
  t.ok(written.cells.every((c) => !c.console_log || c.console_log.startsWith('logs/')), 'log paths relative to the results directory');
  t.notOk(JSON.stringify(written).includes(out), 'no absolute path of the results directory left');
  t.throws(() => { (results.cells[0] as { verdict: string }).verdict = 'MISMATCH'; }, TypeError, 'a recorded cell cannot be changed');
  const final = await sink.finish(true);
  t.equal(final.cells.length, cells.length, 'finish returns every cell');
});

t.test('a progress line says whether the group booted or restored its guest', (t) => {
  const boot = { bootMs: 2500, wallMs: 4000, accel: 'tcg', status: 'exited', detail: '' };
  const line = (restored?: boolean) => renderEvent({ type: 'group-done', group: 'k@2cpu', cells: [], done: 1, total: 2, elapsedMs: 1000, boot: { ...boot, ...(restored === undefined ? {} : { restored }) } });
  t.match(line(), /\(boot to first result 2\.5s, group 4\.0s, tcg\)$/);
  t.match(line(false), /\(boot to first result 2\.5s/);
  t.match(line(true), /\(restore to first result 2\.5s, group 4\.0s, tcg\)$/);
  t.end();
});
