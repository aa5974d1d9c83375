// Reading a user-named input file (kernel specs, splat policies, scenario
// files, bisect states, bzImages, ...): only a regular file (or, where the
// option takes one, a directory), never a FIFO or device that would block or
// never end (issue 26), and never more than MAX_INPUT_BYTES.

import { type Stats, statSync } from 'node:fs';
import { constants, open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError } from './errors.ts';

/** The largest input file read (16 MiB): specs and policies are a few kB. */
export const MAX_INPUT_BYTES = 16 << 20;

/** What a non-regular file is, for messages: "a FIFO", "a character device", ... */
export function statKind(st: Stats): string {
  return st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device'
    : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : st.isFile() ? 'a regular file' : 'not a file';
}

/**
 * The text of `path` when it is a regular file of at most MAX_INPUT_BYTES.
 * Opened without blocking (O_NONBLOCK: a FIFO with no writer does not hang),
 * then checked with fstat on the same descriptor. Throws the OS error
 * (with its `code`) when it cannot be opened, else an Error without a code
 * whose message says what the path is ("a FIFO, not a regular file").
 */
export async function readRegularFile(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error(`${statKind(st)}, not a regular file`);
    if (st.size > MAX_INPUT_BYTES) throw new Error(`${st.size} bytes, more than ${MAX_INPUT_BYTES}`);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** What an input path may be: a regular file (default), a directory, or either. */
export type InputKind = 'file' | 'dir' | 'file-or-dir';

/**
 * What is wrong with `path` as an input of kind `want`, or null when it is
 * fine (or does not exist and `missingOk`). stat() only (follows symlinks,
 * never opens the path, so a FIFO cannot block it). Pure apart from that one
 * stat. Messages read "PATH is a FIFO, not a regular file".
 */
export function inputProblem(path: string, want: InputKind = 'file', missingOk = false): string | null {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && missingOk) return null;
    if (code === 'ENOENT') return `${path} does not exist`;
    if (code === 'ENOTDIR') return `${path} is under a file that is not a directory`;
    return `${path} cannot be looked at (${code ?? (e as Error).message})`;
  }
  if (st.isFile() && want !== 'dir') return null;
  if (st.isDirectory() && want !== 'file') return null;
  const wanted = want === 'file' ? 'a regular file' : want === 'dir' ? 'a directory' : 'a regular file or a directory';
  return `${path} is ${statKind(st)}, not ${wanted}`;
}

/**
 * The absolute path of the input file a user named with option `flag`
 * (e.g. "--state") when it is `want` (see inputProblem); else a one-line
 * ConfigError "command line: --state: X is a FIFO, not a regular file. Fix:
 * `fix`". With `missingOk`, a path that does not exist passes (the caller
 * creates it or treats it as empty).
 */
export function checkInputPath(path: string, flag: string, fix: string, want: InputKind = 'file', missingOk = false): string {
  const abs = resolve(path);
  const p = inputProblem(abs, want, missingOk);
  if (p !== null) throw new ConfigError('command line', flag, p, fix);
  return abs;
}
