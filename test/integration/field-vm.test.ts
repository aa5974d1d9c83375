// The four field situations of issue 16 on real kernels: one 32-vCPU boot per
// kernel (the V0 stand-in pre-fix, Debian 6.1.190 for V3, the V4 stand-in
// remmap-charge) runs profiler-32 (pinned at 32 CPUs; its first probe is the
// probe at 32 vCPUs with the default sysctl, headroom 4128 pages to the page,
// which failed with EMFILE at 4090 before) and the three "any" scenarios at
// --cpus 32. Then the host: profiler-32 SKIPs for its CPUs (unless the host
// has 32), the other three MATCH at the host's count.

import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { lockstep, readResults, scenarioFile, tmp } from '../lib/faults-util.ts';

const dir = tmp('field');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const SCENARIOS = ['profiler-32', 'root-pod-ipc-lock', 'fd-handoff', 'restart-clears'];
// The host's own `ulimit -l` (8 MiB here) used to refuse this io_uring ballast on the host only:
// now every runtime gives helpers the same 8192 kB, and the model predicts ENOMEM everywhere.
const URING = scenarioFile(dir, { id: 'uring-2560', description: 'io_uring ballast of 2560 pages, then 100', ops: [
  { op: 'probe' }, { op: 'ballast', via: 'io_uring', pages: 2560 }, { op: 'probe' }, { op: 'ballast', via: 'io_uring', pages: 100 }, { op: 'probe' },
] });
const ballasts = (c: Record<string, unknown> | undefined): unknown[] => ((c?.measured ?? []) as (M & { mapped?: number })[]).filter((x) => x.op === 'ballast').map((x) => [x.ok, x.errno, x.mapped]);
let vmUring: unknown[] = [];
// The cheaper equivalent of many CPUs: a raised perf_event_mlock_kb on the host's own CPUs
// (4128 pages per 2 CPUs, past the old probe's EMFILE at ~4090, then 8192 pages per CPU).
const BIGPROBE = scenarioFile(dir, { id: 'probe-raised', description: 'the probe at raised perf_event_mlock_kb', perf_event_mlock_kb: 8256, ops: [
  { op: 'probe' }, { op: 'sysctl', name: 'perf_event_mlock_kb', value: 32768 }, { op: 'probe' },
] });

interface M { i: number; op: string; ok: boolean; errno: string; vmpin_kb: number; headroom?: number }

t.test('V0, V3 and V4 kernels at 32 vCPUs: every field scenario MATCHes, the probe measures 4128 pages', async (t) => {
  const kernels = ['pre-fix', 'debian-6.1.190', 'remmap-charge'];
  const out = join(dir, 'vm');
  const r = await lockstep(['run', '--kernels', kernels.join(','), '--scenarios', [...SCENARIOS, 'uring-2560'].join(','), '--scenario-file', URING, '--cpus', '32', '--attempts', '1', '--out', out, '--quiet'], { killAfterMs: 1_500_000 });
  t.equal(r.code, 0, `exit 0\n${r.stderr.slice(-3000)}`);
  const res = readResults(out);
  for (const k of kernels) {
    const boots = new Set(res.cells.filter((c) => c.kernel === k).map((c) => c.console_log));
    t.equal(boots.size, 1, `${k}: one boot for the four`);
    const first = res.cells.find((c) => c.kernel === k)!;
    t.comment(`${k}: 32-vCPU boot ${String(first.boot_ms)} ms, group ${String(first.group_wall_ms)} ms (${String(first.accel)})`);
    const u = res.cells.find((c) => c.kernel === k && c.scenario === 'uring-2560');
    t.equal(u?.verdict, 'MATCH', `${k} uring-2560: ${u?.verdict} ${String(u?.reason ?? '')}`);
    t.strictSame(ballasts(u), [[false, 'ENOMEM', 0], [true, '', 100]], `${k}: 2560 pages refused (helper RLIMIT_MEMLOCK 8 MiB), 100 registered`);
    if (k === 'debian-6.1.190') vmUring = ballasts(u);
    for (const s of SCENARIOS) {
      const c = res.cells.find((x) => x.kernel === k && x.scenario === s);
      t.equal(c?.verdict, 'MATCH', `${k} ${s}: ${c?.verdict} ${String(c?.reason ?? '')}`);
      t.equal(c?.cpus, 32, `${k} ${s}: at 32 vCPUs`);
    }
    const prof = res.cells.find((x) => x.kernel === k && x.scenario === 'profiler-32')!;
    const m = prof.measured as M[];
    t.equal(m[0]!.headroom, 4128, `${k}: the probe at 32 vCPUs, default perf_event_mlock_kb: 4128 pages`);
    const refused = m.findIndex((x) => x.op === 'map' && !x.ok);
    t.equal(refused, k === 'pre-fix' ? 20 : 25, `${k}: the ring refused first (op index = ring number: op 0 is the probe)`);
    if (k !== 'pre-fix') t.equal(m[refused - 1]!.vmpin_kb, 2040 * 4, `${k}: VmPin 2040 pages before it`);
    const hand = (res.cells.find((x) => x.kernel === k && x.scenario === 'fd-handoff')!.measured as M[]).filter((x) => x.op === 'probe').map((x) => x.headroom);
    // L = 4128 at 32 CPUs; 12 rings of 9 pages = 108
    t.strictSame(hand, k === 'remmap-charge' ? [4128 - 216, 4128 - 216, 4128 - 108] : [4128 - 108, 4128 - 108, 4128], `${k}: fd-handoff probes`);
  }
});

t.test('the host: profiler-32 SKIPs for the CPU count, the others MATCH; the io_uring ballast as in the VM', async (t) => {
  const out = join(dir, 'host');
  const r = await lockstep(['run', '--kernels', 'host', '--scenarios', [...SCENARIOS, 'uring-2560', 'probe-raised'].join(','), '--scenario-file', URING, '--scenario-file', BIGPROBE, '--out', out, '--quiet']);
  t.equal(r.code, 0, `exit 0\n${r.stderr.slice(-2000)}`);
  const res = readResults(out);
  for (const s of SCENARIOS) {
    const c = res.cells.find((x) => x.scenario === s)!;
    if (s === 'profiler-32' && availableParallelism() !== 32) {
      t.equal(c.verdict, 'SKIP');
      t.match(String(c.reason), /32 online CPUs/, `reason: ${String(c.reason)}`);
    } else t.equal(c.verdict, 'MATCH', `${s}: ${c.verdict} ${String(c.reason ?? '')}`);
  }
  const u = res.cells.find((x) => x.scenario === 'uring-2560');
  t.equal(u?.verdict, 'MATCH', `uring-2560 on the host: ${u?.verdict} ${String(u?.reason ?? '')}`);
  t.strictSame(ballasts(u), vmUring, 'the io_uring ballasts end alike on the host and in the Debian 6.1.190 VM');
  t.strictSame(vmUring, [[false, 'ENOMEM', 0], [true, '', 100]]);
  const p = res.cells.find((x) => x.scenario === 'probe-raised')!;
  t.equal(p.verdict, 'MATCH', `probe-raised on the host: ${p.verdict} ${String(p.reason ?? '')}`);
  const n = Number(p.cpus);
  t.strictSame((p.measured as M[]).filter((x) => x.op === 'probe').map((x) => [x.ok, x.headroom]), [[true, 2064 * n], [true, 8192 * n]], `the probe to the page at ${n} CPUs: ${2064 * n} and ${8192 * n} pages`);
});
