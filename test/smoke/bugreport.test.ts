// `lockstep bugreport`: the V4 re-mmap leak (host x remmap, as measured in
// the published run on the host kernel) as a syzbot-style report and a
// generated single-file C reproducer, compiled with gcc -static and run on
// the host kernel as a fresh unused uid, under the machine-wide host-kernel
// lock, with the scenario's sysctls set (and restored) as the host runtime
// does. On a kernel with the v6.15+ re-mmap charge (V4) the program shows the
// leak on its own (BUG line, exit 1); on an older one it must pass (exit 0).
// Tier: smoke (its subtests moved unchanged from test/bugreport.test.ts; the rest is in test/unit/bugreport.test.ts).

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock } from '../../src/util/lock.ts';
import { accountingFor } from '../../src/kernels/expect.ts';
import { HOST_KERNEL_LOCK } from '../../src/matrix/run.ts';
import { hostOnlineCpus } from '../../src/runner/host.ts';
import { kernelTools, parseKtap } from '../lib/kunit.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/lockstep.mjs', ...args], { cwd: ROOT, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'lockstep-bugreport-'));
chmodSync(dir, 0o755);

t.test('report and C reproducer of the V4 re-mmap leak', async (t) => {
  // A saved list-mode bisect over the fix chain (its state file format), with a bisect.log beside it.
  const bis = join(dir, 'bisect');
  spawnSync('mkdir', ['-p', bis]);
  writeFileSync(join(bis, 'lockstep-bisect.json'), JSON.stringify({
    schema: 'lockstep/bisect-state@1', mode: 'list', scenario: 'remmap', scenario_hash: 'x', positions: ['fix-5', 'current-6.1', 'remmap-charge'],
    reference: null, started_at: '2026-11-27T00:00:00Z', updated_at: '2026-11-27T00:00:00Z',
    steps: { 'fix-5': { label: 'fix-5', attempts: [], mark: 'old', why: 'fits V3' }, 'remmap-charge': { label: 'remmap-charge', attempts: [], mark: 'new', why: 'fits V4' }, 'current-6.1': { label: 'current-6.1', attempts: [], mark: 'old', why: 'fits V3' } },
  }));
  writeFileSync(join(bis, 'bisect.log'), 'git bisect start\n');
  const cpus = hostOnlineCpus();
  const out = join(dir, 'host-remmap');
  const r = cli('bugreport', 'host:remmap', 'results', '--out', out, '--cpus', String(cpus), '--bisect', bis);
  t.equal(r.status, 0, r.stderr);
  const report = readFileSync(join(out, 'report.txt'), 'utf8');
  t.match(report, /^perf_mmap: per-user locked memory 87 pages higher than V3\/shared after remmap \(op 31: probe\)\n/, 'title: 29 re-mmaps x 3 pages');
  t.match(report, /kernel release: 6\.\d+\.\d+/);
  t.match(report, /First divergence: op 31 \(probe\), headroom: measured 168, V3\/shared expects 255/);
  t.match(report, /The kernel's version implies V4\/shared; lockstep's verdict against it: MATCH/);
  t.match(report, /first bad release: remmap-charge\nlast good release: current-6\.1/);
  t.match(report, /# bad: remmap-charge \(remmap-charge\): fits V4/);
  t.match(report, /git bisect start/, 'the bisect.log beside the state');
  t.equal(r.stdout, report, 'printed too');

  const c = readFileSync(join(out, 'repro.c'), 'utf8');
  t.match(c, /V4\/shared: ok VmPin 0 pages headroom \d+ user \d+/, 'other logics\' predictions in comments');
  const gcc = spawnSync('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', join(out, 'repro'), join(out, 'repro.c')], { encoding: 'utf8' });
  t.equal(gcc.status, 0, gcc.stderr);
  chmodSync(out, 0o755);

  // One host-kernel user at a time (its sysctls and per-uid counters), as the matrix does.
  const unlock = await acquireLock(HOST_KERNEL_LOCK, 'the host kernel (bugreport test)', { log: (m: string) => t.comment(m), timeoutMs: 3600_000 });
  const sys = (n: string) => `/proc/sys/kernel/${n}`;
  const saved = ['perf_event_mlock_kb', 'perf_event_paranoid'].map((n) => [n, readFileSync(sys(n), 'utf8').trim()] as const);
  let run;
  try {
    run = spawnSync(join(out, 'repro'), [], { encoding: 'utf8', timeout: 120_000 });
  } finally {
    t.strictSame(saved.map(([n]) => [n, readFileSync(sys(n), 'utf8').trim()]), saved, 'the program restored the sysctls');
    for (const [n, v] of saved) writeFileSync(sys(n), v);
    await unlock();
  }
  t.comment(run.stdout.split('\n').filter((l) => /BUG|PASS|FAIL|scenario/.test(l)).join('\n'));
  // Its output is KTAP: the kernel's own parser reads one test per op.
  writeFileSync(join(out, 'repro.ktap'), run.stdout);
  const { tree } = parseKtap(kernelTools().kunit, join(out, 'repro.ktap'));
  t.equal(tree.errors, 0, 'kunit_parser: no errors');
  t.equal(tree.subtests.length, 97, 'one test per op');
  const v4 = accountingFor(release()).row.accounting === 'V4';
  t.equal(tree.subtests[31]?.status, v4 ? 'FAILURE' : 'SUCCESS', 'op 31 (the probe after 29 re-mmaps)');
  if (v4) {
    t.equal(run.status, 1, 'exit 1: the kernel differs from V3');
    t.match(run.stdout, /BUG: op 31 probe: the per-user counter is 87 pages higher than V3\/shared predicts/);
    t.match(run.stdout, /BUG: op 33 probe: the per-user counter is 87 pages higher than V3\/shared predicts/, 'still there after the munmap: leaked');
    t.match(run.stdout, /^# FAIL: \d+ of 97 ops differ from V3\/shared$/m);
  } else {
    t.equal(run.status, 0, `a ${release()} kernel without the re-mmap charge behaves as V3: ${run.stdout}`);
  }
});
