// Shared pieces of the commands that load things: kernels and scenarios from
// built-ins plus user files, and the exit code of a run's verdicts. These
// pull in the kernel spec and scenario schemas (zod) and the model, so a
// command imports this module inside its run(); the light pieces (option
// specs, flag parsers, the Command shape) are in ./command.ts and are
// re-exported here for callers that already load this module.

import { existsSync, statSync } from 'node:fs';
import { builtinSpecs, checkUniqueIds, loadSpecFile, type KernelSpec } from '../kernels/spec.ts';
import { type LoadedScenario, builtinScenarios, loadScenarioDirEach, loadScenarioFile } from '../scenario/load.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { type CellVerdict, verdictClass } from '../results/schema.ts';
import { ConfigError } from '../util/errors.ts';
import { checkInputPath } from '../util/input.ts';
import { EXIT } from './command.ts';

export { artifactBaseUrl, artifactUrlOption, DEFAULT_JOBS, EXIT, FORCE_OPTION, int, kernelOptions, list, pick, resultsPath, scenarioOptions } from './command.ts';
export type { Command, OptionSpec } from './command.ts';

/** The exit code of a run's cells: behaviour failures win over infrastructure ones. */
export function exitForVerdicts(verdicts: readonly CellVerdict[]): number {
  const classes = new Set(verdicts.map(verdictClass));
  return classes.has('fail') ? EXIT.behaviour : classes.has('infra') ? EXIT.infrastructure : EXIT.ok;
}

export async function loadKernels(v: Record<string, unknown>): Promise<KernelSpec[]> {
  const specs = v['no-builtin-kernels'] ? [] : await builtinSpecs();
  for (const f of (v['kernel-spec'] as string[] | undefined) ?? []) {
    // never a FIFO or device (it would block); a missing file is the spec loader's one-line error
    specs.push(...(await loadSpecFile(checkInputPath(f, '--kernel-spec', 'give the path of a kernel spec .json file', 'file', true))));
  }
  return checkUniqueIds(specs);
}

/**
 * The compiled scenarios of the command line: built-ins (unless
 * --no-builtin-scenarios) and --scenario-file ones. `badFiles`: see
 * loadScenarioEntries.
 */
export async function loadScenarios(v: Record<string, unknown>, badFiles?: ConfigError[]): Promise<CompiledScenario[]> {
  return (await loadScenarioEntries(v, badFiles)).map((l) => l.compiled);
}

/**
 * As loadScenarios, with each scenario's file and description. With
 * `badFiles`, a bad file inside a --scenario-file directory does not stop the
 * others: its ConfigError goes there (the caller reports it and exits 2 at
 * the end); without, the first one is thrown. A bad file named directly, or
 * an id defined twice across the sources, is always thrown.
 */
export async function loadScenarioEntries(v: Record<string, unknown>, badFiles?: ConfigError[]): Promise<LoadedScenario[]> {
  const loaded = v['no-builtin-scenarios'] ? [] : builtinScenarios();
  for (const p of (v['scenario-file'] as string[] | undefined) ?? []) {
    const abs = checkInputPath(p, '--scenario-file', 'give a scenario .json file or a directory of them', 'file-or-dir', true);
    if (existsSync(abs) && statSync(abs).isDirectory()) {
      const dir = loadScenarioDirEach(abs);
      if (dir.errors.length > 0 && badFiles === undefined) throw dir.errors[0]!;
      badFiles?.push(...dir.errors);
      loaded.push(...dir.loaded);
    } else loaded.push(loadScenarioFile(abs));
  }
  const seen = new Set<string>();
  for (const s of loaded) {
    if (seen.has(s.id)) throw new ConfigError('scenarios', 'id', `scenario id ${JSON.stringify(s.id)} is defined twice`, 'rename one of them');
    seen.add(s.id);
  }
  return loaded;
}
