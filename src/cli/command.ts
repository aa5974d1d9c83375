// The light half of the command line: what a command is (its name, help text
// and flags), the option specs several commands share, and the flag parsers
// that need nothing but the text. Loading `lockstep --help`, `lockstep X
// --help` or a bad flag's error needs only this module and the command
// modules' metadata; the loaders of kernels and scenarios (zod schemas, the
// model) are in ./common.ts, which a command imports inside its run() (issue
// 25: start-up time). Imports only node builtins and src/util/.

import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from '../util/errors.ts';
import { inputProblem } from '../util/input.ts';

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
  /**
   * Runs the command. A command module imports what it needs beyond
   * this module (the matrix runner, the loaders of ./common.ts, ...) here,
   * with `await import(...)`, so that its help costs no start-up time.
   */
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
  'kernel-spec': { type: 'string', multiple: true, arg: 'FILE', help: 'add kernel specs from a JSON file (one object or an array); see docs/kernels.md "Kernel specs"' },
  'no-builtin-kernels': { type: 'boolean', help: 'only the kernels from --kernel-spec files' },
};

export const scenarioOptions: Record<string, OptionSpec> = {
  'scenario-file': { type: 'string', multiple: true, arg: 'PATH', help: 'add scenarios from a JSON file or a directory of them; see harness/scenarios/README.md' },
  'no-builtin-scenarios': { type: 'boolean', help: 'only the scenarios from --scenario-file' },
};

export const artifactUrlOption: Record<string, OptionSpec> = {
  'artifact-base-url': { type: 'string', arg: 'URL', help: 'where the results directory will be published: report.html links each log path under it' },
};

/** --force of the commands that write a results directory (src/results/write.ts guardMeasured). */
export const FORCE_OPTION: Record<string, OptionSpec> = {
  force: { type: 'boolean', help: 'replace a results.json in the output directory even when it holds cells the new output lacks' },
};

/** The entries of `all` with the ids `ids` (all of them when undefined), in that order; ConfigError naming --flag for an unknown id. */
export function pick<T extends { id: string }>(all: T[], ids: string[] | undefined, what: string, flag: string): T[] {
  if (!ids) return all;
  return ids.map((id) => {
    const x = all.find((a) => a.id === id);
    if (!x) throw new ConfigError('command line', `--${flag}`, `no ${what} ${JSON.stringify(id)}`, `choose from: ${all.map((a) => a.id).join(', ')}`);
    return x;
  });
}

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
