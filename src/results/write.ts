// Writing results: always atomically (temp file + rename in the same
// directory), so a reader or a crash never sees half a file; never over
// anything but a regular file (a device, FIFO or directory named as an
// output is refused, issue 26), and never over a run that measured more
// (guardMeasured).

import { access, constants, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { ConfigError } from '../util/errors.ts';
import { checkResults, compactResults, type Results } from './schema.ts';

/** What a path is, for messages: "a directory", "a FIFO", ...; null when it does not exist. */
async function kindOf(path: string): Promise<string | null> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return 'under a file that is not a directory';
    throw new ConfigError(path, '', `cannot look at it: ${code ?? (e as Error).message}`, 'choose a path this user can reach');
  }
  if (s.isFile()) return 'a regular file';
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Refuse an output FILE path that exists and is not a regular file (a
 * symlink counts as what it points at). `file`/`field` name the input it
 * came from ("command line", "--out"). Throws ConfigError.
 */
export async function checkOutputFile(path: string, file = 'command line', field = '--out'): Promise<void> {
  const k = await kindOf(path);
  if (k !== null && k !== 'a regular file') throw new ConfigError(file, field, `${path} is ${k}, not a regular file`, 'give the path of a regular file or of a new one');
}

/**
 * Refuse an output DIRECTORY that exists and is not a directory, or that
 * holds one of `names` as something else than a regular file. Throws ConfigError.
 */
export async function checkOutputDir(dir: string, names: readonly string[] = [], file = 'command line', field = '--out'): Promise<void> {
  const k = await kindOf(dir);
  if (k !== null && k !== 'a directory') throw new ConfigError(file, field, `${dir} is ${k}, not a directory`, 'give a directory (new or existing) for the output files');
  for (const n of names) await checkOutputFile(join(dir, n), file, field);
}

/**
 * Create `dir` (and parents) and check this user can write into it, before
 * anything is measured. Throws ConfigError (one line) otherwise.
 */
export async function ensureWritableDir(dir: string, file = 'command line', field = '--out'): Promise<void> {
  await checkOutputDir(dir, [], file, field);
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    const w = writeError(dir, e);
    if (w instanceof ConfigError) throw new ConfigError(file, field, `${dir}: ${w.problem}`, w.fix);
    throw w;
  }
}

/** An OS error of a write as a one-line ConfigError (unwritable directory, full disk), else the error itself. */
function writeError(path: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  const known: Record<string, string> = {
    EACCES: 'permission denied', EPERM: 'operation not permitted', EROFS: 'read-only file system', ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded', ENOTDIR: 'a path component is not a directory', EISDIR: 'it is a directory', EEXIST: 'a path component exists and is not a directory',
  };
  if (code === undefined || known[code] === undefined) return e;
  return new ConfigError(path, '', `cannot write: ${known[code]} (${code})`, 'choose an output directory this user can write to (or free space)');
}

/**
 * Write `path` atomically and durably (write-file-atomic: temp file, fsync,
 * rename). Throws ConfigError when `path` exists and is not a regular file
 * (never renamed over a device, FIFO or directory) or the OS refuses the
 * write (permissions, read-only, full disk).
 */
export async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (e) {
    throw writeError(dirname(path), e);
  }
  const k = await kindOf(path);
  if (k !== null && k !== 'a regular file') throw new ConfigError(path, '', `is ${k}, not a regular file: not replaced`, 'write to a regular file or a new path');
  try {
    await writeFileAtomic(path, data);
  } catch (e) {
    throw writeError(path, e);
  }
}

/**
 * Refuse to write results into `dir` when it already holds a results.json
 * with cells (kernel x scenario) that `next` lacks, unless `force`: what was
 * measured is never replaced by less. A results.json that cannot be read is
 * refused too (it may be a run). Throws ConfigError naming the cell count
 * and kernels that would be lost; the fix is another --out or `force`.
 */
export async function guardMeasured(dir: string, next: { cells: readonly Pick<Results['cells'][number], 'kernel' | 'scenario'>[] }, force: boolean, flag = '--out'): Promise<void> {
  if (force) return;
  const path = join(dir, 'results.json');
  if ((await kindOf(path)) === null) return;
  let old: Results;
  try {
    old = await readResults(path);
  } catch {
    throw new ConfigError('command line', flag, `${path} exists and is not a results.json this lockstep reads; writing would replace it`, `choose another ${flag}, or pass --force to replace it`);
  }
  const have = new Set(next.cells.map((c) => `${c.kernel}\0${c.scenario}`));
  const lost = old.cells.filter((c) => !have.has(`${c.kernel}\0${c.scenario}`));
  if (lost.length === 0) return;
  const kernels = [...new Set(lost.map((c) => c.kernel))];
  const shown = kernels.length > 8 ? `${kernels.slice(0, 8).join(', ')} and ${kernels.length - 8} more` : kernels.join(', ');
  throw new ConfigError('command line', flag, `${path} holds ${lost.length} measured cell(s) the new results lack (kernels ${shown}); writing would lose them`,
    `choose another ${flag} (a new directory), or pass --force to replace that run`);
}

export async function readResults(path: string): Promise<Results> {
  let text: string;
  try {
    const k = await kindOf(path);
    if (k !== 'a regular file') throw new Error(k === null ? 'no such file' : `it is ${k}, not a regular file`);
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(path, '', `cannot read: ${(e as Error).message}`, 'give the path of a results.json (or its directory) written by `lockstep run`');
  }
  let obj: unknown;
  try { obj = JSON.parse(text); } catch (e) {
    throw new ConfigError(path, '', `not valid JSON (${(e as Error).message})`, 'the file is damaged; re-run the matrix');
  }
  return checkResults(obj, path);
}

/** results.json text: the on-disk form (compactResults), one-space indented. */
export const serializeResults = (r: Results): string => JSON.stringify(compactResults(r), null, 1) + '\n';

/** The files `run`, `report` and `merge` write into a results directory (src/report/files.ts writeReports + results.json). */
export const RESULT_FILES = ['results.json', 'table.md', 'report.html', 'junit.xml', 'results.tap', 'results.ktap'] as const;
