// Guest faults made real: a Debian 6.1.190 guest under TCG that hangs in an
// op, hangs past its boot timeout, never reaches init, panics through
// sysrq, or dies mid-output. Each run goes through the real CLI; each cell's
// verdict, reason and console text are checked, and so are the cells the
// same boot measured before the fault.
// Tier: integration (its subtests moved unchanged from test/faults.test.ts; the rest is in test/smoke/faults.test.ts).

import t from 'tap';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import {
  AFTER_SCENARIO, cell, DEBIAN_ID, DEBIAN_SPEC, lockstep, OK_SCENARIO, procsWith, readResults, runArgs, scenarioFile, specFile, tmp, waitFor,
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

t.test('an op that hangs past --op-timeout: TIMEOUT for that cell, the boot goes on', async (t) => {
  const hang = scenarioFile(dir, { id: 'f-hang', fault_injection: true, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'hang', seconds: 60 }, { op: 'probe' }] });
  const out = join(dir, 'r-op-timeout');
  const r = await lockstep(runArgs({ specs: [deb], scenarios: [ok, hang, after], out, extra: ['--op-timeout', '3', '--timeout', '120'] }));
  t.equal(r.code, 3, `only infrastructure failed: exit 3\n${r.stderr}`);
  const res = readResults(out);
  t.equal(res.complete, true);
  t.equal(cell(res, 'a-ok')?.verdict, 'MATCH', 'the cell before the hang is kept');
  const c = cell(res, 'f-hang')!;
  t.equal(c.verdict, 'TIMEOUT');
  t.match(c.reason, /op timed out after 3s \(op 1\)/);
  t.equal(cell(res, 'z-after')?.verdict, 'MATCH', 'the reproducer killed the hung worker and ran the next scenario');
});

t.test('a guest that reaches init but never starts the reproducer: TIMEOUT with the console tail', async (t) => {
  const out = join(dir, 'r-hang-before');
  const r = await lockstep(runArgs({ specs: [deb], scenarios: [ok], out, extra: ['--timeout', '15'] }), { env: { LOCKSTEP_EXTRA_CMDLINE: 'lockstep.hang_before=1' } });
  t.equal(r.code, 3, `only infrastructure failed: exit 3\n${r.stderr}`);
  const c = cell(readResults(out), 'a-ok')!;
  t.equal(c.verdict, 'TIMEOUT');
  t.match(c.reason, /VM killed at its 15s timeout before a-ok started/);
  t.match(c.console_excerpt, /hanging before the reproducer/);
});

t.test('a kernel with no init to run: PANIC with the panic line', async (t) => {
  const out = join(dir, 'r-no-init');
  const r = await lockstep(runArgs({ specs: [deb], scenarios: [ok], out, extra: ['--timeout', '60'] }), { env: { LOCKSTEP_EXTRA_CMDLINE: 'rdinit=/does-not-exist' } });
  // a PANIC cell is the kernel's behaviour, not infrastructure (README: exit codes)
  t.equal(r.code, 1, `a PANIC cell: exit 1\n${r.stderr}`);
  const c = cell(readResults(out), 'a-ok')!;
  t.equal(c.verdict, 'PANIC');
  t.match(c.reason, /kernel panic before a-ok started: .*Kernel panic - not syncing/);
  t.match(c.console_excerpt, /Kernel panic - not syncing/);
});

t.test('a kernel image whose compressed payload is damaged never gets to init: TIMEOUT, the console says why', async (t) => {
  const a = await ensureKernel(parseSpec(DEBIAN_SPEC, 'test'), { cacheDir: defaultCacheDir(), log: () => {} });
  const img = Buffer.from(readFileSync(a.vmlinuz!));
  // x86 boot protocol: setup_sects at 0x1f1, payload_offset/length at 0x248/0x24c
  const start = ((img[0x1f1] || 4) + 1) * 512 + img.readUInt32LE(0x248);
  const from = start + Math.floor(img.readUInt32LE(0x24c) / 3);
  for (let k = from; k < from + 4096; k++) img[k] ^= 0xff;
  const path = join(dir, 'broken-bzImage');
  writeFileSync(path, img);
  const spec = specFile(dir, 'broken.json', { id: 'broken-payload', kind: 'image', version: '6.1.190', path, description: '6.1.190 with 4 KiB of its payload inverted' });
  const out = join(dir, 'r-broken');
  const r = await lockstep(runArgs({ specs: [spec], scenarios: [ok], out, extra: ['--timeout', '12'] }));
  t.equal(r.code, 3, `only infrastructure failed: exit 3\n${r.stderr}`);
  const c = cell(readResults(out), 'a-ok', 'broken-payload')!;
  t.equal(c.verdict, 'TIMEOUT');
  t.match(c.reason, /VM killed at its 12s timeout before a-ok started/);
  t.match(c.console_excerpt, /Decoding failed|System halted|crc error/, 'earlyprintk shows the decompressor giving up');
});

t.test('the guest resets mid-line (sysrq b after a burst of lines): ERROR naming what is missing and the cut line', async (t) => {
  // The reproducer writes half of the sysrq op's line and drains the UART
  // before the reset (harness/PROTOCOL.md), so every boot ends mid-line.
  const id = `f-burst-${'y'.repeat(56)}`;
  const burst = scenarioFile(dir, {
    id, fault_injection: true,
    ops: [{ op: 'map', buf: `m${'b'.repeat(60)}`, cpu: 'round-robin', count: 150, data_pages: 0 }, { op: 'sysrq', key: 'b' }, { op: 'probe' }],
  });
  for (let k = 0; k < 2; k++) {
    const out = join(dir, `r-burst-${k}`);
    const r = await lockstep(runArgs({ specs: [deb], scenarios: [ok, burst], out, extra: ['--timeout', '120'] }));
    t.equal(r.code, 3, `only infrastructure failed: exit 3\n${r.stderr}`);
    const res = readResults(out);
    t.equal(cell(res, 'a-ok')?.verdict, 'MATCH', 'the cell before the reset is kept');
    const c = cell(res, id)!;
    t.equal(c.verdict, 'ERROR');
    t.match(c.reason, new RegExp(`the result stream stopped before its done line; ${id} has no end line \\(last op seen: 149 map\\)`), 'all 150 maps arrived, nothing after them');
    const raw = readFileSync(join(out, 'logs', `${DEBIAN_ID}@2cpu`, 'results.jsonl'), 'utf8');
    const last = raw.slice(raw.lastIndexOf('\n') + 1);
    t.match(last, /^\{"ev":"op","scenario":"f-burst-y+","i":150,"op":"sysrq","ok":tr$/, 'the stream ends on the half line');
    t.match(c.reason, /the last line was cut mid-way: "/, 'the cut is named');
    t.ok(c.reason!.includes(JSON.stringify(last.slice(-40)).slice(1, -1)), 'the reason quotes the cut line');
  }
});

t.test('a TMPDIR deeper than a unix socket path allows: the boot still runs, nothing left behind', async (t) => {
  const deep = join(dir, 'd'.repeat(100));
  mkdirSync(deep);
  const out = join(dir, 'r-deep-tmpdir');
  const r = await lockstep(runArgs({ specs: [deb], scenarios: [ok], out, extra: ['--timeout', '120'] }), { env: { TMPDIR: deep } });
  t.equal(r.code, 0, r.stderr);
  t.equal(cell(readResults(out), 'a-ok')?.verdict, 'MATCH');
  t.same(readdirSync(deep).filter((n) => n.startsWith('lockstep-')), [], 'VM temp dir removed');
});

t.test('QEMU killed from outside mid-stream: ERROR naming what is missing, earlier cells kept', async (t) => {
  const tmpdir = join(dir, 'tmp-qemu-kill');
  mkdirSync(tmpdir);
  const slow = scenarioFile(dir, { id: 'f-slow', ops: Array.from({ length: 3000 }, () => ({ op: 'probe' })) });
  const out = join(dir, 'r-qemu-kill');
  const run = lockstep(runArgs({ specs: [deb], scenarios: [ok, slow], out, extra: ['--timeout', '300'] }), { env: { TMPDIR: tmpdir } });
  // wait until the guest is well into f-slow (its first probes take a while under TCG)
  const qemu = await waitFor(() => procsWith(tmpdir).find((p) => p.cmd.startsWith('qemu-system')), 120_000);
  t.ok(qemu, 'QEMU started');
  // by QEMU's own CPU time, not the wall clock (the machine is shared): the
  // boot and a-ok take a few CPU seconds, then f-slow runs for minutes
  const cpuS = (): number => {
    try {
      const stat = readFileSync(`/proc/${qemu!.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime + stime, in clock ticks of 1/100 s
      return (Number(f[11]) + Number(f[12])) / 100;
    } catch { return Infinity; }
  };
  await waitFor(() => cpuS() >= 12, 240_000);
  process.kill(qemu!.pid, 'SIGKILL');
  const r = await run;
  t.equal(r.code, 3, `only infrastructure failed: exit 3\n${r.stderr}`);
  const res = readResults(out);
  t.equal(res.complete, true);
  t.equal(cell(res, 'a-ok')?.verdict, 'MATCH', 'finished before the kill, kept');
  const c = cell(res, 'f-slow')!;
  t.equal(c.verdict, 'ERROR');
  t.match(c.reason, /^QEMU exited \(code null, SIGKILL\) and the result stream stopped before its done line; f-slow has no end line \(last op seen: \d+ probe\)/);
  t.same(readdirSync(tmpdir).filter((n) => n.startsWith('lockstep-vm-')), [], 'VM temp dir removed');
});
