// SIGTERM sent to lockstep's own pid alone (not its process group: what
// `timeout`, `docker stop`, a supervisor or a CI cancellation send) while a
// source kernel builds and while a VM boots: every descendant of lockstep
// (make and its compilers, tar, QEMU) is gone within 10 s, and lockstep
// exits 143 having written its partial results.

import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import { DEBIAN_ID, DEBIAN_SPEC, lockstep, readResults, ROOT, runArgs, scenarioFile, sleep, specFile, tmp, waitFor } from '../lib/faults-util.ts';

const dir = tmp('stop');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ok = scenarioFile(dir, { id: 'a-ok', cpus: 1, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'probe' }] });
const long = scenarioFile(dir, { id: 'long', cpus: 1, ops: Array.from({ length: 4000 }, () => ({ op: 'probe' })) });

/** pid -> "comm starttime" of every process, from /proc (starttime tells a reused pid apart). */
function processTable(): Map<number, { ppid: number; id: string; comm: string }> {
  const m = new Map<number, { ppid: number; id: string; comm: string }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let st: string;
    try { st = readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const close = st.lastIndexOf(')');
    const f = st.slice(close + 2).split(' ');
    if (f[0] === 'Z') continue; // a zombie runs nothing
    m.set(Number(d), { ppid: Number(f[1]), id: `${st.slice(st.indexOf('(') + 1, close)} ${f[19]}`, comm: st.slice(st.indexOf('(') + 1, close) });
  }
  return m;
}

/** The live descendants of `root` now. */
function descendants(root: number): Map<number, string> {
  const table = processTable();
  const out = new Map<number, string>();
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    for (const [pid, x] of table) if (x.ppid === p && !out.has(pid)) { out.set(pid, x.id); todo.push(pid); }
  }
  return out;
}

/**
 * Whether `pid` is a QEMU that boots a guest kernel (`-kernel` on its command
 * line): on a machine without a remembered KVM verdict, lockstep first starts
 * a short-lived QEMU probe with no kernel, which may be gone a moment later.
 */
function bootsAKernel(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return (argv[0] ?? '').includes('qemu-system') && argv.includes('-kernel');
  } catch { return false; }
}

/** Those of `seen` still running as the same process. */
function survivors(seen: Map<number, string>): string[] {
  const table = processTable();
  return [...seen].filter(([pid, id]) => table.get(pid)?.id === id).map(([pid, id]) => `${pid} ${id}`);
}

/**
 * Start lockstep, wait until `ready` (given stderr and the descendants'
 * names), SIGTERM its pid alone, and keep collecting descendants until it
 * exits: a child started after the signal counts too.
 */
async function termMidway(t: Test, args: string[], ready: (stderr: string, comms: string[], pids: number[]) => boolean, env: NodeJS.ProcessEnv = {}) {
  let pid = -1;
  let stderr = '';
  const run = lockstep(args, { env, onStart: (p) => { pid = p; }, onStderr: (s) => { stderr = s; }, killAfterMs: 900_000 });
  let exited = false;
  void run.then(() => { exited = true; });
  const seen = new Map<number, string>();
  const isReady = await waitFor(() => {
    const d = descendants(pid);
    for (const [k, v] of d) seen.set(k, v);
    return !exited && ready(stderr, [...d.values()].map((x) => x.split(' ')[0]!), [...d.keys()]);
  }, 600_000);
  t.ok(isReady, `reached the point to interrupt\n${stderr.slice(-2000)}`);
  const before = descendants(pid);
  t.ok(before.size > 0, `children before the signal: ${[...before.values()].join(', ')}`);
  const sentAt = Date.now();
  process.kill(pid, 'SIGTERM');
  while (!exited && Date.now() - sentAt < 10_000) {
    for (const [k, v] of descendants(pid)) seen.set(k, v);
    await sleep(50);
  }
  await waitFor(() => survivors(seen).length === 0, Math.max(0, 10_000 - (Date.now() - sentAt)));
  const left = survivors(seen);
  t.same(left, [], `no child of lockstep left 10 s after SIGTERM (${seen.size} seen; ${Date.now() - sentAt} ms)`);
  for (const x of left) process.kill(Number(x.split(' ')[0]), 'SIGKILL');
  const r = await run;
  t.equal(r.code, 143, `exit 143 after SIGTERM (${Date.now() - sentAt} ms)\n${r.stderr.slice(-1500)}`);
  t.match(r.stderr, /SIGTERM: stopping/);
  return r;
}

const hasSource = existsSync('/usr/src/linux-source-6.1.tar.xz');
t.test('SIGTERM to lockstep alone while a source kernel builds', { skip: hasSource ? false : 'linux-source-6.1 is not installed (bash .ci/setup.sh installs it)' }, async (t) => {
  // A private, cold cache: the tree is unpacked and configured, so make runs.
  const cache = join(dir, 'cache');
  const spec = specFile(dir, 'src.json', {
    id: 'sig-build', kind: 'source', version: '6.1.192', source: { debian_package: 'linux-source-6.1' },
    config: join(ROOT, 'kernels', 'config', 'lockstep-guest.config'), expect: 'V3/perf',
  });
  const out = join(dir, 'r-build');
  await termMidway(t, runArgs({ specs: [spec], scenarios: [ok], out, progress: true, extra: ['--cache', cache] }),
    (stderr, comms) => /configuring:|make bzImage/.test(stderr) && comms.includes('make'));
  const res = readResults(out);
  t.equal(res.complete, false, 'results.json written, marked incomplete');
  const trees = join(cache, 'kernels', 'source-trees');
  t.same(existsSync(join(cache, 'kernels', 'source')) ? readdirSync(join(cache, 'kernels', 'source')).filter((n) => !n.startsWith('.') && !n.endsWith('.lock')) : [], [], 'no artifact published');
  t.same(existsSync(trees) ? readdirSync(trees).filter((n) => n.endsWith('.lock')) : [], [], 'the tree lock was released');
});

t.test('SIGTERM to lockstep alone while a VM boots', async (t) => {
  await ensureKernel(parseSpec(DEBIAN_SPEC, 'test'), { cacheDir: defaultCacheDir(), log: () => {} });
  const deb = specFile(dir, 'debian.json', DEBIAN_SPEC);
  const out = join(dir, 'r-boot');
  await termMidway(t, runArgs({ specs: [deb], scenarios: [long], out, progress: true, extra: ['--op-timeout', '600'] }),
    (_stderr, _comms, pids) => pids.some((p) => bootsAKernel(p)));
  const res = readResults(out);
  t.equal(res.complete, false);
  t.match(res.cells.find((c) => c.kernel === DEBIAN_ID && c.scenario === 'long'), { verdict: 'ERROR', reason: /interrupted/ });
});
