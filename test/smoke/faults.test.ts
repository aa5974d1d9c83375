// Guest faults made real: a Debian 6.1.190 guest under TCG that hangs in an
// op, hangs past its boot timeout, never reaches init, panics through
// sysrq, or dies mid-output. Each run goes through the real CLI; each cell's
// verdict, reason and console text are checked, and so are the cells the
// same boot measured before the fault.
// Tier: smoke (its subtests moved unchanged from test/faults.test.ts; the rest is in test/integration/faults.test.ts).

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import { hostOnlineCpus } from '../../src/runner/host.ts';
import {
  AFTER_SCENARIO, cell, DEBIAN_ID, DEBIAN_SPEC, lockstep, OK_SCENARIO, readResults, ROOT, runArgs, scenarioFile, specFile, tmp, 
} from '../lib/faults-util.ts';

const dir = tmp('faults');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const deb = specFile(dir, 'debian.json', DEBIAN_SPEC);
const ok = scenarioFile(dir, OK_SCENARIO);
const after = scenarioFile(dir, AFTER_SCENARIO);

t.before(async () => {
  // fetch (or verify) the kernel once, outside the timed boots
  await ensureKernel(parseSpec(DEBIAN_SPEC, 'test'), { cacheDir: defaultCacheDir(), log: () => {} });
});

t.test('an op that hangs past the boot timeout: the VM is killed, TIMEOUT with the console tail', async (t) => {
  const hang = scenarioFile(dir, { id: 'f-hang-long', fault_injection: true, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'hang', seconds: 3600 }] });
  const out = join(dir, 'r-boot-timeout');
  const r = await lockstep(runArgs({ specs: [deb], scenarios: [ok, hang], out, extra: ['--op-timeout', '3600', '--timeout', '20'] }));
  t.equal(r.code, 3, `only infrastructure failed: exit 3\n${r.stderr}`);
  const res = readResults(out);
  t.equal(cell(res, 'a-ok')?.verdict, 'MATCH', 'measured before the hang, kept');
  const c = cell(res, 'f-hang-long')!;
  t.equal(c.verdict, 'TIMEOUT');
  t.match(c.reason, /VM killed at its 20s timeout during f-hang-long \(last op seen: 0\)/);
  t.match(c.console_excerpt, /lockstep-init: starting reproducer/, 'the console tail is in the cell');
  t.match(readFileSync(join(out, 'logs', `${DEBIAN_ID}@2cpu`, 'console.log'), 'utf8'), /Linux version 6\.1\.0/);
});

t.test('sysrq c mid-scenario: PANIC with the oops text, earlier cells of the boot kept', async (t) => {
  const crash = scenarioFile(dir, { id: 'f-crash', fault_injection: true, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'sysrq', key: 'c' }, { op: 'probe' }] });
  const out = join(dir, 'r-crash');
  const r = await lockstep(runArgs({ specs: [deb], scenarios: [ok, crash, after], out, extra: ['--timeout', '120'] }));
  t.equal(r.code, 1, r.stderr);
  const res = readResults(out);
  t.equal(cell(res, 'a-ok')?.verdict, 'MATCH', 'measured before the panic, kept');
  const c = cell(res, 'f-crash')!;
  t.equal(c.verdict, 'PANIC');
  t.match(c.reason, /kernel panic during f-crash \(last op seen: 0\): .*Kernel panic - not syncing: sysrq triggered crash/);
  t.match(c.console_excerpt, /sysrq_handle_crash/, 'the oops text (call trace) is in the cell');
  t.match(cell(res, 'z-after'), { verdict: 'PANIC', reason: /before z-after started/ }, 'the scenario the panic prevented says so');
});

t.test('fault-injection scenarios never run on the host kernel', async (t) => {
  // "h" only prints sysrq help: harmless even if every guard below failed
  const sysrq = scenarioFile(dir, { id: 'f-host-sysrq', fault_injection: true, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 1 }, { op: 'sysrq', key: 'h' }] });
  const hang = scenarioFile(dir, { id: 'f-host-hang', fault_injection: true, ops: [{ op: 'hang', seconds: 1 }] });
  const out = join(dir, 'r-host-faults');
  const r = await lockstep(runArgs({ specs: [join(ROOT, 'kernels', 'host.json')], scenarios: [ok, sysrq, hang], out }));
  const res = readResults(out);
  for (const id of ['f-host-sysrq', 'f-host-hang']) {
    t.match(cell(res, id, 'host'), { verdict: 'SKIP', reason: /fault-injection ops \(hang\/sysrq\): VM only, never on the host/ }, `${id} skipped`);
  }
  t.equal(cell(res, 'a-ok', 'host')?.verdict, 'MATCH', r.stderr);
  // the host row runs at the host's online count (the scenarios say "cpus": "any")
  const hostLogs = join(out, 'logs', `host@${hostOnlineCpus()}cpu`, 'script.ops');
  t.ok(existsSync(hostLogs), `the host group ran at the host's ${hostOnlineCpus()} CPUs`);
  t.notOk(readFileSync(hostLogs, 'utf8').includes('sysrq'), 'no sysrq line reached the host reproducer');
  t.equal(cell(res, 'a-ok', 'host')?.cpus, hostOnlineCpus(), 'the cell records the count it ran at');
  // and the reproducer itself refuses sysrq outside a lockstep guest
  const script = join(dir, 'sysrq.ops');
  writeFileSync(script, 'begin x uid=3456791 cpus=2 mlock_kb=516 paranoid=2 rlimit_kb=8192 cap_ipc_lock=0\nsysrq h\nend\n');
  const env = { ...process.env };
  delete env.LOCKSTEP_GUEST;
  const outText = execFileSync(join(ROOT, 'harness', 'build', 'lockstep-repro'), ['--script', script], { encoding: 'utf8', env });
  t.match(outText, /"op":"sysrq","ok":false,"errno":"EPERM","msg":"sysrq refused: not in a lockstep guest/);
});
