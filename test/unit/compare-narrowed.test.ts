// lockstep diff on a classification that narrows: cells that could not run
// before (AUX cells SKIPped while lockstep_aux did not build) run and rule
// candidates out. Fewer candidates, all of them old ones, on at least the old
// cells: "narrowed", not a regression; the other way round is "unstable".
// Built from the published run (results/results.json): debian-trixie-6.12's
// AUX cells SKIPped there (V1|V3/perf); debian-6.12.117's ran (MATCH).

import t from 'tap';
import { readResults } from '../../src/results/write.ts';
import { builtinDefsByHash } from '../../src/report/files.ts';
import { scenarioDefs } from '../../src/report/analysis.ts';
import { compareResults, renderComparison } from '../../src/report/compare.ts';

t.test('AUX cells that now run narrow V1|V3/perf to V1b|V3/perf: narrowed, no regression; the reverse is unstable', async (t) => {
  const base = await readResults(new URL('../../results/results.json', import.meta.url).pathname);
  const aux = new Set(['aux-remap', 'aux-unmap']);
  const ran = base.cells.filter((c) => c.kernel === 'debian-6.12.117' && aux.has(c.scenario));
  t.equal(ran.length, 2);
  t.ok(ran.every((c) => c.verdict === 'MATCH'), 'the AUX cells ran on 6.12.117');
  t.ok(base.cells.filter((c) => c.kernel === 'debian-trixie-6.12' && aux.has(c.scenario)).every((c) => c.verdict === 'SKIP'), 'and SKIPped on trixie-6.12');
  const next = { ...base, cells: base.cells.map((c) => (c.kernel === 'debian-trixie-6.12' && aux.has(c.scenario) ? { ...ran.find((r) => r.scenario === c.scenario)!, kernel: c.kernel } : c)) };
  const defs = scenarioDefs(base, builtinDefsByHash());
  const fwd = compareResults(base, next, defs, defs);
  const k = fwd.classification.find((x) => x.kernel === 'debian-trixie-6.12')!;
  t.same([k.old, k.new, k.category], ['V1|V3/perf', 'V1b|V3/perf', 'narrowed']);
  t.equal(fwd.regressions, 0, 'a narrowed classification is not a regression');
  t.match(renderComparison(fwd, 'a', 'b'), /^narrowed debian-trixie-6\.12: classification narrowed \(more cells ran, fewer candidates, none new\): V1\|V3\/perf -> V1b\|V3\/perf$/m);
  const back = compareResults(next, base, defs, defs);
  t.equal(back.classification.find((x) => x.kernel === 'debian-trixie-6.12')!.category, 'unstable', 'fewer cells and every old candidate allowed: less known');
  t.end();
});
