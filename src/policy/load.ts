// Reads a splat policy file (see splats.ts for its shape and meaning).

import { ConfigError } from '../util/errors.ts';
import { readRegularFile } from '../util/input.ts';
import { parseJsonStrict } from '../util/json.ts';
import { parseSplatPolicy, type SplatPolicy } from './splats.ts';
import { repoPath } from '../util/repo-root.ts';

/** The policy the repository ships (policy/splats.json), used when `--splat-policy` is not given. */
export const DEFAULT_SPLAT_POLICY = repoPath('policy', 'splats.json');

/**
 * Reads and checks `file`; `shownAs` (default: `file`) names it in errors and
 * in cell reasons, which must not carry this machine's absolute paths.
 * Throws ConfigError (file, field, fix) when it cannot be read, is not JSON or
 * does not validate.
 */
export async function loadSplatPolicy(file: string, shownAs = file): Promise<SplatPolicy> {
  let text: string;
  try { text = await readRegularFile(file); } catch (e) {
    throw new ConfigError(shownAs, '', `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give an existing policy file to --splat-policy, or leave the flag out for policy/splats.json');
  }
  let raw: unknown;
  try { raw = parseJsonStrict(text); } catch (e) {
    throw new ConfigError(shownAs, '', `not valid JSON (${(e as Error).message})`, 'fix the JSON syntax');
  }
  return parseSplatPolicy(raw, shownAs);
}
