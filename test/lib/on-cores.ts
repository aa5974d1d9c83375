// Runs independent programs (compilers, checkpatch.pl) as many at a time as
// the machine has cores, and hands back their results in the order asked:
// the tests that use it assert each result in that order, so their output
// does not depend on which finished first.

import { availableParallelism } from 'node:os';
import PQueue from 'p-queue';
import { execa } from 'execa';

/** One program's outcome: exit code (null: killed), stdout and stderr as text. */
export interface ProgramRun { code: number | null; stdout: string; stderr: string }

/**
 * Runs each `[file, ...args]` of `commands` (no shell; arguments as given),
 * at most availableParallelism() at once; resolves with one ProgramRun per
 * command, in the order of `commands`. A program that exits non-zero is a
 * result, not a throw; one that cannot start (ENOENT) rejects.
 */
export async function runOnCores(commands: string[][], opts: { timeoutMs?: number } = {}): Promise<ProgramRun[]> {
  const queue = new PQueue({ concurrency: availableParallelism() });
  return Promise.all(commands.map(([file, ...args]) => queue.add(async () => {
    const r = await execa(file!, args, { reject: false, timeout: opts.timeoutMs ?? 600_000, stripFinalNewline: false });
    if (r.failed && r.exitCode === undefined && !r.timedOut && !r.isTerminated) throw new Error(`${file}: ${r.message}`);
    return { code: r.exitCode ?? null, stdout: String(r.stdout), stderr: String(r.stderr) };
  }))) as Promise<ProgramRun[]>;
}
