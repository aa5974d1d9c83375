// The compiled build in dist/ (`npm run build`, tsconfig.build.json) is a
// cache of src/: bin/lockstep.mjs runs it only while it was compiled from
// exactly the src/*.ts files there now, by content. Anything else (an edit,
// a checkout of another commit, a build that failed half way) runs src/
// through tsx, as before, so a stale build never runs.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Where the build writes the fingerprint of the sources it compiled, relative to the checkout. */
export const STAMP = join('dist', '.src-sha256');

/** Every *.ts file under `dir`, as absolute paths, sorted. */
function tsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
    .sort();
}

/** sha256 over the relative path and bytes of every src/**\/*.ts of the checkout at `root` (about 1 MB: a few ms). */
export function srcFingerprint(root) {
  const h = createHash('sha256');
  for (const f of tsFiles(join(root, 'src'))) h.update(`${relative(root, f)}\0`).update(readFileSync(f)).update('\0');
  return h.digest('hex');
}

/** True when dist/ holds a complete build of the checkout's current src/ (its stamp equals `fingerprint`, by default srcFingerprint(root)). Never throws. */
export function distIsFresh(root, fingerprint) {
  try {
    return readFileSync(join(root, STAMP), 'utf8').trim() === (fingerprint ?? srcFingerprint(root));
  } catch {
    return false;
  }
}
