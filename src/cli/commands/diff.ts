import { ConfigError } from '../../util/errors.ts';
import { type Command, EXIT, resultsPath } from '../command.ts';

export const command: Command = {
  name: 'diff',
  args: 'OLD NEW',
  summary: 'compare two runs: regressions, fixes, unstable cells; exit 1 on a regression, 3 when only infrastructure changed',
  description: `Puts every cell (kernel x scenario) that changed into one category, as KernelCI does:
  regression     the cell ran and its behaviour got worse (MATCH/SKIP/TIMEOUT.. -> MISMATCH/PANIC)
  fixed          a failing cell (MISMATCH, PANIC, TIMEOUT, BOOT_FAIL, ...) that now passes
  unstable       infrastructure failed on the new side only (MATCH -> TIMEOUT, BOOT_FAIL, BUILD_FAIL, ERROR)
  still_failing  failed on both sides
  new, missing   the cell exists on one side only (kernels added or removed are listed too)
  changed        both pass or skip, something else moved (first EPERM point, SKIP <-> MATCH)
and compares each kernel's classified logic (the label \`lockstep classify\` prints):
a changed label is a regression when both sides had cells to classify,
unstable when one side had none.
Exit 1 when there is a regression or NEW lost cells OLD had (missing: a run
that measured less than its baseline, down to nothing, never passes), 3 when
there is neither but something was unstable, 0 otherwise, 2 on bad input. OLD and NEW are results directories
or results.json files. When $GITHUB_STEP_SUMMARY is set the comparison is
appended to it.`,
  options: {
    json: { type: 'boolean', help: 'print the comparison as JSON (categories, counts, per-kernel classification)' },
  },
  examples: ['lockstep diff results/previous results/latest', 'lockstep diff --json last-night/ tonight/ | jq .counts'],
  async run(v, pos) {
    if (pos.length !== 2) throw new ConfigError('command line', 'OLD NEW', `expected two results (got ${pos.length})`, 'e.g. `lockstep diff last-night/ tonight/`');
    const { readResults } = await import('../../results/write.ts');
    const { scenarioDefs } = await import('../../report/analysis.ts');
    const { compareResults, comparisonJson, renderComparison } = await import('../../report/compare.ts');
    const { builtinDefsByHash, writeStepSummary } = await import('../../report/files.ts');
    const [a, b] = await Promise.all(pos.map((p) => readResults(resultsPath(p))));
    const fallback = builtinDefsByHash();
    const c = compareResults(a!, b!, scenarioDefs(a!, fallback), scenarioDefs(b!, fallback));
    const text = renderComparison(c, pos[0]!, pos[1]!);
    if (v.json) console.log(JSON.stringify(comparisonJson(c, pos[0]!, pos[1]!), null, 1));
    else process.stdout.write(text);
    await writeStepSummary(text);
    return c.regressions || c.counts.missing ? EXIT.behaviour : c.unstable ? EXIT.infrastructure : EXIT.ok;
  },
};
