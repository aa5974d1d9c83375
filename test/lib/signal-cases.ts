// The signal cases of test/smoke/faults-signals.test.ts and
// test/integration/faults-signals.test.ts (one subtest body, two lists of
// signals): SIGINT or SIGTERM to a real `lockstep run` mid-matrix, sent to
// lockstep alone or to its whole process group (Ctrl-C). Afterwards no QEMU
// or reproducer of that run is left, its temp dirs are gone, results.json
// is valid JSON with complete: false and every finished cell, and the exit
// code is 130 (SIGINT) or 143 (SIGTERM).

import type { Test } from 'tap';
import { readdirSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import { HOST_KERNEL_LOCK } from '../../src/matrix/run.ts';
import { acquireLock } from '../../src/util/lock.ts';
import {
  alive, cell, DEBIAN_ID, DEBIAN_SPEC, lockstep, procsWith, readResults, ROOT, runArgs, scenarioFile, specFile, tmp, waitFor,
} from './faults-util.ts';

/**
 * Register on `t` one subtest per [signal, exit code, to the group?] of
 * `cases`, each a real run of the host kernel and Debian 6.1.190 in QEMU
 * stopped by that signal mid-matrix.
 */
export function signalCases(t: Test, cases: readonly (readonly ['SIGINT' | 'SIGTERM', number, boolean])[]): void {
  const dir = tmp('signals');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const deb = specFile(dir, 'debian.json', DEBIAN_SPEC);
  const host = join(ROOT, 'kernels', 'host.json');
  // q1: one CPU, quick (a VM boot; the 2-CPU host SKIPs it at once).
  // s2: any CPU count (the host's on the host row, 2 in the VM), thousands of probes of a 4096-page-per-CPU allowance: long on the host
  // and in the VM (the exact probe measures the default 258 pages in about 1 ms,
  // so 4000 of those ended on the host before the VM's q1 did).
  const q1 = scenarioFile(dir, { id: 'q1', cpus: 1, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'probe' }] });
  const s2 = scenarioFile(dir, { id: 's2', cpus: 'any', perf_event_mlock_kb: 16384, ops: Array.from({ length: 4000 }, () => ({ op: 'probe' })) });

  const sysctl = (n: string): string => readFileSync(`/proc/sys/kernel/${n}`, 'utf8').trim();
  /** The host's perf sysctls, read holding the host kernel's lock: another test file's lockstep run changes them while it holds it (smoke files run in parallel). */
  const hostSysctls = async (): Promise<{ mlock: string; paranoid: string }> => {
    const release = await acquireLock(HOST_KERNEL_LOCK, 'the host kernel (signal test: its sysctls)', { log: () => {}, timeoutMs: 600_000 });
    try {
      return { mlock: sysctl('perf_event_mlock_kb'), paranoid: sysctl('perf_event_paranoid') };
    } finally {
      await release();
    }
  };

  t.before(async () => {
    await ensureKernel(parseSpec(DEBIAN_SPEC, 'test'), { cacheDir: defaultCacheDir(), log: () => {} });
  });

  // Ctrl-C: the terminal sends SIGINT to the whole foreground process group,
  // so QEMU and the host reproducer get it at the same time as lockstep.
  // Smoke boots the real SIGINT once (Ctrl-C to the group); the same subtest for
  // SIGINT and SIGTERM to lockstep alone is in test/integration/faults-signals.test.ts.
  for (const [sig, code, group] of cases) {
    t.test(`${sig} ${group ? 'to the process group (Ctrl-C)' : 'to lockstep'} mid-matrix`, async (t) => {
      const tmpdir = join(dir, `tmp-${sig}${group ? '-group' : ''}`);
      mkdirSync(tmpdir);
      const out = join(dir, `r-${sig}${group ? '-group' : ''}`);
      const before = await hostSysctls();
      let pid = -1;
      let stderr = '';
      const run = lockstep(runArgs({ specs: [deb, host], scenarios: [q1, s2], out, progress: true, extra: ['--jobs', '4', '--op-timeout', '600'] }), {
        env: { TMPDIR: tmpdir }, onStart: (p) => { pid = p; }, onStderr: (s) => { stderr = s; }, detached: group,
      });
      const ready = await waitFor(() =>
        stderr.includes(`${DEBIAN_ID}@1cpu: q1=MATCH`) && stderr.includes('host@1cpu: q1=SKIP') &&
        procsWith(tmpdir).some((p) => p.cmd.startsWith('qemu-system')) &&
        procsWith(out).some((p) => p.cmd.includes('lockstep-repro')), 240_000);
      t.ok(ready, `two groups finished, a QEMU and a host reproducer running\n${stderr}`);
      const children = [...procsWith(tmpdir), ...procsWith(out)].filter((p) => p.pid !== pid);
      t.ok(children.length >= 2, `children before the signal: ${children.map((c) => c.cmd.slice(0, 60)).join(' | ')}`);
      t.ok(children.every((c) => alive(c.pid)), 'all of them alive before the signal');
      const sentAt = Date.now();
      process.kill(group ? -pid : pid, sig);
      const gone = await waitFor(() => children.every((c) => !alive(c.pid)), 15_000);
      t.ok(gone, `every QEMU and reproducer child gone ${Date.now() - sentAt} ms after ${sig}`);
      const r = await run;
      t.equal(r.code, code, `exit ${code} after ${sig}`);
      t.match(r.stderr, new RegExp(`${sig}: stopping VMs and the reproducer`));
      t.same(procsWith(tmpdir), [], 'no process of the run refers to its temp dir');
      t.same(procsWith(out).filter((p) => p.cmd.includes('lockstep-repro')), [], 'no host reproducer left');
      t.same(readdirSync(tmpdir).filter((n) => n.startsWith('lockstep-vm-')), [], 'VM temp dirs removed');
      const res = readResults(out); // throws if not valid JSON
      t.equal(res.complete, false);
      t.equal(cell(res, 'q1')?.verdict, 'MATCH', 'finished VM cell kept');
      t.equal(cell(res, 'q1', 'host')?.verdict, 'SKIP', 'finished host cell kept');
      for (const k of [DEBIAN_ID, 'host']) t.match(cell(res, 's2', k), { verdict: 'ERROR', reason: /interrupted/ }, `${k} s2 says it was interrupted`);
      // the host reproducer got SIGTERM from lockstep (or the group's SIGINT) and went through its
      // restore path (during an op, or between two)
      // (a Ctrl-C reaches the reproducer's worker too: it may die of SIGINT itself before the reproducer stops it)
      t.match(cell(res, 's2', 'host')?.reason, group ? /^run interrupted; reproducer: (terminated by SIG(INT|TERM)|worker died: killed by INT)( \(op \d+\))?$/ : /^run interrupted; reproducer: terminated by SIGTERM( \(op \d+\))?$/);
      t.equal(res.cells.length, 4);
      t.same(readdirSync(out).filter((n) => n.endsWith('.tmp')), [], 'no half-written results file');
      t.same(await hostSysctls(), before, 'host sysctls as before');
    });
  }
}
