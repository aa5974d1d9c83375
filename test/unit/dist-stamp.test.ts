// The compiled build is a cache of src/ (bin/dist-stamp.mjs): bin/lockstep.mjs
// runs dist/ only while its stamp equals the fingerprint of today's src/*.ts,
// by content. Checked on a scratch checkout: no stamp, a right stamp, an
// edit, a renamed file, a file that is not TypeScript. And the real entry
// point says which it runs.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a plain .mjs module without type declarations
import { distIsFresh, srcFingerprint, STAMP } from '../../bin/dist-stamp.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const fresh = distIsFresh as (root: string) => boolean;
const fingerprint = srcFingerprint as (root: string) => string;

t.test('the stamp matches src/ by content, and nothing else does', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lockstep-stamp-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'src', 'sub'), { recursive: true });
  mkdirSync(join(root, 'dist'));
  writeFileSync(join(root, 'src', 'a.ts'), 'export const a = 1;\n');
  writeFileSync(join(root, 'src', 'sub', 'b.ts'), 'export const b = 2;\n');
  t.equal(fresh(root), false, 'no stamp: not fresh');
  const f0 = fingerprint(root);
  t.match(f0, /^[0-9a-f]{64}$/);
  writeFileSync(join(root, STAMP as string), `${f0}\n`);
  t.equal(fresh(root), true, 'the stamp of these sources: fresh');
  writeFileSync(join(root, 'src', 'notes.md'), 'not TypeScript');
  t.equal(fresh(root), true, 'a file that is not .ts changes nothing');
  writeFileSync(join(root, 'src', 'sub', 'b.ts'), 'export const b = 3;\n');
  t.equal(fresh(root), false, 'one byte edited: stale');
  writeFileSync(join(root, 'src', 'sub', 'b.ts'), 'export const b = 2;\n');
  t.equal(fresh(root), true, 'edited back (a new mtime, the same bytes): fresh again');
  renameSync(join(root, 'src', 'sub', 'b.ts'), join(root, 'src', 'sub', 'c.ts'));
  t.not(fingerprint(root), f0, 'a renamed file changes the fingerprint');
  t.equal(fresh(root), false, 'and the build is stale');
  rmSync(join(root, 'src'), { recursive: true });
  t.equal(fresh(root), false, 'no src/ at all: not fresh, no throw');
  t.end();
});

t.test('LOCKSTEP_FROM_SOURCE=1 runs the sources through tsx, and --version says so', (t) => {
  const out = execFileSync(process.execPath, [join(ROOT, 'bin', 'lockstep.mjs'), '--version'], { encoding: 'utf8', env: { ...process.env, LOCKSTEP_FROM_SOURCE: '1' } });
  t.match(out, /^lockstep \S+ \(results schema \S+; node \S+; src\/ via tsx\)$/m);
  t.end();
});
