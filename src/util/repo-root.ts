// Where lockstep's own files are (kernels/, harness/, policy/, schemas/,
// vm-images/, bin/): the top of the checkout. Found from this module's own
// location, so the same code works run from src/ by tsx and from dist/src/
// (the compiled build bin/lockstep.mjs prefers when it is fresh).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The nearest directory at or above `from` holding lockstep's package.json
 * and harness/Makefile. Throws an Error naming `from` when there is none
 * (lockstep's files were moved apart).
 */
export function findRepoRoot(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'harness', 'Makefile'))) return d;
    if (dirname(d) === d) throw new Error(`no lockstep checkout (package.json beside harness/Makefile) at or above ${from}`);
  }
}

/** The checkout's top directory (absolute, no trailing slash). */
export const LOCKSTEP_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));

/** `parts` joined under LOCKSTEP_ROOT: repoPath('policy', 'splats.json'). */
export const repoPath = (...parts: string[]): string => join(LOCKSTEP_ROOT, ...parts);
