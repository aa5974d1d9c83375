// Helpers of the fault tests (test/{smoke,integration}/faults*.test.ts and others): run the real CLI as a
// child process, write scenario and kernel spec files, look at /proc.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'lockstep.mjs');

/** The Debian kernel every fault test boots (its spec is copied, so others' built-in specs cannot break these tests). */
export const DEBIAN_SPEC = JSON.parse(readFileSync(join(ROOT, 'kernels', 'debian-6.1.190.json'), 'utf8')) as Record<string, unknown>;
export const DEBIAN_ID = String(DEBIAN_SPEC.id);

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

export interface CliOpts {
  env?: NodeJS.ProcessEnv;
  /** SIGKILL the CLI after this long (a hung test must not hang the suite) */
  killAfterMs?: number;
  onStart?: (pid: number) => void;
  onStderr?: (all: string) => void;
  /** own process group, as a shell job is (so a test can signal the whole group, like Ctrl-C) */
  detached?: boolean;
}

export function lockstep(args: string[], opts: CliOpts = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, LOCKSTEP_ACCEL: 'tcg', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; opts.onStderr?.(stderr); });
    const killer = setTimeout(() => p.kill('SIGKILL'), opts.killAfterMs ?? 600_000);
    p.on('error', reject);
    if (p.pid) opts.onStart?.(p.pid);
    p.on('close', (code, signal) => { clearTimeout(killer); resolve({ code, signal, stdout, stderr, pid: p.pid ?? -1 }); });
  });
}

export const tmp = (prefix: string): string => mkdtempSync(join(tmpdir(), `lockstep-test-${prefix}-`));

/** A scenario file (description defaulted; cpus "any": fault handling does not depend on the count, and host rows run at the host's). */
export function scenarioFile(dir: string, s: Record<string, unknown>): string {
  const path = join(dir, `${String(s.id)}.json`);
  writeFileSync(path, JSON.stringify({ description: 'fault test', cpus: 'any', ...s }, null, 1));
  return path;
}

export function specFile(dir: string, name: string, spec: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(spec, null, 1));
  return path;
}

export const OK_SCENARIO = { id: 'a-ok', ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'probe' }] };
export const AFTER_SCENARIO = { id: 'z-after', ops: [{ op: 'map', buf: 'z', cpu: 0, data_pages: 1 }, { op: 'probe' }] };

export interface Cell { kernel: string; scenario: string; verdict: string; reason?: string; console_excerpt?: string; [k: string]: unknown }
export interface ResultsJson { complete: boolean; cells: Cell[]; [k: string]: unknown }

export const readResults = (out: string): ResultsJson => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as ResultsJson;
export const cell = (r: ResultsJson, scenario: string, kernel = DEBIAN_ID): Cell | undefined =>
  r.cells.find((c) => c.scenario === scenario && c.kernel === kernel);

/** Live processes whose command line contains `needle`: [pid, argv0]. */
export function procsWith(needle: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let cmd: string;
    try { cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8'); } catch { continue; }
    // a zombie has an empty cmdline and owns nothing any more
    if (cmd.includes(needle)) out.push({ pid: Number(d), cmd: cmd.split('\0').join(' ') });
  }
  return out;
}

/** Is `pid` a live (not zombie) process? */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `pred` every 100 ms until it holds or `ms` passed; the last value. */
export async function waitFor<T>(pred: () => T, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v || Date.now() > end) return v;
    await sleep(100);
  }
}

/** The common flags: only our kernel spec and scenario files, no built-ins. */
export function runArgs(o: { specs: string[]; scenarios: string[]; out: string; kernels?: string; extra?: string[]; progress?: boolean }): string[] {
  return [
    'run', '--no-builtin-kernels', '--no-builtin-scenarios', ...(o.progress ? [] : ['--quiet']),
    ...o.specs.flatMap((s) => ['--kernel-spec', s]),
    ...o.scenarios.flatMap((s) => ['--scenario-file', s]),
    ...(o.kernels ? ['--kernels', o.kernels] : []),
    '--out', o.out,
    // one boot per group: these tests watch one fault at a time (retries: test/smoke/portable.test.ts)
    ...(o.extra?.includes('--attempts') ? [] : ['--attempts', '1']),
    ...(o.extra ?? []),
  ];
}
