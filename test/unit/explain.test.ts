// `lockstep explain`: the incident's kprobe table from flags alone
// (shared/incident.md), through the real CLI, and the fixes it proposes
// checked by re-running the simulator with each one applied.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { explain, type ExplainInput } from '../../src/export/explain.ts';
import { runBatch } from '../lib/cli-batch.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INCIDENT = ['--kernel-version', '5.3', '--cpus', '36', '--rlimit-memlock', '512M', '--pages', '3', '--rings', '36', '--charged', '32886'];
/** Every command line of the file in one process (test/lib/cli-batch.ts: main() in-process, cwd ROOT), run before the subtests. */
const ARGVS = [
  ['explain', ...INCIDENT],
  ['explain', '--kernel-version', '5.3', '--cpus', '36', '--rings', '4', '--rlimit-memlock', 'lots'],
  ['explain', '--kernel-version', '5.3', '--cpus', '36', '--rings', '4', '--pages', '4'],
  ['explain', '--help'],
];
const RUNS = await runBatch(ARGVS, { cwd: ROOT });
const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const r = RUNS[ARGVS.findIndex((a) => a.join('\0') === args.join('\0'))]!;
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
};

t.test('the incident table, printed by the CLI', (t) => {
  const r = cli('explain', ...INCIDENT);
  t.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| \d/.test(l)).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  t.strictSame(rows, [
    ['1', '32889', '28245', '0', '28245', 'ok'],
    ['2', '32892', '28248', '28245', '56493', 'ok'],
    ['3', '32895', '28251', '56493', '84744', 'ok'],
    ['4', '32898', '28254', '84744', '112998', 'ok'],
    ['5', '32901', '28257', '112998', '141255', 'EPERM (141255 > 131072)'],
  ]);
  t.match(r.stdout, /user_lock_limit = \(perf_event_mlock_kb 516 >> 2\) \* 36 CPUs = 4644 pages/);
  t.match(r.stdout, /V0\/shared/);
  t.match(r.stdout, /call 5 is refused with EPERM/);
  t.match(r.stdout, /sysctl -w kernel\.perf_event_mlock_kb=\d+/);
  t.match(r.stdout, /RLIMIT_MEMLOCK >= \d+ kB/);
  t.match(r.stdout, /CAP_IPC_LOCK/);
  t.end();
});

t.test('each proposed fix makes every call fit, and one less does not', (t) => {
  const base: ExplainInput = { logic: { accounting: 'V0', counter: 'shared' }, logicWhy: '', cpus: 36, mlockKb: 516, rlimitKb: 512 * 1024, pages: 3, rings: 36, charged: 32886, capIpcLock: false, paranoid: 2 };
  const e = explain(base);
  t.equal(e.firstRefused, 5);
  const sys = e.fixes.find((f) => f.what === 'sysctl')!.value!;
  const rl = e.fixes.find((f) => f.what === 'rlimit')!.value!;
  t.equal(explain({ ...base, mlockKb: sys }).firstRefused, null, `perf_event_mlock_kb=${sys} fits`);
  t.not(explain({ ...base, mlockKb: sys - 4 }).firstRefused, null, 'one page per CPU less does not');
  t.ok(sys <= 512 * 1024, 'the incident: 512 MiB of perf_event_mlock_kb was enough, the minimum is below it');
  t.equal(explain({ ...base, rlimitKb: rl }).firstRefused, null, `RLIMIT_MEMLOCK ${rl} kB fits`);
  t.not(explain({ ...base, rlimitKb: rl - 4 }).firstRefused, null, 'one page less does not');
  t.ok(rl > 10 * 512 * 1024 / 2, 'far above 512 MiB: raising it 2x and 4x cannot help');
  t.equal(e.fixes.find((f) => f.what === 'capability')!.value, 1, 'CAP_IPC_LOCK fits');
  t.equal(explain({ ...base, capIpcLock: true }).firstRefused, null);
  t.equal(explain({ ...base, logic: { accounting: 'V3', counter: 'shared' } }).firstRefused, null, 'a fixed kernel (V3) never refuses');
  t.end();
});

t.test('bad input: one line naming the flag, exit 2; --help answers', (t) => {
  const r = cli('explain', '--kernel-version', '5.3', '--cpus', '36', '--rings', '4', '--rlimit-memlock', 'lots');
  t.equal(r.status, 2);
  t.match(r.stderr, /--rlimit-memlock: "lots" is not a size\. Fix:/);
  t.equal(r.stderr.trim().split('\n').length, 1);
  const p = cli('explain', '--kernel-version', '5.3', '--cpus', '36', '--rings', '4', '--pages', '4');
  t.equal(p.status, 2);
  t.match(p.stderr, /--pages: 4 is not 1 \+ a power of two/);
  t.equal(cli('explain', '--help').status, 0);
  t.end();
});
