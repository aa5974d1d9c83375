import { type Command, loadScenarios, scenarioOptions } from '../common.ts';

export const command: Command = {
  name: 'scenarios list',
  summary: 'list scenarios: CPUs, ops, and description',
  description: 'Built-in scenarios live in harness/scenarios/*.json; add your own with --scenario-file.',
  options: { ...scenarioOptions },
  async run(v) {
    for (const s of await loadScenarios(v)) console.log(`${s.id.padEnd(22)} ${(s.cpus_any ? 'any' : String(s.cpus)).padStart(3)} CPUs ${String(s.ops.length).padStart(5)} ops`);
    return 0;
  },
};
