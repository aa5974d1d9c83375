// One real run shared by the smoke tier: made once per suite, read by every
// smoke test that needs real cells, instead of each file booting Debian
// 6.1.190 on its own. Any smoke file run alone still works: the first caller
// makes the run (under a lock), later callers of the same suite read it.
//
// "Once per suite": the run's key is a hash of its inputs (src/, bin/,
// harness/ sources, the kernel spec files, the recipe) and of the suite --
// the tap runner process every test file of one `tap` invocation is a child
// of (its pid and start time). A new `npm test` makes a new run; nothing is
// carried over from an earlier suite or from other code.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults, type Results } from '../../src/results/schema.ts';
import { acquireLock } from '../../src/util/lock.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What a shared run boots: built-in spec files, extra specs (written to a file), scenario ids. */
export interface SmokeRecipe {
  /** names the run's directory, for people */
  name: string;
  /** spec files under kernels/, e.g. 'host.json' */
  kernelSpecFiles: string[];
  /** more kernel specs, as JSON objects (written to a spec file in the run's directory) */
  extraSpecs: Record<string, unknown>[];
  scenarios: string[];
}

/**
 * The shared run: the host kernel under three expectations (its own, a wrong
 * one -- a real MISMATCH -- and `unknown` -- UNCHECKED) and Debian 6.1.190 in
 * QEMU (2 and 4 vCPUs), over shared-counter, remmap, sysctl-lowered and
 * cpu-offline: every verdict the output formats carry (MATCH, MISMATCH,
 * UNCHECKED, SKIP), a host and a QEMU runtime. 16 cells, exit 1.
 */
export const SMOKE_RECIPE: SmokeRecipe = {
  name: 'formats',
  kernelSpecFiles: ['host.json', 'debian-6.1.190.json'],
  extraSpecs: [
    { id: 'host-as-v2-perf', kind: 'host', expect: 'V2/perf', description: 'the host kernel diffed against the wrong model on purpose' },
    { id: 'host-unknown', kind: 'host', expect: 'unknown', description: 'the host kernel, classified only' },
  ],
  scenarios: ['shared-counter', 'remmap', 'sysctl-lowered', 'cpu-offline'],
};

/**
 * The base run: the host kernel natively and Debian 6.1.190 in QEMU (2 and 4
 * vCPUs) over shared-counter, remmap, overage, sysctl-lowered and
 * cpu-offline; every cell MATCH or SKIP (cpu-offline on the host), exit 0.
 * Read by smoke/shard (the whole run its shards must merge to) and
 * smoke/spine (the Debian kernel's measured ops).
 */
export const BASE_RECIPE: SmokeRecipe = {
  name: 'base',
  kernelSpecFiles: ['host.json', 'debian-6.1.190.json'],
  extraSpecs: [],
  scenarios: ['shared-counter', 'remmap', 'overage', 'sysctl-lowered', 'cpu-offline'],
};

/** The `lockstep run` kernel flags of a recipe whose extraSpecs is empty (a recipe with extra specs has its spec file in its run's directory). */
export function recipeKernelFlags(recipe: SmokeRecipe): string[] {
  if (recipe.extraSpecs.length) throw new Error(`recipe ${recipe.name} has extra specs: its flags name a file in its run directory`);
  return ['--no-builtin-kernels', ...recipe.kernelSpecFiles.flatMap((f) => ['--kernel-spec', join(ROOT, 'kernels', f)])];
}

/** A finished shared run: `dir` holds results.json and the reports; `code` and `stderr` are lockstep's. */
export interface SmokeRun {
  dir: string;
  results: Results;
  code: number;
  stderr: string;
}

/** Files kbuild and make leave beside the sources (harness/auxpmu): not inputs. */
const BUILD_OUTPUT = /^\.|\.(o|ko|mod|mod\.c|cmd|order|symvers|a)$|^Module\.symvers$|^modules\.order$/;

/** Every file under `dir` (sorted, repo-relative), skipping build outputs. */
function filesUnder(dir: string, skip: Set<string>): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(ROOT, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = join(rel, e.name);
      if (skip.has(e.name) || BUILD_OUTPUT.test(e.name)) continue;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.push(r);
    }
  };
  walk(dir);
  return out;
}

/** The suite: the tap runner's pid and start time (from /proc), or this process's when run without tap. */
export function suiteId(): string {
  const start = (pid: number): string => {
    try {
      // field 22 of /proc/PID/stat, after the parenthesised command name
      return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[19] ?? '';
    } catch {
      return '';
    }
  };
  const runner = process.env.TAP === '1' ? process.ppid : process.pid;
  return `${runner}-${start(runner)}`;
}

/**
 * The hex sha256 key of a run: the recipe, the suite, and the content of
 * src/, bin/, harness/ (without build/) and the recipe's spec files.
 */
export function smokeKey(recipe: SmokeRecipe, suite: string): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ recipe, suite }));
  const files = [...filesUnder('src', new Set()), ...filesUnder('bin', new Set()), ...filesUnder('harness', new Set(['build'])),
    ...recipe.kernelSpecFiles.map((f) => join('kernels', f))];
  for (const f of files) h.update(`${f}\0${statSync(join(ROOT, f)).size}\0`).update(readFileSync(join(ROOT, f)));
  return h.digest('hex');
}

function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'lockstep.mjs'), ...args], {
      cwd: ROOT, env: { ...process.env, GITHUB_STEP_SUMMARY: '' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', rej);
    p.on('close', (code) => res({ code: code ?? -1, stderr }));
  });
}

/** Remove shared runs of earlier suites (a day old or more), never one in use today. */
async function sweep(base: string): Promise<void> {
  for (const e of await readdir(base).catch(() => [] as string[])) {
    const p = join(base, e);
    const s = await stat(p).catch(() => null);
    if (s && Date.now() - s.mtimeMs > 24 * 3600_000) await rm(p, { recursive: true, force: true });
  }
}

/**
 * The shared run of `recipe` for this suite: made by the first caller (a real
 * `lockstep run` of the recipe, under a lock, written to a partial directory
 * and renamed when complete), read by the rest. Lives in
 * $TMPDIR/lockstep-smoke/<name>-<key>. Throws when lockstep wrote no
 * results.json (the error carries its stderr tail) or the results do not
 * validate.
 */
export async function smokeRun(recipe: SmokeRecipe = SMOKE_RECIPE): Promise<SmokeRun> {
  const base = join(tmpdir(), 'lockstep-smoke');
  await mkdir(base, { recursive: true });
  const key = smokeKey(recipe, suiteId());
  const home = join(base, `${recipe.name}-${key.slice(0, 16)}`);
  const dir = join(home, 'run');
  const release = await acquireLock(join(base, `${recipe.name}-${key.slice(0, 16)}.lock`), `the shared ${recipe.name} run`, { log: () => {}, timeoutMs: 40 * 60_000 });
  try {
    const done = await readFile(join(home, 'exit.json'), 'utf8').catch(() => null);
    if (done === null) {
      await sweep(base);
      await rm(home, { recursive: true, force: true });
      await mkdir(home, { recursive: true });
      const specs = join(home, 'kernels.json');
      await writeFile(specs, JSON.stringify(recipe.extraSpecs));
      const partial = join(home, 'run.partial');
      const flags = recipe.kernelSpecFiles.flatMap((f) => ['--kernel-spec', join(ROOT, 'kernels', f)]);
      const r = await cli(['run', '--no-builtin-kernels', ...flags, ...(recipe.extraSpecs.length ? ['--kernel-spec', specs] : []),
        '--scenarios', recipe.scenarios.join(','), '--jobs', '1', '--out', partial, '--quiet']);
      if (!(await stat(join(partial, 'results.json')).catch(() => null))) {
        throw new Error(`shared smoke run ${recipe.name}: lockstep exited ${r.code} without results.json: ${r.stderr.slice(-1500)}`);
      }
      await rename(partial, dir);
      await writeFile(join(home, 'exit.json'), JSON.stringify(r));
    }
    const { code, stderr } = JSON.parse(await readFile(join(home, 'exit.json'), 'utf8')) as { code: number; stderr: string };
    const results = checkResults(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')), dir);
    return { dir, results, code, stderr };
  } finally {
    await release();
  }
}
