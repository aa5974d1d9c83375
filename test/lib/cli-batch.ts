// Runs many lockstep command lines in ONE process (one start-up instead of
// one per case): the argv list comes as JSON in $LOCKSTEP_BATCH, each runs
// through main() with stdout and stderr captured, and one JSON line per case
// ({code, stdout, stderr}) goes to the real stdout. A case that blocks blocks
// the batch: the parent kills it and every case left unreported fails.
// Run as: node --import tsx test/lib/cli-batch.ts

import { main } from '../../src/cli/main.ts';

const cases = JSON.parse(process.env.LOCKSTEP_BATCH ?? '[]') as string[][];
const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);
for (const argv of cases) {
  let stdout = '';
  let stderr = '';
  const env = { ...process.env };
  process.stdout.write = ((c: string | Uint8Array) => { stdout += String(c); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => { stderr += String(c); return true; }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(argv);
  } catch (e) {
    stderr += `internal error (thrown out of main): ${(e as Error).stack}`;
    code = 1;
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
    for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
    Object.assign(process.env, env);
  }
  realOut(`${JSON.stringify({ code, stdout, stderr })}\n`);
}
process.exit(0);
