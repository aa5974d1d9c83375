// The compiled build (dist/, `npm run build`) runs the same code as the
// sources through tsx: bin/lockstep.mjs takes it when it is fresh, and the
// same command lines give the same exit code, stdout and stderr either way.
// The build is made here when setup has not made it.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'lockstep.mjs');
const run = (args: string[], fromSource: boolean) => spawnSync(process.execPath, [BIN, ...args], {
  cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20,
  env: { ...process.env, LOCKSTEP_FROM_SOURCE: fromSource ? '1' : '0', GITHUB_STEP_SUMMARY: '' },
});

t.before(() => {
  const b = spawnSync(process.execPath, [join(ROOT, 'bin', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`node bin/build.mjs failed: ${b.stderr}`);
});

t.test('a fresh build is what bin/lockstep.mjs runs', (t) => {
  t.match(run(['--version'], false).stdout, /; compiled dist\/\)$/m);
  t.match(run(['--version'], true).stdout, /; src\/ via tsx\)$/m);
  t.end();
});

/** Command lines and their exit code: the model, the results reader and diff, an exporter, a refusal. */
const SAME: [string[], number][] = [
  [['simulate', 'incident', '--logic', 'all', '--json'], 0],
  [['diff', '--json', 'results', 'results'], 0],
  [['export', 'ktap', 'results/results.json'], 0],
  [['run', '--bogus'], 2],
];

t.test('the same output from dist/ and from src/', (t) => {
  for (const [args, code] of SAME) {
    const a = run(args, false);
    const b = run(args, true);
    const what = args.join(' ');
    t.equal(b.status, code, `${what}: exit ${code} from src/`);
    t.equal(a.status, b.status, `${what}: exit ${b.status} both ways`);
    t.equal(a.stdout, b.stdout, `${what}: same stdout (${b.stdout.length} bytes)`);
    t.equal(a.stderr, b.stderr, `${what}: same stderr`);
  }
  t.end();
});
