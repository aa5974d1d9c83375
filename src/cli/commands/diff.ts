import { readResults } from '../../results/write.ts';
import { scenarioDefs } from '../../report/analysis.ts';
import { compareResults, renderComparison } from '../../report/compare.ts';
import { builtinDefsByHash, writeStepSummary } from '../../report/files.ts';
import { ConfigError } from '../../util/errors.ts';
import type { Command } from '../common.ts';
import { resultsPath } from './report.ts';

export const command: Command = {
  name: 'diff',
  args: 'OLD NEW',
  summary: 'compare two runs; exit 1 when something regressed',
  description: `Lists cells whose verdict or first EPERM point changed, kernels whose
classified logic changed, and kernels added or removed. A regression is a MATCH
cell that became anything else (or vanished while its kernel stayed), or a
changed classification. Exit 1 when there is one, 0 otherwise, 2 on bad input.
OLD and NEW are results directories or results.json files. When
$GITHUB_STEP_SUMMARY is set the comparison is appended to it.`,
  options: {},
  examples: ['lockstep diff results/previous results/latest'],
  async run(_v, pos) {
    if (pos.length !== 2) throw new ConfigError('command line', 'OLD NEW', `expected two results (got ${pos.length})`, 'e.g. `lockstep diff last-night/ tonight/`');
    const [a, b] = await Promise.all(pos.map((p) => readResults(resultsPath(p))));
    const fallback = builtinDefsByHash();
    const c = compareResults(a!, b!, scenarioDefs(a!, fallback), scenarioDefs(b!, fallback));
    const text = renderComparison(c, pos[0]!, pos[1]!);
    process.stdout.write(text);
    await writeStepSummary(text);
    return c.regressions ? 1 : 0;
  },
};
