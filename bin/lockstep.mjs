#!/usr/bin/env node
// Entry point. Runs the compiled build (dist/, `npm run build`, which
// .ci/setup.sh runs) when it was compiled from exactly today's src/
// (bin/dist-stamp.mjs): start-up then loads plain JavaScript. Otherwise, or
// with LOCKSTEP_FROM_SOURCE=1, it registers tsx and runs the TypeScript
// sources without a build step. Both run the same code.
import { fileURLToPath } from 'node:url';
import { distIsFresh } from './dist-stamp.mjs';

const root = new URL('..', import.meta.url);
const compiled = process.env.LOCKSTEP_FROM_SOURCE !== '1' && distIsFresh(fileURLToPath(root));
let src;
if (compiled) {
  // stack traces name the TypeScript lines (dist/ carries source maps)
  process.setSourceMapsEnabled(true);
  src = (path) => new URL(`dist/src/${path}.js`, root).href;
} else {
  const { register } = await import('tsx/esm/api');
  register();
  src = (path) => new URL(`src/${path}.ts`, root).href;
}
// A reader that goes away (`lockstep ... | head -1`) ends no command with an
// EPIPE stack trace: output stops, the exit code stays the command's own.
const { surviveClosedPipe } = await import(src('cli/pipes'));
const out = surviveClosedPipe(process.stdout, 'stdout');
const err = surviveClosedPipe(process.stderr, 'stderr');
const { main } = await import(src('cli/main'));
const code = await main(process.argv.slice(2));
// any other failed write of the output (a full disk) is a failure
process.exitCode = code === 0 && (out.failed || err.failed) ? 1 : code;
