// A closed stdout (`lockstep ... | head -1`) is not an error: node ignores
// SIGPIPE, so a write to a pipe whose reader has gone fails with EPIPE, and an
// unhandled 'error' event on process.stdout kills the process with a stack
// trace and exit 1. Installed once by bin/lockstep.mjs, for every command.

import { writeSync } from 'node:fs';

/** What became of an output stream watched by surviveClosedPipe. */
export interface PipeState {
  /** the reader went away (EPIPE): later output was dropped */
  closed: boolean;
  /** any other write error (ENOSPC on a full disk, EIO, ...): the command must not exit 0 */
  failed: NodeJS.ErrnoException | null;
}

/**
 * Make `stream` survive its reader going away: the first EPIPE marks it
 * closed and every later write is dropped (node's destroyed stream discards
 * them), so the command finishes as it would have (a `run` still writes its
 * results files) and exits with its own code, quietly: 0 for a command that
 * only prints. Any other write error is reported in one line on stderr
 * (fd 2, `label`: "stdout"), recorded in `failed`, and makes the process exit 1
 * unless it already exits non-zero.
 */
export function surviveClosedPipe(stream: NodeJS.WriteStream, label: string): PipeState {
  const state: PipeState = { closed: false, failed: null };
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') { state.closed = true; return; }
    if (e.code === 'ERR_STREAM_DESTROYED' || state.failed) return; // later writes to a stream already gone
    state.failed = e;
    if (!process.exitCode) process.exitCode = 1; // the command may have returned already
    if (stream !== process.stderr) {
      try { writeSync(2, `lockstep: cannot write ${label}: ${e.message}\n`); } catch { /* stderr gone too */ }
    }
  });
  return state;
}
