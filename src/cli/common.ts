// Shared pieces of the commands: option specs, loading kernels and scenarios
// from built-ins plus user files, and flag parsing helpers.

import { existsSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { builtinSpecs, checkUniqueIds, loadSpecFile, type KernelSpec } from '../kernels/spec.ts';
import { type LoadedScenario, builtinScenarios, loadScenarioDirEach, loadScenarioFile } from '../scenario/load.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { type CellVerdict, verdictClass } from '../results/schema.ts';
import { ConfigError } from '../util/errors.ts';
import { checkInputPath, inputProblem } from '../util/input.ts';

/** Boots at once: each TCG guest runs on one host thread (single-threaded TCG), so one per core. */
export const DEFAULT_JOBS = String(Math.max(1, cpus().length));

/**
 * lockstep's exit codes: 0 ok; 1 a kernel behaved differently (a MISMATCH or
 * PANIC cell, a diff regression); 2 bad input or a missing dependency (one
 * line naming file, field and fix); 3 only infrastructure failed (TIMEOUT,
 * BOOT_FAIL, BUILD_FAIL, ERROR cells, or diff cells that became unstable);
 * 130/143 stopped by SIGINT/SIGTERM.
 */
export const EXIT = { ok: 0, behaviour: 1, badInput: 2, infrastructure: 3 } as const;

/** The exit code of a run's cells: behaviour failures win over infrastructure ones. */
export function exitForVerdicts(verdicts: readonly CellVerdict[]): number {
  const classes = new Set(verdicts.map(verdictClass));
  return classes.has('fail') ? EXIT.behaviour : classes.has('infra') ? EXIT.infrastructure : EXIT.ok;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  arg?: string;
  help: string;
  default?: string;
}

export interface Command {
  name: string;
  args?: string;
  summary: string;
  description: string;
  options: Record<string, OptionSpec>;
  examples?: string[];
  /**
   * The exit code of a command line main() refuses (unknown flag, stray
   * argument); default 2. bisect-step's is 255: git bisect run reads 1..127
   * (2 too) as "bad" and only >= 128 as "stop".
   */
  badInputExit?: number;
  run: (v: Record<string, unknown>, positionals: string[]) => Promise<number>;
}

export const list = (v: unknown): string[] | undefined =>
  typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined;

export const int = (v: unknown, flag: string, min: number, max: number): number => {
  // decimal digits only: Number() would also take "", " 5", "0x10" and "1e3"
  const n = typeof v === 'string' && /^-?\d{1,16}$/.test(v) ? Number(v) : typeof v === 'number' ? v : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError('command line', `--${flag}`, `${JSON.stringify(v)} is not a whole number in ${min}..${max}`, `pass e.g. --${flag} ${min}`);
  return n;
};

export const kernelOptions: Record<string, OptionSpec> = {
  'kernel-spec': { type: 'string', multiple: true, arg: 'FILE', help: 'add kernel specs from a JSON file (one object or an array); see README "Kernel specs"' },
  'no-builtin-kernels': { type: 'boolean', help: 'only the kernels from --kernel-spec files' },
};

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

export function pick<T extends { id: string }>(all: T[], ids: string[] | undefined, what: string, flag: string): T[] {
  if (!ids) return all;
  return ids.map((id) => {
    const x = all.find((a) => a.id === id);
    if (!x) throw new ConfigError('command line', `--${flag}`, `no ${what} ${JSON.stringify(id)}`, `choose from: ${all.map((a) => a.id).join(', ')}`);
    return x;
  });
}

export const scenarioOptions: Record<string, OptionSpec> = {
  'scenario-file': { type: 'string', multiple: true, arg: 'PATH', help: 'add scenarios from a JSON file or a directory of them; see harness/scenarios/README.md' },
  'no-builtin-scenarios': { type: 'boolean', help: 'only the scenarios from --scenario-file' },
};


export const artifactUrlOption: Record<string, OptionSpec> = {
  'artifact-base-url': { type: 'string', arg: 'URL', help: 'where the results directory will be published: report.html links each log path under it' },
};

/** --artifact-base-url, checked: an http(s) URL. */
export function artifactBaseUrl(v: Record<string, unknown>): string | undefined {
  const u = v['artifact-base-url'];
  if (u === undefined) return undefined;
  let ok = false;
  try { ok = ['http:', 'https:'].includes(new URL(String(u)).protocol); } catch { /* not a URL */ }
  if (!ok) throw new ConfigError('command line', '--artifact-base-url', `${JSON.stringify(u)} is not an http(s) URL`, 'give the URL the results directory is uploaded to, e.g. https://ci.example.org/runs/42/');
  return String(u);
}

/**
 * The results.json a DIR|results.json argument names: DIR/results.json for a
 * directory (or a path that does not exist, for the message), else the path
 * itself, so that a FIFO or device is reported as what it is.
 */
export const resultsPath = (p: string): string => {
  const isOther = inputProblem(resolve(p), 'dir', true) !== null;
  return resolve(p.endsWith('.json') || isOther ? p : join(p, 'results.json'));
};
