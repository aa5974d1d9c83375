#!/usr/bin/env node
// Entry point: registers tsx so the TypeScript sources run without a build step.
import { register } from 'tsx/esm/api';
register();
// A reader that goes away (`lockstep ... | head -1`) ends no command with an
// EPIPE stack trace: output stops, the exit code stays the command's own.
const { surviveClosedPipe } = await import('../src/cli/pipes.ts');
const out = surviveClosedPipe(process.stdout, 'stdout');
const err = surviveClosedPipe(process.stderr, 'stderr');
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
// any other failed write of the output (a full disk) is a failure
process.exitCode = code === 0 && (out.failed || err.failed) ? 1 : code;
