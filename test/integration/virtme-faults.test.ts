// Faults through vng (src/runner/virtme.ts), via the real CLI (`run
// --runtime virtme`) on the Debian generic image: a panic, a hang past the
// boot timeout, an interrupt. One boot each; what
// test/{smoke,integration}/faults*.test.ts checks for lockstep's own QEMU
// boot. Apart from test/integration/virtme.test.ts (the agreement with
// lockstep's QEMU, --kernel DIR) so the tier's parallel jobs can run the two
// long halves at once.
// Tier: integration.

import t from 'tap';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AFTER_SCENARIO, alive, cell, lockstep, OK_SCENARIO, procsWith, readResults, runArgs, scenarioFile, specFile, waitFor } from '../lib/faults-util.ts';

const GENERIC = { id: 'deb-generic', kind: 'debian-image', package: 'linux-image-6.1.0-56-amd64-unsigned', version: '6.1.192', package_version: '6.1.192-2', expect: 'auto' };

t.test('faults under vng', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-vngfault-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const spec = specFile(dir, 'generic.json', GENERIC);
  const ok = scenarioFile(dir, OK_SCENARIO);
  const after = scenarioFile(dir, AFTER_SCENARIO);
  const vngArgs = (o: { scenarios: string[]; out: string; extra?: string[] }): string[] => runArgs({ specs: [spec], ...o, extra: ['--runtime', 'virtme', ...(o.extra ?? [])] });
  /** processes of this boot: vng and its QEMU name the private dir under `tmp` (--rwdir) */
  const vmProcs = (tmp: string) => procsWith(tmp).filter((p) => /\bvng\b|qemu-system/.test(p.cmd));
  /** seconds the crash run (the first subtest) took from start to exit */
  let crashRunS: number | undefined;

  t.test('sysrq c mid-scenario: PANIC with the panic line and the oops, as under QEMU; --append reaches the guest and the recorded argv', async (t) => {
    const crash = scenarioFile(dir, { id: 'f-crash', fault_injection: true, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'sysrq', key: 'c' }, { op: 'probe' }] });
    const out = join(dir, 'r-crash');
    const started = Date.now();
    const r = await lockstep(vngArgs({ scenarios: [ok, crash, after], out, extra: ['--timeout', '240', '--append', 'lockstep.vngtest=1'] }));
    crashRunS = (Date.now() - started) / 1000;
    t.equal(r.code, 1, `a PANIC cell: exit 1\n${r.stderr}`);
    const res = readResults(out);
    t.equal(cell(res, 'a-ok', 'deb-generic')?.verdict, 'MATCH', 'measured before the panic, kept');
    const c = cell(res, 'f-crash', 'deb-generic')!;
    t.equal(c.verdict, 'PANIC');
    t.match(c.reason, /kernel panic during f-crash \(last op seen: 0\): .*Kernel panic - not syncing: sysrq triggered crash/);
    t.match(c.console_excerpt, /sysrq_handle_crash/, 'the oops text (call trace) is in the cell');
    t.match(cell(res, 'z-after', 'deb-generic'), { verdict: 'PANIC', reason: /before z-after started/ }, 'the scenario the panic prevented says so');
    const argv = (res.kernels as { provenance: { qemu_argv: string[] } }[])[0]!.provenance.qemu_argv;
    t.equal(argv[argv.indexOf('--append') + 1], 'no_timer_check lockstep.vngtest=1', 'the cell\'s argv records the extra words');
    t.match(readFileSync(join(out, 'logs', 'deb-generic@2cpu', 'console.log'), 'utf8'), /Command line: .* no_timer_check lockstep\.vngtest=1 /, 'the guest kernel got them');
  });

  t.test('an op that hangs past the boot timeout: vng and its QEMU killed, TIMEOUT with the console tail', async (t) => {
    // The boot timeout must leave time to boot and finish a-ok: twice the whole
    // crash run above (boot, a-ok, panic) plus 10 s, 40-100 s; 100 s when that
    // run did not happen (this subtest alone).
    const timeoutS = crashRunS === undefined ? 100 : Math.min(100, Math.max(40, Math.ceil(2 * crashRunS) + 10));
    t.comment(`boot timeout ${timeoutS}s (the crash run took ${crashRunS?.toFixed(1) ?? 'n/a'} s)`);
    const tmpd = join(dir, 'tmp-hang');
    mkdirSync(tmpd);
    const hang = scenarioFile(dir, { id: 'f-hang-long', fault_injection: true, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'hang', seconds: 3600 }] });
    const out = join(dir, 'r-hang');
    let seen = 0;
    const run = lockstep(vngArgs({ scenarios: [ok, hang], out, extra: ['--op-timeout', '3600', '--timeout', String(timeoutS)] }), { env: { TMPDIR: tmpd } });
    // vng and QEMU while the boot runs, so "gone" below means something
    await waitFor(() => (seen = Math.max(seen, vmProcs(tmpd).length)) >= 2, 120_000);
    const r = await run;
    t.ok(seen >= 2, `vng and QEMU were running (${seen} processes)`);
    t.equal(r.code, 3, `only infrastructure failed: exit 3\n${r.stderr}`);
    const res = readResults(out);
    t.equal(cell(res, 'a-ok', 'deb-generic')?.verdict, 'MATCH', 'measured before the hang, kept');
    const c = cell(res, 'f-hang-long', 'deb-generic')!;
    t.equal(c.verdict, 'TIMEOUT');
    t.match(c.reason, new RegExp(`vng killed at its ${timeoutS}s timeout during f-hang-long \\(last op seen: 0\\)`));
    t.match(c.console_excerpt, /virtme-init: starting script/, 'the console tail is in the cell');
    t.same(vmProcs(tmpd), [], 'no vng or QEMU left');
    t.same(readdirSync(tmpd).filter((n) => n.startsWith('lockstep-vng-')), [], 'the shared dir removed');
  });

  t.test('SIGINT mid-scenario: vng and its QEMU gone, the finished cell kept, the running one interrupted, exit 130', async (t) => {
    const tmpd = join(dir, 'tmp-int');
    mkdirSync(tmpd);
    const slow = scenarioFile(dir, { id: 's-slow', ops: Array.from({ length: 4000 }, () => ({ op: 'probe' })) });
    const out = join(dir, 'r-int');
    let pid = -1;
    const run = lockstep(vngArgs({ scenarios: [ok, slow], out, extra: ['--op-timeout', '600'] }), { env: { TMPDIR: tmpd }, onStart: (p) => { pid = p; } });
    // the guest's results file in the shared dir: a-ok ended, s-slow under way
    const live = (): string => {
      const d = readdirSync(tmpd).find((n) => n.startsWith('lockstep-vng-'));
      try { return d ? readFileSync(join(tmpd, d, 'results.jsonl'), 'utf8') : ''; } catch { return ''; }
    };
    const ready = await waitFor(() => /"ev":"op","scenario":"s-slow"/.test(live()), 240_000);
    t.ok(ready, 'a-ok finished and s-slow running in the guest');
    const procs = vmProcs(tmpd);
    t.ok(procs.some((p) => /\bvng\b/.test(p.cmd)) && procs.some((p) => /^\S*qemu-system-x86_64 /.test(p.cmd)), `vng and QEMU running: ${procs.map((p) => p.cmd.slice(0, 40)).join(' | ')}`);
    process.kill(pid, 'SIGINT');
    const gone = await waitFor(() => procs.every((p) => !alive(p.pid)), 15_000);
    t.ok(gone, 'vng and QEMU gone after SIGINT');
    const r = await run;
    t.equal(r.code, 130, r.stderr);
    const res = readResults(out);
    t.equal(res.complete, false);
    t.equal(cell(res, 'a-ok', 'deb-generic')?.verdict, 'MATCH', 'finished cell kept');
    t.match(cell(res, 's-slow', 'deb-generic'), { verdict: 'ERROR', reason: /interrupted/ });
    t.same(vmProcs(tmpd), [], 'no vng or QEMU left');
    t.same(readdirSync(tmpd).filter((n) => n.startsWith('lockstep-vng-')), [], 'the shared dir removed');
  });
});
