// lockstep diff on a classification that narrows: cells that could not run
// before (AUX cells SKIPped while lockstep_aux did not build) run and rule
// candidates out. Fewer candidates, all of them old ones, on at least the old
// cells: "narrowed", not a regression; the other way round is "unstable".
// Built from the published run (results/results.json): a kernel whose AUX
// cells ran, against the same run with those cells SKIPped.

import t from 'tap';
import { readResults } from '../../src/results/write.ts';
import { builtinDefsByHash } from '../../src/report/files.ts';
import { scenarioDefs } from '../../src/report/analysis.ts';
import { compareResults, renderComparison } from '../../src/report/compare.ts';

t.test('AUX cells that now run narrow V1|V3 to V1b|V3: narrowed, no regression; the reverse is unstable', async (t) => {
  const next = await readResults(new URL('../../results/results.json', import.meta.url).pathname);
  const defs = scenarioDefs(next, builtinDefsByHash());
  const aux = new Set(['aux-remap', 'aux-unmap']);
  // a kernel of the published run whose AUX cells ran and whose class is V1b|V3 (the Debian 6.x images)
  const ran = (k: string) => next.cells.filter((c) => c.kernel === k && aux.has(c.scenario));
  const k = next.kernels.map((x) => x.id).find((id) => ran(id).length === 2 && ran(id).every((c) => c.verdict === 'MATCH')
    && compareResults(next, next, defs, defs).classification.find((x) => x.kernel === id)?.old.startsWith('V1b|V3/'));
  t.ok(k, 'the published run has a V1b|V3 kernel whose AUX cells ran');
  // the same run as it was while lockstep_aux did not build for it: its AUX cells SKIPped
  const base = { ...next, cells: next.cells.map((c) => (c.kernel === k && aux.has(c.scenario) ? { ...c, verdict: 'SKIP' as const, measured: [], reason: 'lockstep_aux was not built' } : c)) };
  const fwd = compareResults(base, next, defs, defs);
  const ch = fwd.classification.find((x) => x.kernel === k)!;
  const counter = ch.new.split('/')[1];
  t.same([ch.old, ch.new, ch.category], [`V1|V3/${counter}`, `V1b|V3/${counter}`, 'narrowed']);
  t.equal(fwd.regressions, 0, 'a narrowed classification is not a regression');
  t.match(renderComparison(fwd, 'a', 'b'), new RegExp(`^narrowed ${k!.replace(/\./g, '\\.')}: classification narrowed \\(more cells ran, fewer candidates, none new\\): V1\\|V3/${counter} -> V1b\\|V3/${counter}$`, 'm'));
  const back = compareResults(next, base, defs, defs);
  t.equal(back.classification.find((x) => x.kernel === k)!.category, 'unstable', 'fewer cells and every old candidate allowed: less known');
  t.end();
});
