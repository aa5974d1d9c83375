// Kernels built from source: the spec fields and pure helpers, then real
// builds of the 6.1 base and its variant patches (cached under the default
// cache, so reruns only verify hashes), booted through the matrix with the
// measured behaviour asserted, a "path" tree the test makes, a fragment the
// tree cannot honour, a corrupt cache entry and a build killed half-way.
// Tier: integration (its subtests moved unchanged from test/build.test.ts; the rest is in test/unit/build.test.ts).

import t from 'tap';
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { sha256File } from '../../src/kernels/obtain/files.ts';
import { BuildError } from '../../src/kernels/obtain/source/build.ts';
import { debianTarball, prepareInputs } from '../../src/kernels/obtain/source/inputs.ts';
import { builtinSpecs, builtinSpecsDir, parseSpec, type KernelSpec, type SourceSpec } from '../../src/kernels/spec.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import type { CellResult, Results } from '../../src/results/schema.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';

// A cold base build takes 10-30 min on a busy 2-core machine.
t.setTimeout(150 * 60_000);

const K = builtinSpecsDir();
const catchAsync = async (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);
const exists = (p: string) => access(p).then(() => true, () => false);

// ───────────────────────────── real builds ─────────────────────────────

const scenarios = builtinScenarios().map((l) => l.compiled);
const pick = (ids: string[]) => ids.map((id) => scenarios.find((s) => s.id === id)!);
const cellOf = (r: Results, k: string, s: string): CellResult => {
  const c = r.cells.find((x) => x.kernel === k && x.scenario === s);
  if (!c) throw new Error(`no cell ${k} x ${s}`);
  return c;
};
const probes = (c: CellResult) => c.measured.filter((m) => m.op === 'probe').map((m) => m.headroom);
const cache = defaultCacheDir();

async function matrix(kernels: KernelSpec[], ids: string[]): Promise<Results> {
  const outDir = await mkdtemp(join(tmpdir(), 'lockstep-build-run-'));
  t.teardown(() => rm(outDir, { recursive: true, force: true }));
  const logs: string[] = [];
  const r = await runMatrix({
    kernels, scenarios: pick(ids), outDir, cacheDir: cache, jobs: 1, opTimeoutS: 120,
    log: (l) => { logs.push(l); t.setTimeout(150 * 60_000); }, rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  return r;
}

const hasBase = await exists(debianTarball('linux-source-6.1'));

t.test('variants built from linux-source-6.1 boot and behave as declared', { skip: hasBase ? false : 'linux-source-6.1 is not installed (bash .ci/setup.sh installs it)' }, async (t) => {
  const all = await builtinSpecs();
  const ids = ['current-6.1', 'remmap-charge', 'fix-4', 'fix-5'];
  const r = await matrix(ids.map((id) => all.find((s) => s.id === id)!), ['remmap', 'sysctl-lowered']);
  for (const k of ids) {
    for (const s of ['remmap', 'sysctl-lowered']) {
      const c = cellOf(r, k, s);
      t.equal(c.verdict, 'MATCH', `${k} x ${s}: ${c.reason ?? c.verdict}`);
      t.match(c.kernel_release ?? '', /^6\.1\.192-ls[0-9a-f]{8}$/, `${k} booted its own build (${c.kernel_release})`);
    }
  }

  // remmap: 29 extra mappings of a 3-page buffer leak 87 pages of U under V4, none under V3.
  const cur = probes(cellOf(r, 'current-6.1', 'remmap'));
  const leak = probes(cellOf(r, 'remmap-charge', 'remmap'));
  t.equal(cur[0], leak[0], 'same headroom before the first map');
  t.equal(cur[0]! - cur[2]!, 0, 'current-6.1: the unmap gives everything back');
  t.equal(leak[0]! - leak[2]!, 29 * 3, 'remmap-charge: U keeps 29 x 3 pages after the last unmap');

  // sysctl-lowered: V2 pins the whole overage once, V3 ue per map.
  const pins = (k: string) => cellOf(r, k, 'sysctl-lowered').measured.filter((m) => m.op === 'map').map((m) => m.vmpin_kb / 4);
  const v2 = pins('fix-4');
  const v3 = pins('fix-5');
  t.equal(v3[0], 3, 'fix-5 pins ue = 3 pages on the first map past the lowered limit');
  t.ok(v2[0]! > 3, `fix-4 pins more than ue at once (${v2[0]} pages): the "simple again" jump`);
  t.not(JSON.stringify(v2), JSON.stringify(v3), 'sysctl-lowered tells fix-4 from fix-5');

  // A second ensure is a verified cache hit.
  const again = await ensureKernel(all.find((s) => s.id === 'fix-4')!, { cacheDir: cache, log: () => {} });
  t.equal(again.cached, true, 'fix-4 comes from the cache the second time');
  t.equal(await sha256File(again.vmlinuz!), again.sha256, 'its bzImage hash was verified');
  for (const f of ['bzImage', 'config', 'build.log', 'meta.json', 'reproduce.sh', 'inputs/config.fragment']) t.ok(await exists(join(String(again.meta.cache_entry), f)), `artifact holds ${f}`);
  t.match(await readFile(join(String(again.meta.cache_entry), 'config'), 'utf8'), /^CONFIG_PERF_EVENTS=y$/m);
});

t.test('a local kernel tree (path, no patches) builds and boots the same way', { skip: hasBase ? false : 'linux-source-6.1 is not installed' }, async (t) => {
  // The tree: the unpacked base with the fix-4 patch applied, a git repository as well (for the
  // URL + ref spec below). It is kept beside the cache with fixed commit dates, so its identity
  // (HEAD, diff, untracked files) and both specs' cache keys are the same every run: the first
  // run builds both, later runs boot what it built (the cached: true assertions say which).
  const all = await builtinSpecs();
  const fix4 = all.find((s) => s.id === 'fix-4') as SourceSpec;
  const inp = await prepareInputs(fix4);
  const baseSrc = join(cache, 'kernels', 'source-trees', inp.tree, 'src');
  t.ok(await exists(join(baseSrc, 'Makefile')), 'the base tree was unpacked by the previous test');
  const work = await mkdtemp(join(tmpdir(), 'lockstep-tree-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' };
  const tree = await fix4Tree(join(cache, 'test-fixtures', 'linux-6.1-fix4'), baseSrc, fix4.patches[0]!, env);
  const specFile = join(work, 'tree.json');
  const spec = parseSpec({ id: 'tree-fix4', kind: 'source', version: '6.1.192', source: { path: tree }, expect: 'V2/shared' }, specFile);
  const r = await matrix([spec], ['sysctl-lowered']);
  const c = cellOf(r, 'tree-fix4', 'sysctl-lowered');
  t.equal(c.verdict, 'MATCH', `path tree as V2/shared: ${c.reason ?? 'MATCH'}`);
  t.ok(c.measured.filter((m) => m.op === 'map')[0]!.vmpin_kb / 4 > 3, 'and it jumps like fix-4');
  const a = await ensureKernel(spec, { cacheDir: cache, log: () => {} });
  t.equal(a.cached, true, 'the tree\'s kernel is cached under its content identity');

  // A fragment option the tree cannot honour fails the build, naming it.
  const frag = join(work, 'bad.config');
  await writeFile(frag, `${await readFile(fix4.config, 'utf8')}CONFIG_LOCKSTEP_NO_SUCH_OPTION=y\nCONFIG_KVM=y\n# CONFIG_X86_64 is not set\n`);
  const bad = parseSpec({ id: 'tree-bad', kind: 'source', version: '6.1.192', source: { path: tree }, config: frag, expect: 'V2/shared' }, specFile);
  const badInp = await prepareInputs(bad as SourceSpec);
  t.teardown(() => rm(join(cache, 'kernels', 'source-trees', badInp.tree), { recursive: true, force: true }));
  const e = await catchAsync(ensureKernel(bad, { cacheDir: cache, log: () => {} }));
  t.ok(e instanceof BuildError, `BuildError (got ${(e as Error | null)?.message?.slice(0, 200)})`);
  t.match((e as Error).message, /CONFIG_LOCKSTEP_NO_SUCH_OPTION=y \(got: not set\)/);
  t.match((e as Error).message, /CONFIG_KVM=y \(got: not set\)/, 'an option whose dependency is missing');
  t.match((e as Error).message, /CONFIG_X86_64 is not set \(got: y\)/, 'an option that cannot be unset');
  // ... and in a matrix it is a BUILD_FAIL cell carrying the reason, not a crash.
  const rb = await matrix([bad], ['baseline']);
  t.match(cellOf(rb, 'tree-bad', 'baseline'), { verdict: 'BUILD_FAIL', reason: /CONFIG_LOCKSTEP_NO_SUCH_OPTION/ });

  // The same tree as a git repository, given by URL + ref: fetched (one ref, shallow) into the cache.
  const gspec = parseSpec({ id: 'git-fix4', kind: 'source', version: '6.1.192', source: { git: `file://${tree}`, ref: 'v6.1.192-fix4' }, expect: 'V2/shared' }, specFile) as SourceSpec;
  const gInp = await prepareInputs(gspec, { cacheDir: cache });
  t.match(gInp.resolved.identity, /^git:file:\/\/.*@[0-9a-f]{40}$/, 'a git tree is identified by its commit');
  const rg = await matrix([gspec], ['sysctl-lowered']);
  t.equal(cellOf(rg, 'git-fix4', 'sysctl-lowered').verdict, 'MATCH', `git tree as V2/shared: ${cellOf(rg, 'git-fix4', 'sysctl-lowered').reason ?? 'MATCH'}`);
  t.equal((await ensureKernel(gspec, { cacheDir: cache, log: () => {} })).cached, true, 'the git tree\'s kernel is cached under its commit');
});

/**
 * `dir`: the base tree `baseSrc` (without its _build) with `patch` applied,
 * committed (dates fixed in `env`) and tagged v6.1.192-fix4. Made once: a
 * marker names the base tree and the patch text it was made from, and a dir
 * whose marker differs (or is missing: a half-made copy) is made again.
 */
async function fix4Tree(dir: string, baseSrc: string, patch: string, env: NodeJS.ProcessEnv): Promise<string> {
  const marker = join(dir, '.git', 'lockstep-fixture.json');
  const want = JSON.stringify({ base: baseSrc, patch: await readFile(patch, 'utf8') });
  if ((await readFile(marker, 'utf8').catch(() => null)) === want) return dir;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const top = (await readdir(baseSrc)).filter((n) => n !== '_build');
  await run('cp', ['-a', ...top.map((n) => join(baseSrc, n)), dir]);
  await run('patch', ['-p1', '--batch', '-i', patch], dir);
  await run('git', ['init', '-q', dir], undefined, env);
  // -f: Debian's top-level .gitignore ignores everything at the top of the tree
  await run('git', ['-C', dir, 'add', '-A', '-f'], undefined, env);
  await run('git', ['-C', dir, 'commit', '-q', '-m', 'linux 6.1.192 + fix-4'], undefined, env);
  await run('git', ['-C', dir, 'tag', 'v6.1.192-fix4'], undefined, env);
  await writeFile(marker, want);
  return dir;
}

t.test('a corrupt artifact is rebuilt; a killed build leaves no artifact and a clean tree', { skip: hasBase ? false : 'linux-source-6.1 is not installed' }, async (t) => {
  const all = await builtinSpecs();
  const base = all.find((s) => s.id === 'remmap-charge') as SourceSpec;
  const good = await ensureKernel(base, { cacheDir: cache, log: () => {} });
  const entry = String(good.meta.cache_entry);
  await writeFile(join(entry, 'bzImage'), 'not a kernel');
  const logs: string[] = [];
  const rebuilt = await ensureKernel(base, { cacheDir: cache, log: (m) => logs.push(m) });
  t.equal(rebuilt.cached, false, 'rebuilt');
  t.match(logs.join('\n'), /corrupt \(bzImage sha256/, 'the hash check caught it');
  t.equal(await sha256File(rebuilt.vmlinuz!), rebuilt.sha256);

  // A one-off variant (a comment in core.c), built by a child process that is killed mid-make.
  const work = await mkdtemp(join(tmpdir(), 'lockstep-kill-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const patch = join(work, 'comment.patch');
  const core = await readFile(join(cache, 'kernels', 'source-trees', (await prepareInputs(base)).tree, 'src', 'kernel/events/core.c'), 'utf8');
  const line = core.split('\n').findIndex((l) => l.startsWith('static int perf_mmap(struct file *file')) + 1;
  await writeFile(patch, `--- a/kernel/events/core.c\n+++ b/kernel/events/core.c\n@@ -${line},1 +${line},2 @@\n+/* lockstep test ${Date.now()} */\n static int perf_mmap(struct file *file, struct vm_area_struct *vma)\n`);
  const specFile = join(work, 'kill.json');
  await writeFile(specFile, JSON.stringify({ id: 'kill-me', kind: 'source', version: '6.1.192', source: { debian_package: 'linux-source-6.1' }, config: base.config, patches: [patch], expect: 'V3/perf' }));
  const spec = parseSpec(JSON.parse(await readFile(specFile, 'utf8')), specFile) as SourceSpec;
  const inp = await prepareInputs(spec);
  const entryK = join(cache, 'kernels', 'source', inp.key);
  const treeRoot = join(cache, 'kernels', 'source-trees', inp.tree);
  const child = spawn(process.execPath, ['bin/lockstep.mjs', 'kernels', 'build', '--kernel-spec', specFile, 'kill-me'], { cwd: join(K, '..'), stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const closed = new Promise((r) => child.on('close', r));
  let err = '';
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/make bzImage -j/.test(err)) resolve();
    });
    child.on('close', () => resolve());
  });
  t.ok(await exists(join(treeRoot, 'patched.json')), 'the patch was applied when the build was killed');
  process.kill(-child.pid!, 'SIGKILL');
  await closed;
  t.notOk(await exists(entryK), 'no artifact from the killed build');
  t.match(await readFile(join(treeRoot, 'src', 'kernel/events/core.c'), 'utf8'), /lockstep test/, 'the tree is left patched by the kill');
  // The next build on this tree restores the pristine file first.
  const k2 = await ensureKernel(spec, { cacheDir: cache, log: () => {} });
  t.equal(k2.cached, false, 'the killed variant builds fine afterwards');
  t.notOk(await exists(join(treeRoot, 'patched.json')), 'and leaves the tree clean');
  t.notMatch(await readFile(join(treeRoot, 'src', 'kernel/events/core.c'), 'utf8'), /lockstep test/, 'pristine core.c is back');
  await rm(entryK, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd?: string, env?: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let e = '';
    c.stderr.on('data', (d: Buffer) => (e += d.toString()));
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${e}`))));
  });
}
