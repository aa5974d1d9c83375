// Writing results: always atomically (temp file + rename in the same
// directory), so a reader or a crash never sees half a file.

import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { ConfigError } from '../util/errors.ts';
import { checkResults, compactResults, type Results } from './schema.ts';

/** Write `path` atomically and durably (write-file-atomic: temp file, fsync, rename). */
export async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, data);
}

export async function readResults(path: string): Promise<Results> {
  let text: string;
  try { text = await readFile(path, 'utf8'); } catch (e) {
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
