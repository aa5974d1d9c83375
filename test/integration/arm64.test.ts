// arm64 guests and page sizes (#19): the qemu-system-aarch64 command line,
// the hvc0 modules of a Debian arm64 kernel, the page size a spec implies,
// the arm64 userland checks; then one run of real arm64 kernels under TCG:
// Debian bookworm cloud-arm64 (4 KiB pages), Debian trixie arm64-16k
// (16 KiB), and the pre-fix / current-6.1 stand-ins cross-built with 64 KiB
// pages. The same profiler workload (128-page rings) is refused at 64 KiB
// pages and accepted at 4 and 16; the incident, sized in bytes, refuses call
// 5 on the pre-fix stand-in at 64 KiB pages. Heavy: run under the lock.
// Tier: integration (its subtests moved unchanged from test/arm64.test.ts; the rest is in test/unit/arm64.test.ts).

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults } from '../../src/results/schema.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/lockstep.mjs', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 2_400_000, env: { ...process.env, LOCKSTEP_ACCEL: 'tcg' } });
const dir = mkdtempSync(join(tmpdir(), 'lockstep-arm64-'));

const KERNELS = ['debian-bookworm-arm64', 'debian-trixie-arm64-16k', 'pre-fix-arm64-64k', 'current-6.1-arm64-64k'];
const PAGE_KB: Record<string, number> = { 'debian-bookworm-arm64': 4, 'debian-trixie-arm64-16k': 16, 'pre-fix-arm64-64k': 64, 'current-6.1-arm64-64k': 64 };

t.test('real arm64 kernels at 4, 16 and 64 KiB pages MATCH the model', (t) => {
  const out = join(dir, 'run');
  const r = cli('run', '--kernels', KERNELS.join(','), '--scenarios', 'incident,profiler-pages,remmap,shared-counter,buffer-sizes', '--out', out, '--quiet');
  t.equal(r.status, 0, r.stderr.slice(-3000));
  const res = checkResults(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')), 'results.json');
  t.strictSame(res.kernels.map((k) => k.id).sort(), [...KERNELS].sort());
  for (const k of res.kernels) {
    t.equal(k.arch, 'arm64', `${k.id}: arch recorded`);
    t.equal(k.page_kb ?? 4, PAGE_KB[k.id], `${k.id}: page size recorded`);
  }
  const cell = (k: string, s: string) => res.cells.find((c) => c.kernel === k && c.scenario === s)!;
  for (const k of KERNELS) {
    for (const s of ['incident', 'profiler-pages', 'remmap', 'shared-counter']) {
      const c = cell(k, s);
      t.equal(c?.verdict, 'MATCH', `${k} x ${s}: ${c?.reason ?? ''}`);
    }
    const argv = cell(k, 'remmap').qemu_argv ?? [];
    t.match(argv[0] ?? '', /qemu-system-aarch64$/, `${k}: booted by qemu-system-aarch64`);
    // the guest itself says its page size (the reproducer's hello)
    const rel = cell(k, 'remmap').results_log;
    const log = rel ? (isAbsolute(rel) ? rel : join(out, rel)) : null;
    if (log && existsSync(log)) {
      const hello = JSON.parse(readFileSync(log, 'utf8').split('\n')[0]!) as { machine: string; page_kb: number };
      t.equal(hello.machine, 'aarch64');
      t.equal(hello.page_kb, PAGE_KB[k], `${k}: the guest reports ${PAGE_KB[k]} kB pages`);
    } else t.fail(`${k}: no results log`);
  }
  // The same 128-page rings: accepted at 4 and 16 kB pages, the second refused at 64 kB.
  t.equal(cell('debian-bookworm-arm64', 'profiler-pages').first_eperm_measured, null);
  t.equal(cell('debian-trixie-arm64-16k', 'profiler-pages').first_eperm_measured, null);
  t.equal(cell('pre-fix-arm64-64k', 'profiler-pages').first_eperm_measured, 2, 'V0 at 64 kB pages refuses the 2nd ring');
  t.equal(cell('current-6.1-arm64-64k', 'profiler-pages').first_eperm_measured, 2, 'V3 at 64 kB pages refuses the 2nd ring');
  // The incident in bytes: the pre-fix logic refuses call 5 at 64 kB pages too; the current one never.
  t.equal(cell('pre-fix-arm64-64k', 'incident').first_eperm_measured, 5);
  t.equal(cell('current-6.1-arm64-64k', 'incident').first_eperm_measured, null);
  // "L-80" cannot be compiled where user_lock_limit is below 80 pages: SKIP, not a failed run
  t.equal(cell('debian-bookworm-arm64', 'buffer-sizes').verdict, 'MATCH');
  for (const k of ['debian-trixie-arm64-16k', 'pre-fix-arm64-64k']) t.match(cell(k, 'buffer-sizes'), { verdict: 'SKIP', reason: /does not fit \d+ kB pages/ });
  const table = readFileSync(join(out, 'table.md'), 'utf8');
  t.match(table, /pre-fix-arm64-64k \([^)]*arm64, 64 KiB pages\)/, 'table.md names the arch and page size');
  t.end();
});
