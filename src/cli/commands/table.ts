import { ConfigError } from '../../util/errors.ts';
import { type Command, resultsPath } from '../command.ts';

export const command: Command = {
  name: 'table',
  args: 'DIR|results.json',
  summary: 'print the markdown table of a finished run',
  description: 'Re-renders table.md from results.json (validating its schema).',
  options: {},
  async run(_v, pos) {
    if (pos.length !== 1) throw new ConfigError('command line', 'DIR', 'expected one results directory or results.json', 'e.g. `lockstep table results/latest`');
    const { readResults } = await import('../../results/write.ts');
    const { renderTable } = await import('../../results/table.ts');
    const { builtinDefsByHash } = await import('../../report/files.ts');
    console.log(renderTable(await readResults(resultsPath(pos[0]!)), builtinDefsByHash()));
    return 0;
  },
};
