import { join, resolve } from 'node:path';
import { ConfigError } from '../../util/errors.ts';
import { type Command, FORCE_OPTION, resultsPath } from '../command.ts';

export const command: Command = {
  name: 'merge',
  args: 'A B ..',
  summary: 'join shard results (`run --shard i/n`) into one run',
  description: `Reads each shard's results.json and writes OUT/results.json, table.md,
report.html, junit.xml and results.tap. Refuses shards of different matrices
(kernels or scenarios differ: the matrix hash in results.json) and shards that
hold the same cell. Missing shards are reported and make the result incomplete.
An --out directory holding a results.json with cells the merge lacks is
refused (exit 2) unless --force.
When $GITHUB_STEP_SUMMARY is set a markdown summary is appended to it.`,
  options: {
    out: { type: 'string', arg: 'DIR', help: 'output directory (required)' },
    ...FORCE_OPTION,
  },
  examples: ['lockstep merge shard-1 shard-2 shard-3 --out merged'],
  async run(v, pos) {
    if (!v.out) throw new ConfigError('command line', '--out', 'missing', 'say where the merged results go: --out DIR');
    if (pos.length < 1) throw new ConfigError('command line', 'A B ..', 'no shard results given', 'e.g. `lockstep merge shard-1 shard-2 --out merged`');
    const { mergeResults } = await import('../../matrix/shard.ts');
    const { checkOutputDir, guardMeasured, readResults, RESULT_FILES, serializeResults, writeAtomic } = await import('../../results/write.ts');
    const { renderSummary } = await import('../../report/summary.ts');
    const { writeReports, writeStepSummary } = await import('../../report/files.ts');
    const out = resolve(String(v.out));
    await checkOutputDir(out, RESULT_FILES);
    const inputs = await Promise.all(pos.map(async (p) => ({ path: p, results: await readResults(resultsPath(p)) })));
    const { merged, warnings } = mergeResults(inputs);
    for (const w of warnings) console.error(`lockstep merge: warning: ${w}`);
    await guardMeasured(out, merged, Boolean(v.force));
    await writeAtomic(join(out, 'results.json'), serializeResults(merged));
    const w = await writeReports(merged, out);
    await writeStepSummary(renderSummary(merged, w.logic));
    console.error(`lockstep merge: ${inputs.length} result(s), ${merged.cells.length} cells -> ${join(out, 'results.json')}, ${w.files.map((f) => f.slice(out.length + 1)).join(', ')}`);
    return 0;
  },
};
