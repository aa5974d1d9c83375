// Running external tools: one place, through execa (a maintained library:
// argument arrays, never a shell; ENOENT reported; kill escalation).
//
// Every child is stopped the same way: when the caller's AbortSignal fires
// (lockstep got SIGINT/SIGTERM) or its timeout passes, it gets SIGTERM, and
// SIGKILL 5 s later if still alive. `make` passes SIGTERM on to its own
// children (GNU make kills its running jobs on a fatal signal), apt-get's and
// git's helpers see their parent's pipes close. execa also kills every
// running child when lockstep itself exits (its `cleanup` option).

import { execa, type ResultPromise } from 'execa';
import { MissingDependencyError } from './errors.ts';
import { GIT_ALLOW_PROTOCOL } from './git-url.ts';

/** SIGTERM first, SIGKILL this many ms later. */
export const KILL_GRACE_MS = 5000;

export interface ToolOptions {
  cwd?: string;
  /** added to process.env (LC_ALL=C is always set) */
  env?: NodeJS.ProcessEnv;
  /** stop the child (SIGTERM, then SIGKILL after KILL_GRACE_MS) when this aborts */
  signal?: AbortSignal;
  /** stop the child after this many ms */
  timeoutMs?: number;
  /** what to install when `cmd` is missing (becomes a MissingDependencyError) */
  install: string;
}

/** A tool that ran and failed: exit code or signal, and its output. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
    /** true when it was stopped because the caller's signal aborted */
    readonly canceled: boolean,
    /** its exit code; undefined when killed by a signal or not started */
    readonly exitCode?: number,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

/**
 * git only ever speaks the transports of GIT_ALLOW_PROTOCOL (never ext::,
 * fd:: or another remote helper, whatever a config or URL says) and never
 * prompts (git(1) ENVIRONMENT).
 */
const GIT_ENV = { GIT_ALLOW_PROTOCOL, GIT_PROTOCOL_FROM_USER: '0', GIT_TERMINAL_PROMPT: '0' };

const options = (cmd: string, o: ToolOptions) => ({
  cwd: o.cwd,
  env: { LC_ALL: 'C', ...(cmd === 'git' ? GIT_ENV : {}), ...o.env },
  cancelSignal: o.signal,
  timeout: o.timeoutMs,
  killSignal: 'SIGTERM' as const,
  forceKillAfterDelay: KILL_GRACE_MS,
  stripFinalNewline: false,
});

function toError(cmd: string, args: readonly string[], o: ToolOptions, e: unknown): Error {
  const x = e as { code?: string; stdout?: unknown; stderr?: unknown; isCanceled?: boolean; shortMessage?: string; message?: string; exitCode?: number };
  if (x.code === 'ENOENT') return new MissingDependencyError(cmd, o.install);
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  return new ToolError(`${cmd} ${args.slice(0, 4).join(' ')}: ${x.shortMessage ?? x.message ?? String(e)}`, text(x.stdout), text(x.stderr), Boolean(x.isCanceled), x.exitCode);
}

/**
 * Run `cmd args` to completion and return its output. Throws
 * MissingDependencyError when `cmd` is not installed, ToolError when it
 * exits non-zero, is killed, times out or is canceled through `signal`
 * (also when `signal` had already aborted: nothing is started then).
 */
export async function runTool(cmd: string, args: readonly string[], o: ToolOptions): Promise<{ stdout: string; stderr: string }> {
  if (o.signal?.aborted) throw new ToolError(`${cmd}: not started, the run was interrupted`, '', '', true);
  try {
    const r = await execa(cmd, args, { ...options(cmd, o), maxBuffer: 256 << 20 });
    return { stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    throw toError(cmd, args, o, e);
  }
}

/**
 * Start `cmd args` with piped stdout/stderr for the caller to read; `done`
 * settles like runTool (output not buffered). The child is stopped as
 * described above.
 */
export function spawnTool(cmd: string, args: readonly string[], o: ToolOptions & { stdin?: 'ignore' | 'pipe' }): { child: ResultPromise; done: Promise<void> } {
  const child = execa(cmd, args, { ...options(cmd, o), stdin: o.stdin ?? 'ignore', buffer: false });
  const done = (async () => {
    if (o.signal?.aborted) child.kill('SIGTERM');
    try {
      await child;
    } catch (e) {
      throw toError(cmd, args, o, e);
    }
  })();
  return { child, done };
}
