// `lockstep bugreport`: the V4 re-mmap leak (host x remmap, as measured in
// the published run on the host kernel) as a syzbot-style report and a
// generated single-file C reproducer, compiled with gcc -static and run on
// the host kernel as root (it picks a fresh uid for its worker and sets and
// restores the scenario's sysctls itself), under the machine-wide
// host-kernel lock. On a kernel with the v6.15+ re-mmap charge (V4) the program shows the
// leak on its own (BUG line, exit 1); on an older one it must pass (exit 0).
// Tier: unit (its subtests moved unchanged from test/bugreport.test.ts; the rest is in test/smoke/bugreport.test.ts).

import t from 'tap';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBatch } from '../lib/cli-batch.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lockstep-bugreport-'));
chmodSync(dir, 0o755);
/** Every command line of the file in one process (test/lib/cli-batch.ts: main() in-process, cwd ROOT), in this order, before the subtests. */
const ARGVS = [['bugreport', 'debian-6.1.190:incident', 'results', '--out', join(dir, 'x')], ['bugreport', 'nosuch:remmap', 'results'], ['bugreport', '--help']];
const RUNS = await runBatch(ARGVS, { cwd: ROOT });
const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const r = RUNS[ARGVS.findIndex((a) => a.join('\0') === args.join('\0'))]!;
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
};

t.test('the incident exports too (issue 28), and bad input: one line, exit 2', (t) => {
  const r = cli('bugreport', 'debian-6.1.190:incident', 'results', '--out', join(dir, 'x'));
  t.equal(r.status, 0, r.stderr);
  t.match(readFileSync(join(dir, 'x', 'repro.c'), 'utf8'), /^#define SCEN_CPUS 36$/m);
  const n = cli('bugreport', 'nosuch:remmap', 'results');
  t.equal(n.status, 2);
  t.match(n.stderr, /no cell nosuch:remmap\. Fix: choose from/);
  t.equal(cli('bugreport', '--help').status, 0);
  t.end();
});
