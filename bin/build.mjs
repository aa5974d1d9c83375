#!/usr/bin/env node
// `npm run build`: compiles src/ to dist/ (tsconfig.build.json) and stamps it
// with the fingerprint of the sources it compiled (bin/dist-stamp.mjs), taken
// before the compiler starts, so a source edited meanwhile leaves the build
// stale. The old stamp goes first: a failed build is never used. Exit status:
// the compiler's. Nothing to do (exit 0 at once) when dist/ is already fresh.

import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distIsFresh, srcFingerprint, STAMP } from './dist-stamp.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const fingerprint = srcFingerprint(root);
if (distIsFresh(root, fingerprint)) process.exit(0);
console.error('lockstep build: compiling src/ -> dist/');
const stamp = join(root, STAMP);
rmSync(stamp, { force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(join(root, 'dist'), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`lockstep build: tsc failed (exit ${r.status ?? r.signal}); bin/lockstep.mjs keeps running src/ through tsx`);
  process.exit(r.status ?? 1);
}
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(`${stamp}.tmp`, `${fingerprint}\n`);
renameSync(`${stamp}.tmp`, stamp);
