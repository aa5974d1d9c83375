// Kernels built from source: the spec fields and pure helpers, then real
// builds of the 6.1 base and its variant patches (cached under the default
// cache, so reruns only verify hashes), booted through the matrix with the
// measured behaviour asserted, a "path" tree the test makes, a fragment the
// tree cannot honour, a corrupt cache entry and a build killed half-way.
// Tier: unit (its subtests moved unchanged from test/build.test.ts; the rest is in test/integration/build.test.ts).

import t from 'tap';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureKernel } from '../../src/kernels/artifact.ts';
import { artifactKey, missingOptions, parseDotConfig, parseFragment, patchedFiles, treeKey } from '../../src/kernels/obtain/source/recipe.ts';
import { builtinSpecs, builtinSpecsDir, parseSpec, type SourceSpec } from '../../src/kernels/spec.ts';
import { ConfigError } from '../../src/util/errors.ts';

// A cold base build takes 10-30 min on a busy 2-core machine.
t.setTimeout(150 * 60_000);

const F = '/nowhere/specs.json';
const K = builtinSpecsDir();
const catchAsync = async (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);
const exists = (p: string) => access(p).then(() => true, () => false);

t.test('source spec fields', async (t) => {
  const s = parseSpec({ id: 'v', kind: 'source', version: '6.1.192', source: { debian_package: 'linux-source-6.1' }, patches: ['patches/a.patch', '/abs/b.patch'], expect: 'V2/shared' }, F) as SourceSpec;
  t.match(s, { kind: 'source', source: { type: 'debian', package: 'linux-source-6.1' }, patches: ['/nowhere/patches/a.patch', '/abs/b.patch'] }, 'patches resolve against the spec file');
  t.equal(s.config, join(K, 'config/lockstep-guest.config'), 'default fragment from kernels/config');
  t.equal(s.aux_only, undefined);
  const p = parseSpec({ id: 'p', kind: 'source', version: '5.3.8', source: { path: '/srv/linux-5.3.8/' }, config: '/abs/frag.config', aux_only: true }, F) as SourceSpec;
  t.match(p, { source: { type: 'path', path: '/srv/linux-5.3.8' }, config: '/abs/frag.config', patches: [], aux_only: true });
  t.match(parseSpec({ id: 'g', kind: 'source', version: '5.3', source: { git: 'https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git', ref: 'v5.3.8' } }, F), { source: { type: 'git', ref: 'v5.3.8' } });
  t.match(parseSpec({ id: 'z', kind: 'source', version: '5.3', source: { tarball: 'https://cdn.kernel.org/linux-5.3.8.tar.xz', sha256: 'AB'.repeat(32) } }, F), { source: { type: 'tarball', sha256: 'ab'.repeat(32) } });

  const bad: [string, object, string][] = [
    ['no tree', { source: {} }, 'source'],
    ['two trees', { source: { path: '/a', debian_package: 'linux-source-6.1' } }, 'source'],
    ['relative path', { source: { path: 'linux' } }, 'source.path'],
    ['unknown source key', { source: { debian_package: 'linux-source-6.1', branch: 'x' } }, 'source.branch'],
    ['not a linux-source package', { source: { debian_package: 'linux-image-6.1' } }, 'source.debian_package'],
    ['git without ref', { source: { git: 'https://example.org/linux.git' } }, 'source.ref'],
    ['tarball without sha256', { source: { tarball: 'https://example.org/l.tar.xz' } }, 'source.sha256'],
    ['patches not an array', { source: { debian_package: 'linux-source-6.1' }, patches: 'a.patch' }, 'patches'],
    ['patch with ..', { source: { debian_package: 'linux-source-6.1' }, patches: ['../a.patch'] }, 'patches[0]'],
    ['patches on a path tree', { source: { path: '/srv/linux' }, patches: ['/a.patch'] }, 'patches'],
    ['aux_only not boolean', { source: { debian_package: 'linux-source-6.1' }, aux_only: 'yes' }, 'aux_only'],
    ['unknown field', { source: { debian_package: 'linux-source-6.1' }, patch: [] }, 'patch'],
  ];
  for (const [name, over, field] of bad) {
    let err: unknown = null;
    try {
      parseSpec({ id: 'x', kind: 'source', version: '6.1', ...over }, F);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError && err.field === field, `${name}: ConfigError on ${field} (got ${(err as Error | null)?.message})`);
  }
  const rel = catchAsync(Promise.resolve().then(() => parseSpec({ id: 'x', kind: 'source', version: '6.1', source: { debian_package: 'linux-source-6.1' }, patches: ['a.patch'] }, 'command line')));
  t.ok((await rel) instanceof ConfigError, 'a relative patch needs a spec file to resolve against');
});

t.test('built-in variants: explicit logic, upstream commit named, none AUX-only any more', async (t) => {
  const specs = (await builtinSpecs()).filter((s): s is SourceSpec => s.kind === 'source');
  const want: Record<string, [string, string | null]> = {
    'pre-fix': ['V0/shared', 'd44248a41337'], 'fix-1': ['V1/shared', 'd44248a41337'], 'fix-1a': ['V1a/shared', '5e6c3c7b1ec2'], 'fix-1b': ['V1b/shared', '36b3db03b474'],
    'fix-4': ['V2/shared', 'c4b75479741c'], 'fix-5': ['V3/shared', '003461559ef7'], 'current-6.1': ['V3/perf', '003461559ef7'], 'remmap-charge': ['V4/perf', '0c8a4e4139ad'],
  };
  for (const [id, [label, commit]] of Object.entries(want)) {
    const s = specs.find((x) => x.id === id);
    t.ok(s, `${id} is a built-in spec`);
    if (!s) continue;
    t.equal(s.expect.mode === 'label' ? `${s.expect.accounting}/${s.expect.counter}` : s.expect.mode, label, `${id} declares ${label}`);
    t.match(s.description ?? '', commit!, `${id} names ${commit}`);
    t.equal(Boolean(s.aux_only), false, `${id}: built and run (the lockstep_aux PMU measures AUX unmapping)`);
    for (const p of s.patches) t.ok(await exists(p), `${id}: ${p} exists`);
  }
});

t.test('fragments, .config checks, patch file lists, keys', async (t) => {
  const err = (f: string, field: string, problem: string, fix: string) => new ConfigError(f, field, problem, fix);
  const frag = parseFragment('# comment\nCONFIG_A=y\nCONFIG_N=64\n# CONFIG_B is not set\nCONFIG_S="x y"\n', 'f', err);
  t.strictSame(frag.map((f) => [f.option, f.value]), [['CONFIG_A', 'y'], ['CONFIG_N', '64'], ['CONFIG_B', null], ['CONFIG_S', '"x y"']]);
  t.throws(() => parseFragment('CONFIG_A=y\nCONFIG_A=n\n', 'f', err), ConfigError, 'an option twice');
  t.throws(() => parseFragment('A=y\n', 'f', err), ConfigError, 'not a kconfig line');
  const dot = parseDotConfig('CONFIG_A=y\nCONFIG_N=32\nCONFIG_B=y\n# CONFIG_S is not set\n');
  t.strictSame(missingOptions(frag, dot), ['CONFIG_N=64 (got: 32)', 'CONFIG_B is not set (got: y)', 'CONFIG_S="x y" (got: not set)']);
  t.strictSame(missingOptions(frag.slice(0, 1), dot), []);

  t.strictSame(patchedFiles('text\n--- a/kernel/events/core.c\n+++ b/kernel/events/core.c\n@@ -1 +1 @@\n--- a/x\n+++ b/new/file.c\n'), ['kernel/events/core.c', 'new/file.c', 'x']);
  t.strictSame(patchedFiles('--- /dev/null\n+++ b/added.c\n'), ['added.c']);
  t.throws(() => patchedFiles('--- a/../etc/passwd\n+++ b/../etc/passwd\n'), /unsafe/);

  const base = { source: 'debian:linux-source-6.1=6.1.192-2', fragment: 'CONFIG_A=y\n', patches: [] as string[], compiler: 'gcc 12.2.0' };
  const keys = new Set([artifactKey(base), artifactKey({ ...base, patches: ['p'] }), artifactKey({ ...base, patches: ['q'] }), artifactKey({ ...base, patches: ['p', 'q'] }), artifactKey({ ...base, patches: ['q', 'p'] }), artifactKey({ ...base, compiler: 'gcc 13' }), artifactKey({ ...base, fragment: 'CONFIG_A=n\n' })]);
  t.equal(keys.size, 7, 'every input (and the patch order) changes the artifact key');
  t.equal(treeKey(base), treeKey({ ...base, patches: ['p'] }), 'variants of one base share one tree');
  t.not(treeKey(base), treeKey({ ...base, fragment: 'CONFIG_A=n\n' }), 'a new fragment is a new tree');
});

t.test('sources that cannot be had here say how to provide them locally', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'lockstep-build-cfg-'));
  t.teardown(() => rm(cache, { recursive: true, force: true }));
  const opts = { cacheDir: cache, log: () => {} };
  const cases: [object, string][] = [
    [{ git: 'https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git', ref: 'v5.3.8' }, 'source.git'],
    [{ tarball: 'https://cdn.kernel.org/pub/linux/kernel/v5.x/linux-5.3.8.tar.xz', sha256: '0'.repeat(64) }, 'source.tarball'],
    [{ debian_package: 'linux-source-4.19' }, 'source.debian_package'],
    [{ path: '/nonexistent/linux-5.3' }, 'source.path'],
  ];
  for (const [source, field] of cases) {
    const e = await catchAsync(ensureKernel(parseSpec({ id: 'x', kind: 'source', version: '5.3.8', source }, F), opts));
    t.ok(e instanceof ConfigError && e.field === field, `${field}: ConfigError (got ${(e as Error | null)?.message})`);
    t.match((e as Error).message, /"path"|apt-get install/, 'the fix says how to provide the tree locally');
  }
  t.same(await readdir(join(cache, 'kernels', 'source')).catch(() => []), [], 'nothing was left in the cache');
});

// ───────────────────────────── real builds ─────────────────────────────

/**
 * `dir`: the base tree `baseSrc` (without its _build) with `patch` applied,
 * committed (dates fixed in `env`) and tagged v6.1.192-fix4. Made once: a
 * marker names the base tree and the patch text it was made from, and a dir
 * whose marker differs (or is missing: a half-made copy) is made again.
 */