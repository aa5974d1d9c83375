// Issue 28, "done when": `lockstep export kselftest` for five scenarios
// builds with `make` and runs in a guest with KTAP output that the kernel's
// `kunit.py parse` (Debian's linux-source, taken at test time) reads with 0
// errors. The directory is exported for Linux 6.1.190 (V3 on the shared
// locked_vm), built standalone with `make -C DIR` (its Makefile links
// static), and its five programs run as root in one boot of lockstep's
// debian-6.1.190 kernel (test/lib/guest-run.ts); each program's KTAP goes to
// `kunit.py parse` on stdin, and all five nested in one KTAP document as
// kselftest's runner nests a program's output under its result line.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { builtinSpecs } from '../../src/kernels/spec.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { kernelTools } from '../lib/kunit.ts';
import { runInGuest } from '../lib/guest-run.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIVE = ['remmap', 'overage', 'shared-counter', 'sysctl-lowered', 'incident'];
const dir = mkdtempSync(join(tmpdir(), 'lockstep-kselftest-guest-'));
const out = join(dir, 'perf_mmap');
const cacheDir = process.env.LOCKSTEP_CACHE ?? defaultCacheDir();
const scenarios = new Map(builtinScenarios().map((l) => [l.compiled.id, l.compiled]));

/** `kunit.py parse` with `ktap` on stdin: its exit code and its last lines. */
function kunitParse(kunitDir: string, ktap: string): { status: number | null; out: string } {
  const r = spawnSync('python3', [join(kunitDir, 'kunit.py'), 'parse'], { input: ktap, encoding: 'utf8', cwd: dir });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** The five outputs as one KTAP document: each program's lines indented 4 spaces under its own result line. */
function nested(progs: { name: string; stdout: string; rc: number | null }[]): string {
  const lines = ['KTAP version 1', `1..${progs.length}`];
  progs.forEach((p, k) => {
    lines.push(...p.stdout.trimEnd().split('\n').map((l) => `    ${l}`));
    lines.push(`${p.rc === 0 ? 'ok' : p.rc === 4 ? 'ok' : 'not ok'} ${k + 1} ${p.name}${p.rc === 4 ? ' # SKIP' : ''}`);
  });
  return lines.join('\n') + '\n';
}

t.test('export kselftest, make, one guest, kunit.py parse: 0 errors', async (t) => {
  const x = spawnSync(process.execPath, ['bin/lockstep.mjs', 'export', 'kselftest', ...FIVE, '--out', out, '--kernel-version', '6.1.190'], { cwd: ROOT, encoding: 'utf8' });
  t.equal(x.status, 0, x.stderr);
  const make = spawnSync('make', ['-C', out], { encoding: 'utf8' });
  t.equal(make.status, 0, make.stderr);
  const { kunit } = kernelTools();

  const spec = (await builtinSpecs()).find((s) => s.id === 'debian-6.1.190')!;
  const a = await ensureKernel(spec, { cacheDir, log: () => {} });
  t.equal(a.version, '6.1.190');
  const programs = FIVE.map((id) => ({ name: id, binary: readFileSync(join(out, id)), cpus: scenarios.get(id)!.cpus }));
  const g = await runInGuest({ vmlinuz: a.vmlinuz!, initrdExtra: a.initrdExtra, programs, cacheDir, workDir: dir, timeoutMs: 30 * 60_000 });
  writeFileSync(join(dir, 'console.log'), g.boot.console);
  t.equal(g.boot.status, 'exited', `the guest powered off by itself (console: ${join(dir, 'console.log')})`);
  t.strictSame(g.programs.map((p) => p.name), FIVE, 'all five ran');

  for (const p of g.programs) {
    const n = scenarios.get(p.name)!.ops.length;
    writeFileSync(join(dir, `${p.name}.ktap`), p.stdout);
    t.equal(p.rc, 0, `${p.name}: exit 0, every op as V3/shared in 6.1.190 predicts (output: ${join(dir, `${p.name}.ktap`)})`);
    const k = kunitParse(kunit, p.stdout);
    if (k.status !== 0) t.comment(k.out.slice(-2000));
    t.equal(k.status, 0, `${p.name}: kunit.py parse exit 0`);
    t.match(k.out, new RegExp(`Testing complete\\. Ran ${n} tests: passed: ${n}\\s*$`), `${p.name}: ${n} tests, all passed`);
    t.notMatch(k.out, /\[ERROR\]|errors: \d/, `${p.name}: no parse error`);
  }
  const total = FIVE.reduce((s, id) => s + scenarios.get(id)!.ops.length, 0);
  const all = kunitParse(kunit, nested(g.programs));
  if (all.status !== 0) t.comment(all.out.slice(-2000));
  t.equal(all.status, 0, 'kunit.py parse of the nested document: exit 0');
  t.match(all.out, new RegExp(`Testing complete\\. Ran ${total} tests: passed: ${total}\\s*$`), `nested: ${total} tests in 5 suites`);
  t.notMatch(all.out, /\[ERROR\]|errors: \d/);
  t.comment(`${FIVE.length} kselftest programs, ${total} KTAP tests, guest ${Math.round(g.boot.wallMs / 1000)} s`);
});
