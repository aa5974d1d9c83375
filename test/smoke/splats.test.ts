// Kernel splats as verdict inputs. The console scan on excerpts of each kind
// in the kernel's own console format (panic, oops, BUG, KASAN, UBSAN, lockdep,
// RCU stall, hung task, WARN); the policy file's validation and decisions;
// then a real boot of Debian's 6.1.190 kernel whose console carries a
// WARN (vm-images/init.sh's lockstep.splat=warn hook), run once under a
// policy that fails it and once under one that notes it, through the CLI.
// Tier: smoke (its subtests moved unchanged from test/splats.test.ts; the rest is in test/unit/splats.test.ts).

import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { cell, DEBIAN_SPEC, lockstep, readResults, runArgs, scenarioFile, specFile, tmp } from '../lib/faults-util.ts';

t.test('a guest whose kernel WARNs: the policy fails one kernel\'s cell and notes the other\'s (real boots)', async (t) => {
  const dir = tmp('splats');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The Debian 6.1.190 kernel twice under two ids: one download (the cache key is the
  // package, not the id), two boots, two policy outcomes.
  const spec = (id: string): Record<string, unknown> => ({ ...DEBIAN_SPEC, id });
  const specs = specFile(dir, 'kernels.json', [spec('warn-fails-6.1'), spec('warn-noted-6.1')]);
  const policy = specFile(dir, 'policy.json', { rules: [{ kernels: '*', fail: ['warn'] }, { kernels: 'warn-noted-*', note: ['warn'] }] });
  const sc = scenarioFile(dir, { id: 'splat-ok', cpus: 1, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'probe' }] });
  const out = join(dir, 'run');
  const r = await lockstep([...runArgs({ specs: [specs], scenarios: [sc], out, extra: ['--timeout', '300', '--jobs', '1'] }), '--splat-policy', policy],
    { env: { LOCKSTEP_EXTRA_CMDLINE: 'lockstep.splat=warn' } });
  t.equal(r.code, 1, `a failing cell: exit 1 (${r.stderr.slice(-800)})`);
  const res = readResults(out);
  const failed = cell(res, 'splat-ok', 'warn-fails-6.1')!;
  const noted = cell(res, 'splat-ok', 'warn-noted-6.1')!;
  t.equal(failed.verdict, 'PANIC', String(failed.reason));
  t.match(failed.reason, /^kernel warn during the boot \(fails the cell: .*policy\.json rules\[0\] \(\*\)\): \[ *[\d.]+\] WARNING: CPU: 0 PID: 1 at vm-images\/init\.sh:1 lockstep_splat_hook.*; measured: MATCH$/);
  t.match(failed.console_excerpt, /-+\[ cut here \]-+\n.*WARNING: CPU: 0 PID: 1 at/, 'the splat text travels in the cell');
  t.equal(noted.verdict, 'MATCH', String(noted.reason));
  t.match(noted.reason, /^kernel warn during the boot \(a note: .*policy\.json rules\[1\] \(warn-noted-\*\)\): \[ *[\d.]+\] WARNING: CPU: 0 PID: 1 at /);
  t.match(String(noted.kernel_release ?? ''), /^6\.1\./, 'a 6.1 kernel booted');
});
