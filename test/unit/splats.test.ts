// Kernel splats as verdict inputs. The console scan on excerpts of each kind
// in the kernel's own console format (panic, oops, BUG, KASAN, UBSAN, lockdep,
// RCU stall, hung task, WARN); the policy file's validation and decisions;
// then a real boot of Debian's 6.1.190 kernel whose console carries a
// WARN (vm-images/init.sh's lockstep.splat=warn hook), run once under a
// policy that fails it and once under one that notes it, through the CLI.
// Tier: unit (its subtests moved unchanged from test/splats.test.ts; the rest is in test/smoke/splats.test.ts).

import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSplatPolicy } from '../../src/policy/load.ts';
import { MEASURE_POLICY, parseSplatPolicy, splatDecider } from '../../src/policy/splats.ts';
import { consoleFaults, type ParsedStream, SPLAT_KINDS } from '../../src/runner/stream.ts';
import { type CellContext, cellsFromOutcome } from '../../src/matrix/cells.ts';
import { parseLogic, simulate } from '../../src/model/index.ts';
import type { GroupOutcome } from '../../src/runner/runtime.ts';
import { syntheticMeasured } from '../../src/diff/discriminate.ts';
import { compileScenario } from '../../src/scenario/load.ts';
import { lockstep, ROOT, tmp } from '../lib/faults-util.ts';

const T = (s: string): string => s.split('\n').map((l, i) => (l ? `[   ${(12.3 + i * 0.001).toFixed(6)}] ${l}` : l)).join('\n');

/** Console excerpts in the formats the kernel prints them (6.x), one per kind, plus lines that are not splats. */
const EXCERPTS: Record<string, string> = {
  panic: T('Kernel panic - not syncing: sysrq triggered crash\nCPU: 0 PID: 123 Comm: repro Not tainted 6.1.0 #1\nCall Trace:\n <TASK>\n dump_stack_lvl+0x44/0x5c\n panic+0x107/0x2b4'),
  oops: T('BUG: kernel NULL pointer dereference, address: 0000000000000000\n#PF: supervisor read access in kernel mode\nOops: 0000 [#1] PREEMPT SMP NOPTI\nCPU: 1 PID: 87 Comm: repro Not tainted 6.1.0 #1\nRIP: 0010:perf_mmap+0x1a2/0x5c0'),
  gpf: T('general protection fault, probably for non-canonical address 0xdffffc0000000003: 0000 [#1] PREEMPT SMP KASAN\nCPU: 0 PID: 5067 Comm: syz-executor Not tainted 6.1.0 #1\nRIP: 0010:__lock_acquire+0x6a/0x1f80'),
  bug: T('------------[ cut here ]------------\nkernel BUG at mm/mmap.c:3350!\ninvalid opcode: 0000 [#1] PREEMPT SMP\nCPU: 0 PID: 1 Comm: init Not tainted 6.1.0 #1'),
  sleeping: T('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580\nin_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: swapper/0\npreempt_count: 1, expected: 0'),
  kasan: T('==================================================================\nBUG: KASAN: use-after-free in perf_mmap_close+0x8d6/0xb30\nRead of size 8 at addr ffff88801d0c5030 by task syz-executor.0/5123\n\nCPU: 1 PID: 5123 Comm: syz-executor.0 Not tainted 6.1.0-syzkaller #0'),
  ubsan: T('================================================================================\nUBSAN: array-index-out-of-bounds in kernel/events/core.c:6354:13\nindex 64 is out of range for type \'unsigned long [64]\'\nCPU: 0 PID: 77 Comm: repro Not tainted 6.1.0 #1'),
  lockdep: T('\n======================================================\nWARNING: possible circular locking dependency detected\n6.1.0 #1 Not tainted\n------------------------------------------------------\nrepro/77 is trying to acquire lock:\nffff888004a3c0a8 (&mm->mmap_lock){++++}-{3:3}, at: perf_mmap+0x5d/0x5c0'),
  recursive: T('============================================\nWARNING: possible recursive locking detected\n6.1.0 #1 Not tainted\n--------------------------------------------'),
  suspicious_rcu: T('=============================\nWARNING: suspicious RCU usage\n6.1.0 #1 Not tainted\n-----------------------------\nkernel/events/core.c:1234 suspicious rcu_dereference_check() usage!'),
  rcu: T('rcu: INFO: rcu_sched self-detected stall on CPU\nrcu: \t0-....: (20999 ticks this GP) idle=a4c/1/0x4000000000000000 softirq=1033/1033 fqs=5222\n\t(t=21000 jiffies g=1937 q=130 ncpus=2)'),
  rcu_cpus: T('rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\nrcu: \t1-...!: (0 ticks this GP) idle=5e4/1/0x4000000000000000 softirq=0/0 fqs=0'),
  hung: T('INFO: task repro:87 blocked for more than 122 seconds.\n      Not tainted 6.1.0 #1\n"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.\ntask:repro           state:D stack:0     pid:87    ppid:1      flags:0x00004000'),
  warn: T('------------[ cut here ]------------\nWARNING: CPU: 1 PID: 87 at kernel/events/core.c:6120 perf_mmap_close+0x3d2/0x4c0\nModules linked in:\nCPU: 1 PID: 87 Comm: repro Not tainted 6.1.0 #1\nRIP: 0010:perf_mmap_close+0x3d2/0x4c0\n---[ end trace 0000000000000000 ]---'),
  warn_old: 'WARNING: at kernel/events/core.c:3730 perf_mmap_close+0x1d/0x9b()',
};
const WANT: Record<string, string[]> = {
  panic: ['panic'], oops: ['bug', 'oops'], gpf: ['oops'], bug: ['bug'], sleeping: ['bug'], kasan: ['kasan'], ubsan: ['ubsan'],
  lockdep: ['lockdep'], recursive: ['lockdep'], suspicious_rcu: ['lockdep'], rcu: ['rcu_stall'], rcu_cpus: ['rcu_stall'],
  hung: ['hung_task'], warn: ['warn'], warn_old: ['warn'],
};

t.test('the console scan names each splat kind once, at its first line', async (t) => {
  for (const [name, text] of Object.entries(EXCERPTS)) {
    const f = consoleFaults(text);
    t.same(f.map((x) => x.kind), WANT[name], name);
    t.ok(f.every((x) => text.includes(x.line) && x.excerpt.includes(x.line)), `${name}: line and excerpt from the console`);
  }
  // every kind the policy can name is reachable
  t.same([...new Set(Object.values(WANT).flat())].sort(), [...SPLAT_KINDS].sort());
  // not splats: a user program's output, sysrq help, an RCU message that is no stall, lines mentioning words mid-line
  const quiet = T('lockstep-init: starting reproducer\nsysrq: HELP : loglevel(0-9) reBoot Crash\nrcu: Hierarchical RCU implementation.\n' +
    'x86/cpu: WARNING: not a real splat mid-line WARNING: CPU: 0 is not at line start\nAudit: printk.devkmsg=on BUG: in the middle\nhung_task: INFO: nothing blocked');
  t.same(consoleFaults(quiet), [], 'no false positives on ordinary lines');
  t.same(consoleFaults(T('WARNING: CPU: 0 PID: 1 at a.c:1 f+0x0/0x1\r\n')).map((x) => x.line), ['[   12.300000] WARNING: CPU: 0 PID: 1 at a.c:1 f+0x0/0x1'], 'CR stripped');
});

t.test('policy: the last matching rule that lists a kind decides; unlisted kinds fail; panic always fails', async (t) => {
  const p = parseSplatPolicy({
    $comment: 'test',
    rules: [
      { kernels: '*', fail: ['warn', 'lockdep'], note: ['rcu_stall'] },
      { kernels: 'debian-6.1.*', note: ['warn'] },
      { kernels: '{variant-fix-1,variant-fix-1a}', fail: ['rcu_stall'] },
    ],
  }, 'p.json');
  const d = (k: string) => splatDecider(p, k);
  t.equal(d('current-6.1').action('warn'), 'fail');
  t.equal(d('debian-6.1.190').action('warn'), 'note');
  t.match(d('debian-6.1.190').why('warn'), /^p\.json rules\[1\] \(debian-6\.1\.\*\)$/);
  t.equal(d('debian-6.12.117').action('warn'), 'fail', 'the glob matches the whole id: debian-6.12.117 is not debian-6.1.*');
  t.equal(d('debian-6.1.190').action('lockdep'), 'fail', 'an exception for one kind leaves the others');
  t.equal(d('variant-fix-1a').action('rcu_stall'), 'fail');
  t.equal(d('variant-fix-1b').action('rcu_stall'), 'note');
  t.equal(d('anything').action('kasan'), 'fail', 'no rule lists kasan: it fails');
  t.match(d('anything').why('kasan'), /no rule for anything lists kasan/);
  t.equal(d('anything').action('panic'), 'fail');
  // bisect and classify (no policy file): a WARN does not change what was measured, an oops does
  const m = splatDecider(MEASURE_POLICY, 'x');
  t.same(SPLAT_KINDS.filter((k) => m.action(k) === 'fail'), ['panic', 'oops', 'bug', 'kasan']);
  t.equal(parseSplatPolicy(JSON.parse(JSON.stringify({ rules: MEASURE_POLICY.rules })), 'copy').rules.length, 1, 'the built-in policy passes its own validation');
});

t.test('policy: bad files give one line naming the file, the field and the fix', async (t) => {
  const bad: [unknown, RegExp][] = [
    [[], /^p\.json: not a JSON object\. Fix: /],
    [{ rule: [] }, /^p\.json: rule: unknown key\. Fix: remove it/],
    [{}, /^p\.json: rules: missing or not an array\. Fix: /],
    [{ rules: [{ fail: ['warn'] }] }, /^p\.json: rules\[0\]\.kernels: missing or not a non-empty string\. Fix: give a kernel id glob/],
    [{ rules: [{ kernels: '*', fail: ['WARN'] }] }, /^p\.json: rules\[0\]\.fail\[0\]: "WARN" is not a splat kind\. Fix: use one of panic, oops, bug, kasan, ubsan, lockdep, rcu_stall, hung_task, warn$/],
    [{ rules: [{ kernels: '*', fail: 'warn' }] }, /^p\.json: rules\[0\]\.fail: not an array\. Fix: /],
    [{ rules: [{ kernels: '*', fail: ['warn'], note: ['warn'] }] }, /^p\.json: rules\[0\]\.note: warn is in both fail and note\. Fix: keep warn in one of them$/],
    [{ rules: [{ kernels: '*', note: ['panic'] }] }, /^p\.json: rules\[0\]\.note: panic cannot be a note .*Fix: remove panic from note$/],
    [{ rules: [{ kernels: '*' }] }, /^p\.json: rules\[0\]: lists no kind in fail or note\. Fix: /],
    [{ rules: [{ kernels: '*', fail: ['warn'], note: [], deny: [] }] }, /^p\.json: rules\[0\]\.deny: unknown key/],
  ];
  for (const [raw, re] of bad) t.throws(() => parseSplatPolicy(raw, 'p.json'), re, JSON.stringify(raw));
  const dir = tmp('splat-policy');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'broken.json'), '{"rules": [');
  await t.rejects(loadSplatPolicy(join(dir, 'broken.json'), 'broken.json'), /^broken\.json: not valid JSON \(.*\)\. Fix: fix the JSON syntax$/);
  await t.rejects(loadSplatPolicy(join(dir, 'absent.json'), 'absent.json'), /^absent\.json: cannot be read \(ENOENT\)/);
  // the shipped policy loads and says what the README says
  const shipped = await loadSplatPolicy(join(ROOT, 'policy', 'splats.json'), 'policy/splats.json');
  const any = splatDecider(shipped, 'debian-6.1.190');
  t.same(['oops', 'bug', 'kasan', 'ubsan', 'lockdep', 'warn'].map((k) => any.action(k as never)), Array(6).fill('fail'));
  t.same(['rcu_stall', 'hung_task'].map((k) => any.action(k as never)), ['note', 'note']);
  // the CLI refuses a bad policy before booting anything
  writeFileSync(join(dir, 'typo.json'), JSON.stringify({ rules: [{ kernels: '*', fail: ['warning'] }] }));
  const r = await lockstep(['run', '--kernels', 'host', '--scenarios', 'remmap', '--splat-policy', join(dir, 'typo.json'), '--out', join(dir, 'out')]);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /^lockstep run: .*typo\.json: rules\[0\]\.fail\[0\]: "warning" is not a splat kind\. Fix: use one of /);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('cells: a failing splat makes a finished boot\'s cells PANIC, a noted one annotates MATCH, a cut boot blames the scenario in flight', async (t) => {
  const logic = parseLogic('V3/shared');
  const sc = ['a-ok', 'b-ok'].map((id) => compileScenario({ id, description: 'x', cpus: 2, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'probe' }] }, `${id}.json`));
  const stream = (done: boolean): ParsedStream => ({
    scenarios: new Map(sc.map((s, k) => [s.id, { scenario: s.id, ops: syntheticMeasured(s, simulate(s, logic)), errors: [], ended: done || k === 0 }])),
    order: sc.map((s) => s.id), done, garbage: [], garbageCount: 0, ...(done ? {} : { open: 'b-ok' }),
  });
  const outcome = (done: boolean, console: string): GroupOutcome => ({
    status: done ? 'ok' : 'error', detail: done ? '' : 'QEMU exited', stream: stream(done), faults: consoleFaults(console), consoleTail: '', consoleLog: null, resultsLog: null,
    accel: 'tcg', accelWhy: 'test', bootMs: 1, wallMs: 2, argv: [],
  });
  const policy = parseSplatPolicy({ rules: [{ kernels: '*', fail: ['warn', 'lockdep', 'bug'] }, { kernels: 'noted', note: ['warn'] }] }, 'p.json');
  const cells = (kernel: string, o: GroupOutcome) => {
    const ctx: CellContext = { kernel, logic, runtime: 'qemu', startedAt: '2026-01-01T00:00:00Z', scenarioHash: () => 'h', rerun: (s) => s, splats: splatDecider(policy, kernel) };
    return cellsFromOutcome(ctx, sc, o);
  };
  const clean = cells('k', outcome(true, 'lockstep-init: starting reproducer'));
  t.same(clean.map((c) => c.verdict), ['MATCH', 'MATCH'], 'control: no splat, MATCH');
  const failed = cells('k', outcome(true, EXCERPTS.warn!));
  t.same(failed.map((c) => c.verdict), ['PANIC', 'PANIC'], 'a completed boot: every cell fails');
  t.match(failed[0]!.reason, /^kernel warn during the boot \(fails the cell: p\.json rules\[0\] \(\*\)\): \[ *[\d.]+\] WARNING: CPU: 1 PID: 87 at kernel\/events\/core\.c:6120 .*; measured: MATCH$/);
  t.match(failed[0]!.console_excerpt, /cut here[^]*WARNING: CPU: 1[^]*end trace/);
  const noted = cells('noted', outcome(true, EXCERPTS.warn!));
  t.same(noted.map((c) => c.verdict), ['MATCH', 'MATCH']);
  t.match(noted[0]!.reason, /^kernel warn during the boot \(a note: p\.json rules\[1\] \(noted\)\): .*WARNING: CPU: 1/);
  const worst = cells('noted', outcome(true, `${EXCERPTS.warn}\n${EXCERPTS.recursive}\n${EXCERPTS.sleeping}`));
  t.match(worst[0]!.reason, /^kernel bug during the boot .*BUG: sleeping function/, 'the most severe failing kind is named (bug before lockdep; the noted warn is not)');
  const cut = cells('k', outcome(false, EXCERPTS.bug!));
  t.equal(cut[0]!.verdict, 'MATCH', 'finished before the boot was cut: kept');
  t.equal(cut[1]!.verdict, 'PANIC');
  t.match(cut[1]!.reason, /^kernel bug during b-ok \(last op seen: 1\): .*kernel BUG at mm\/mmap\.c:3350! \(fails the cell: p\.json rules\[0\] \(\*\)\)$/);
});
