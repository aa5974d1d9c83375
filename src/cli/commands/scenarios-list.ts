import { type Command, int, scenarioOptions } from '../command.ts';
import { renderScenarioList, type ScenarioRow } from '../scenarios-view.ts';

export const command: Command = {
  name: 'scenarios list',
  summary: 'list scenarios: id, CPUs, ops and description',
  description: `Built-in scenarios live in harness/scenarios/*.json; add your own with --scenario-file.
One row per scenario: its id, online CPUs ("any": compiled for the CPUs each run has),
ops of the compiled script (counts expanded) and the description, wrapped to --width
columns (default: the terminal's width, 100 when not a terminal). The id column is
as wide as the longest id; with very long ids each description goes on its own lines.`,
  options: {
    width: { type: 'string', arg: 'N', help: 'wrap descriptions to N columns (default: the terminal width, or 100)' },
    json: { type: 'boolean', help: 'print a JSON array of {id, cpus, ops, description, file}' },
    ...scenarioOptions,
  },
  examples: ['lockstep scenarios list', 'lockstep scenarios list --scenario-file my-scenarios --width 80', 'lockstep scenarios list --json'],
  async run(v) {
    const width = v.width !== undefined ? int(v.width, 'width', 40, 1000) : (process.stdout.isTTY && process.stdout.columns) || 100;
    const { loadScenarioEntries } = await import('../common.ts');
    const loaded = await loadScenarioEntries(v);
    const rows: ScenarioRow[] = loaded.map((l) => ({ id: l.id, cpus: l.compiled.cpus_any ? 'any' : l.compiled.cpus, ops: l.compiled.ops.length, description: l.description }));
    if (v.json) console.log(JSON.stringify(rows.map((r, k) => ({ ...r, file: loaded[k]!.file })), null, 1));
    else for (const l of renderScenarioList(rows, width)) console.log(l);
    return 0;
  },
};
