// Runs many lockstep command lines in ONE process (one start-up instead of
// one per case): the case list comes as JSON in $LOCKSTEP_BATCH, each runs
// through main() with stdout and stderr captured, and one JSON line per case
// ({code, stdout, stderr}) goes to the real stdout. A case that blocks blocks
// the batch: the parent kills it and every case left unreported fails.
// A case is an argv (string[]) or {argv, cwd?, env?}: cwd is the directory
// the case runs in (process.chdir, restored after it), env the variables set
// for it (a null value unsets one), restored after it too.
// Run as: node --import tsx test/lib/cli-batch.ts
// From a test: import { runBatch } from '../lib/cli-batch.ts' (spawns the above).

import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One command line of a batch: its argv, and optionally its cwd and extra env (null = unset). */
export type BatchCase = string[] | { argv: string[]; cwd?: string; env?: Record<string, string | null> };
/** What a case printed and returned; code null: the case never reported (an earlier one blocked or the batch died). */
export interface BatchRun { code: number | null; stdout: string; stderr: string }

/**
 * Runs `cases` in one child process (this file as its entry point, main()
 * in-process), in order; resolves with one BatchRun per case. `cwd` and `env`
 * are the child's (default: this process's cwd and env; GITHUB_STEP_SUMMARY
 * is always removed so no case appends to a CI summary). The child is
 * SIGKILLed after `timeoutMs` (default 120 s): a blocked case fails itself
 * and every case after it instead of hanging the suite.
 */
export function runBatch(cases: BatchCase[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<BatchRun[]> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env), LOCKSTEP_BATCH: JSON.stringify(cases) };
    delete env.GITHUB_STEP_SUMMARY;
    const p = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url)], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const killer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    p.on('error', reject);
    p.on('close', () => {
      clearTimeout(killer);
      const runs = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as BatchRun);
      resolve(cases.map((_, i) => runs[i] ?? { code: null, stdout: '', stderr: 'not reported: an earlier case blocked or the batch died' }));
    });
  });
}

async function runCases(): Promise<void> {
  const { main } = await import('../../src/cli/main.ts');
  const cases = JSON.parse(process.env.LOCKSTEP_BATCH ?? '[]') as BatchCase[];
  delete process.env.LOCKSTEP_BATCH;
  const realOut = process.stdout.write.bind(process.stdout);
  const realErr = process.stderr.write.bind(process.stderr);
  const home = process.cwd();
  for (const c of cases) {
    const { argv, cwd, env: extra } = Array.isArray(c) ? { argv: c, cwd: undefined, env: undefined } : c;
    let stdout = '';
    let stderr = '';
    const env = { ...process.env };
    if (cwd) process.chdir(cwd);
    for (const [k, v] of Object.entries(extra ?? {})) {
      if (v === null) delete process.env[k];
      else process.env[k] = v;
    }
    process.stdout.write = ((c: string | Uint8Array) => { stdout += String(c); return true; }) as typeof process.stdout.write;
    process.stderr.write = ((c: string | Uint8Array) => { stderr += String(c); return true; }) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main(argv);
    } catch (e) {
      stderr += `internal error (thrown out of main): ${(e as Error).stack}`;
      code = 1;
    } finally {
      process.stdout.write = realOut;
      process.stderr.write = realErr;
      for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
      Object.assign(process.env, env);
      process.chdir(home);
    }
    realOut(`${JSON.stringify({ code, stdout, stderr })}\n`);
  }
  process.exit(0);
}

if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) await runCases();
