// Sharding and merging. Pure logic first (assignment, identity, refusals,
// a 200 kernels x 50 scenarios matrix planned, sharded, merged and reported
// from simulated cells), then a real matrix (host + Debian 6.1.190 in QEMU)
// run whole and as 3 shards through the CLI, merged, and compared cell by cell.
// Tier: smoke (its subtests moved unchanged from test/shard.test.ts; the rest is in test/unit/shard.test.ts).

import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults, type Results } from '../../src/results/schema.ts';
import { hostOnlineCpus } from '../../src/runner/host.ts';
import { BASE_RECIPE, recipeKernelFlags, smokeRun } from '../lib/smoke-run.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// ---------------------------------------------------------------------------
// Real: host + Debian 6.1.190 under QEMU, 5 scenarios in two CPU counts (4 boots).

// The whole run is the smoke tier's shared base run (test/lib/smoke-run.ts):
// the shards below use its exact kernels and scenarios.
const KERNEL_FLAGS = recipeKernelFlags(BASE_RECIPE);
const SCEN = BASE_RECIPE.scenarios.join(',');

function lockstep(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin/lockstep.mjs'), ...args], { env: { ...process.env, GITHUB_STEP_SUMMARY: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = ''; let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', rej);
    p.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

const readR = async (dir: string): Promise<Results> => checkResults(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')), dir);
const essence = (r: Results) => r.cells.map((c) => ({
  kernel: c.kernel, scenario: c.scenario, verdict: c.verdict, first_eperm: c.first_eperm_measured,
  measured: c.measured.map(({ i, op, ok, errno, vmpin_kb, headroom, mapped }) => ({ i, op, ok, errno, vmpin_kb, headroom, mapped })),
})).sort((a, b) => `${a.kernel} ${a.scenario}`.localeCompare(`${b.kernel} ${b.scenario}`));

t.test('real matrix as 3 shards, merged, equals the whole run', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-shard-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const shared = await smokeRun(BASE_RECIPE);
  const whole = { code: shared.code, stderr: shared.stderr };
  t.equal(whole.code, 0, `whole run: ${whole.stderr.slice(-2000)}`);
  const shardDirs: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const d = join(dir, `shard-${i}`);
    shardDirs.push(d);
    const r = await lockstep(['run', ...KERNEL_FLAGS, '--scenarios', SCEN, '--shard', `${i}/3`, '--out', d, '--quiet']);
    t.equal(r.code, 0, `shard ${i}/3: ${r.stderr.slice(-2000)}`);
  }
  const w = await readR(shared.dir);
  const parts = await Promise.all(shardDirs.map(readR));
  t.equal(w.cells.length, 10, '2 kernels x 5 scenarios');
  t.same(parts.map((p) => p.shard!.index), [1, 2, 3]);
  t.ok(parts.every((p) => p.matrix!.hash === w.matrix!.hash), 'shards and the whole run share the matrix hash');
  const groupSets = parts.map((p) => p.shard!.groups);
  // "any" scenarios run at the host's online count on the host row (cpu-offline pins 4)
  const hostGroups = [...new Set([`host@${hostOnlineCpus()}cpu`, 'host@4cpu'])];
  t.same(groupSets.flat().sort(), ['debian-6.1.190@2cpu', 'debian-6.1.190@4cpu', ...hostGroups].sort(), 'the boots split over the shards, none twice');
  t.ok(parts.every((p) => p.cells.length > 0 || p.shard!.groups.length === 0));
  // every shard's cells belong to its own groups (no boot split)
  for (const p of parts) for (const c of p.cells) t.ok(p.shard!.groups.includes(`${c.kernel}@${c.cpus}cpu`), `${c.kernel} x ${c.scenario} in its shard's group`);

  const m = await lockstep(['merge', ...shardDirs, '--out', join(dir, 'merged')]);
  t.equal(m.code, 0, m.stderr);
  const merged = await readR(join(dir, 'merged'));
  t.ok(merged.complete);
  t.same(essence(merged), essence(w), 'same cells: kernel, scenario, verdict, first EPERM, measured ops');
  for (const f of ['table.md', 'report.html', 'junit.xml', 'results.tap']) t.ok((await readFile(join(dir, 'merged', f), 'utf8')).length > 100, `merged ${f}`);
  // the cpu-offline cell really ran in the VM (4 vCPUs) and really was skipped on the host
  t.equal(merged.cells.find((c) => c.kernel === 'host' && c.scenario === 'cpu-offline')!.verdict, 'SKIP');
  t.equal(merged.cells.find((c) => c.kernel === 'debian-6.1.190' && c.scenario === 'cpu-offline')!.verdict, 'MATCH');

  const again = await lockstep(['merge', shardDirs[0]!, shardDirs[0]!, '--out', join(dir, 'bad')]);
  t.equal(again.code, 2, 'a shard twice is refused');
  t.match(again.stderr, /is also in/);
  const withWhole = await lockstep(['merge', shared.dir, shardDirs[1]!, '--out', join(dir, 'bad')]);
  if (parts[1]!.cells.length) {
    t.equal(withWhole.code, 2, 'whole run + a shard overlap');
    t.match(withWhole.stderr, /is also in/);
  }
  const other = join(dir, 'other');
  const o = await lockstep(['run', ...KERNEL_FLAGS, '--kernels', 'host', '--scenarios', 'overage', '--shard', '1/1', '--out', other, '--quiet']);
  t.equal(o.code, 0, o.stderr);
  const diffMatrix = await lockstep(['merge', shardDirs[0]!, other, '--out', join(dir, 'bad')]);
  t.equal(diffMatrix.code, 2);
  t.match(diffMatrix.stderr, /different matrix.*kernels differing: debian-6\.1\.190; scenarios differing: shared-counter, remmap, sysctl-lowered, cpu-offline/);
});
