// Old trees: the compiler and build-fix backport tables (pure), the fragment
// options a release lacks (left out) and unknown names (kept: they fail the
// build), the SKIP reason they give, and the backport
// applied to a copy of a real objtool source (never to the original file,
// even through a hard link). arm64 builds: the cross compiler, make's
// arguments, the page-size line, the keys, the arm64 fragment, image
// checks. No build, no boot: runs without the heavy lock.

import t from 'tap';
import { link, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import semver from 'semver';
import { imageBanner, isArm64Image, isBzImage, isKernelImage } from '../../src/kernels/obtain/files.ts';
import { ARM64_PAGE_OPTIONS, KBUILD_TARGETS, pageSizeLines, pageSizeOptionsIn, withPageSize } from '../../src/kernels/obtain/source/arch.ts';
import { reproducerBuild } from '../../src/kernels/obtain/source/build.ts';
import { backportsDir, debianTarball, prepareInputs, toolchainFor } from '../../src/kernels/obtain/source/inputs.ts';
import { makeArgs, treePathsAt } from '../../src/kernels/obtain/source/make.ts';
import { ARM64_COMPILER_TABLE } from '../../src/kernels/obtain/source/toolchain.ts';
import { builtinSpecs, builtinSpecsDir, parseSpec, type SourceSpec } from '../../src/kernels/spec.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { artifactKey, patchedFiles, treeKey } from '../../src/kernels/obtain/source/recipe.ts';
import { applyBackports, effectiveFragment, treeKconfigSymbols } from '../../src/kernels/obtain/source/tree.ts';
import {
  BACKPORT_TABLE, backportsFor, vmOffer, nrCpusOf, COMPILER_TABLE, compilerFor, kconfigSymbols, splitByTree,
} from '../../src/kernels/obtain/source/toolchain.ts';
import { parseFragment } from '../../src/kernels/obtain/source/recipe.ts';
import { builtinScenarios, compileScenario, scenarioNeeds } from '../../src/scenario/load.ts';
import type { CompiledScenario } from '../../src/scenario/ops.ts';
import { skipReason } from '../../src/scenario/skip.ts';

t.test('the compiler by version: gcc-11 before v5.15, the default gcc after', async (t) => {
  t.equal(compilerFor('5.3.1').cc, 'gcc-11');
  t.equal(compilerFor('5.5-rc5').cc, 'gcc-11', 'an -rc version is read as its release');
  t.equal(compilerFor('5.10.223').cc, 'gcc-11');
  t.equal(compilerFor('4.19.103').cc, 'gcc-11');
  t.equal(compilerFor('5.15.0').cc, 'gcc');
  t.equal(compilerFor('6.1.192').cc, 'gcc', 'the 6.1 builds keep their compiler (and their cache keys)');
  t.equal(COMPILER_TABLE.at(-1)!.range, '*', 'the last row catches every version');
  t.throws(() => compilerFor('banana'), RangeError);
  t.equal(compilerFor('5.14.0-rc7').cc, 'gcc-11', '5.14-rc7 builds like 5.14, not 5.15');
  t.throws(() => compilerFor('99999999999999999999.1'), /beyond/, 'a version beyond any kernel is refused, not read as 1.0.0');
  t.throws(() => backportsFor('100.1.0'), /major 100 is beyond any real kernel/);
});

t.test('the backport table: each row cites an upstream commit and has its patch file', async (t) => {
  for (const r of BACKPORT_TABLE) {
    t.match(r.commit, /^[0-9a-f]{12}$/, `${r.id}: a 12-digit commit id`);
    t.ok(r.file.includes(r.commit), `${r.id}: the file name carries the commit id`);
    t.ok(semver.validRange(r.range), `${r.id}: ${r.range} is a range`);
    const text = await readFile(join(backportsDir(), r.file), 'utf8');
    t.ok(text.includes(r.commit), `${r.file} cites ${r.commit} in its header`);
    t.ok(patchedFiles(text).length > 0, `${r.file} is a unified diff`);
    t.ok(patchedFiles(text).includes(r.symptom.file), `${r.id}: the symptom is in a file the patch changes`);
    t.ok(text.split('\n').some((l) => l.startsWith('-') && l.includes(r.symptom.text)), `${r.id}: the patch removes the symptom`);
  }
  t.same(backportsFor('5.3.1').map((r) => r.commit), ['1d489151e9f9'], 'v5.3 gets the objtool fix');
  t.same(backportsFor('5.10.223').map((r) => r.commit), ['1d489151e9f9'], '5.10.y is in the range (the tree may carry it already)');
  t.same(backportsFor('5.11.0'), [], 'v5.11 has the fix');
  t.same(backportsFor('6.1.192'), []);
  const tc = await toolchainFor('5.4.0', 'spec.json', 'version');
  t.equal(tc.cc.cc, 'gcc-11');
  t.equal(tc.backports.length, 1);
  await t.rejects(toolchainFor('x', 'spec.json', 'version'), { name: 'ConfigError', message: /spec\.json: version/ });
});

t.test('tree keys: a tree without backports keeps its old key; backports change it', async (t) => {
  const k = { source: 'debian:linux-source-6.1=6.1.192-2:sha256:x', fragment: 'CONFIG_A=y\n', patches: [], compiler: 'gcc 12' };
  t.equal(treeKey({ ...k, backports: [] }), treeKey(k));
  t.not(treeKey({ ...k, backports: ['--- a/x\n+++ b/x\n'] }), treeKey(k));
  t.not(treeKey({ ...k, compiler: 'gcc-11 (Debian 11.3.0-12) 11.3.0' }), treeKey(k), 'the compiler is in the key');
});

t.test('fragment options a release does not define are left out and reported', async (t) => {
  t.same(kconfigSymbols('config IO_URING\n\tbool "x"\nmenuconfig NET\n  config  PERF_EVENTS \n#config NOT\n'), ['IO_URING', 'NET', 'PERF_EVENTS']);
  t.same(splitByTree(['CONFIG_IO_URING', 'CONFIG_NET'], new Set(['NET'])), { leftOut: ['CONFIG_IO_URING'], unknown: [] }, 'an option of a later release is left out');
  t.same(splitByTree(['CONFIG_PERF_EVENT', 'CONFIG_NET'], new Set(['NET', 'PERF_EVENTS'])), { leftOut: [], unknown: ['CONFIG_PERF_EVENT'] }, 'a typo is not: it fails the build, named');
  const frag = 'CONFIG_NET=y\nCONFIG_IO_URING=y\n# CONFIG_X is not set\n';
  const eff = effectiveFragment(frag, ['CONFIG_IO_URING', 'CONFIG_X']);
  t.same(parseFragment(eff, 'f', () => new Error('bad') as never).map((l) => l.option), ['CONFIG_NET']);
  t.match(eff, /# lockstep: CONFIG_IO_URING left out: this release has no such option/);
  t.equal(effectiveFragment(frag, []), frag);
  // the tree's own Kconfig files are what counts
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-kconfig-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'init'));
  await mkdir(join(dir, '_build'));
  await writeFile(join(dir, 'init', 'Kconfig'), 'config BPF_SYSCALL\n\tbool\n');
  await writeFile(join(dir, '_build', 'Kconfig'), 'config IO_URING\n');
  t.same([...(await treeKconfigSymbols(dir))], ['BPF_SYSCALL'], 'the object dir is not read');
});

t.test('a scenario whose ballast needs a missing option SKIPs with the reason', async (t) => {
  const scen = new Map(builtinScenarios().map((s) => [s.id, s.compiled]));
  const uring = [...scen.values()].find((s) => s.ops.some((o) => o.op === 'ballast' && o.via === 'io_uring'))!;
  t.ok(uring, 'a built-in scenario uses an io_uring ballast');
  const lacks = (s: CompiledScenario, absent: string[], nrCpus: number | null = null) => skipReason(scenarioNeeds(s), vmOffer(absent, nrCpus));
  t.match(lacks(uring, ['CONFIG_IO_URING']), /needs io_uring: the kernel's build lacks CONFIG_IO_URING \(added in v5\.1 by 2b188cc1bb85/);
  t.equal(lacks(uring, []), null);
  t.equal(lacks(scen.get('overage')!, ['CONFIG_IO_URING']), null, 'a scenario without that ballast runs');
  // the worker's own io_uring registration (op uring) needs io_uring too, not only the ballast
  const worker = compileScenario({ id: 'w', description: 'worker uring', cpus: 2, ops: [{ op: 'uring', pages: 4 }] }, 'w.json');
  t.match(lacks(worker, ['CONFIG_IO_URING']), /needs io_uring: .*CONFIG_IO_URING/);
  const bpf = compileScenario({ id: 'b', description: 'bpf', cpus: 2, ops: [{ op: 'ballast', via: 'bpf', pages: 4 }] }, 'b.json');
  t.match(lacks(bpf, ['CONFIG_BPF_SYSCALL']), /needs bpf: .*CONFIG_BPF_SYSCALL/);
  // the build's CONFIG_NR_CPUS caps the CPUs a VM can have
  t.equal(nrCpusOf('CONFIG_SMP=y\nCONFIG_NR_CPUS=64\n'), 64);
  t.equal(lacks(scen.get('incident')!, [], 64), null, 'incident (36 CPUs) fits NR_CPUS=64');
  const big = compileScenario({ id: 'big', description: 'many CPUs', cpus: 128, ops: [{ op: 'probe' }] }, 'big.json');
  t.equal(lacks(big, [], 64), 'needs 128 online CPUs, the kernel is built with CONFIG_NR_CPUS=64');
});

t.test('the objtool backport: applied to lockstep\'s copy only, detected when already there', async (t) => {
  const row = BACKPORT_TABLE.find((r) => r.commit === '1d489151e9f9')!;
  const text = await readFile(join(backportsDir(), row.file), 'utf8');
  // Rebuild the pre-fix elf.c fragment from the patch itself (its "-" and context lines).
  const hunk = text.slice(text.indexOf('@@'));
  const before = hunk.split('\n').slice(1).filter((l) => !l.startsWith('+')).map((l) => l.slice(1)).join('\n');
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-backport-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const user = join(dir, 'user', 'tools', 'objtool');
  const mine = join(dir, 'copy', 'tools', 'objtool');
  await mkdir(user, { recursive: true });
  await mkdir(mine, { recursive: true });
  // 213 filler lines put the hunk where its header says (line 214)
  const orig = `${'/* filler */\n'.repeat(213)}${before}`;
  await writeFile(join(user, 'elf.c'), orig);
  await link(join(user, 'elf.c'), join(mine, 'elf.c')); // lockstep's copy is hard-linked, as `cp -al` makes it
  const chosen = [{ row, path: join(backportsDir(), row.file), text }];
  const r = await applyBackports(join(dir, 'copy'), chosen, 'test tree');
  t.same(r.map((x) => x.status), ['applied']);
  t.match(await readFile(join(mine, 'elf.c'), 'utf8'), /return 0;/);
  t.equal(await readFile(join(user, 'elf.c'), 'utf8'), orig, 'the user\'s file is untouched');
  t.equal((await stat(join(user, 'elf.c'))).nlink, 1, 'the hard link was broken before patching');
  // Our patched copy no longer has the unfixed code: not patched twice.
  const again = await applyBackports(join(dir, 'copy'), chosen, 'test tree');
  t.same(again.map((x) => x.status), ['present']);
  // A stable tree with the fix in its own wording (5.10.223): present, left alone.
  const stable = `${'/* filler */\n'.repeat(213)}\tif (!symtab) {\n\t\t/* A missing symbol table is actually possible */\n\t\treturn 0;\n\t}\n`;
  await writeFile(join(mine, 'elf.c'), stable);
  t.same((await applyBackports(join(dir, 'copy'), chosen, 'test tree')).map((x) => x.status), ['present']);
  t.equal(await readFile(join(mine, 'elf.c'), 'utf8'), stable);
  // The unfixed code where the patch does not fit: a build error naming the backport.
  await writeFile(join(mine, 'elf.c'), 'int f(void) {\n\tWARN("missing symbol table");\n}\n');
  await t.rejects(applyBackports(join(dir, 'copy'), chosen, 'test tree'), { name: 'BuildError', message: /1d489151e9f9.*does not apply to test tree/ });
});

// ───────────────────────────── arm64 guests (#19) ─────────────────────────────

t.test('arm64: the cross compiler, make\'s arguments, no x86 backports', async (t) => {
  const cc = compilerFor('6.1.192', 'arm64');
  t.match(cc, { cc: 'aarch64-linux-gnu-gcc', apt: 'gcc-aarch64-linux-gnu', hostcc: 'gcc', cross: 'aarch64-linux-gnu-' });
  t.equal(compilerFor('5.3.1', 'arm64').cc, 'aarch64-linux-gnu-gcc', 'one cross compiler for every version');
  t.equal(ARM64_COMPILER_TABLE.at(-1)!.range, '*');
  t.equal(compilerFor('5.3.1', 'x86_64').cc, 'gcc-11', 'x86_64 keeps its table');
  t.same(backportsFor('5.3.1', 'arm64'), [], 'the objtool fix is x86-only (arm64 6.1 builds no objtool)');
  t.same(backportsFor('5.3.1').map((r) => r.commit), ['1d489151e9f9']);

  const x86 = treePathsAt('/c/t', compilerFor('6.1.192'), KBUILD_TARGETS.x86_64);
  const jobsArg = makeArgs(x86, '-lsX').at(-1)!;
  t.same(makeArgs(x86, '-lsX'), ['O=_build', 'ARCH=x86_64', 'CC=ccache gcc', 'HOSTCC=gcc', 'LOCALVERSION=-lsX', jobsArg], 'x86_64: the argv it always had (ccache hits survive)');
  const arm = treePathsAt('/c/t', cc, KBUILD_TARGETS.arm64);
  t.same(makeArgs(arm, '-lsX'), ['O=_build', 'ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-', 'CC=ccache aarch64-linux-gnu-gcc', 'HOSTCC=gcc', 'LOCALVERSION=-lsX', jobsArg]);
  t.match(arm, { obj: '/c/t/src/_build', kbuild: { target: 'Image', image: 'arch/arm64/boot/Image', file: 'Image' } });
  const sh = reproducerBuild(arm, '-lsX', [], ['01-a.patch']);
  t.match(sh, /M="make O=_build ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- CC=aarch64-linux-gnu-gcc HOSTCC=gcc LOCALVERSION=-lsX/);
  t.match(sh, /\n\$M Image\nsha256sum _build\/arch\/arm64\/boot\/Image$/);
  t.match(reproducerBuild(x86, '-lsX', []), /CC=gcc HOSTCC=gcc .*\n[^]*\$M bzImage\nsha256sum _build\/arch\/x86\/boot\/bzImage$/);
});

t.test('arm64: the page-size line after the fragment, and the keys per arch and page size', async (t) => {
  t.same(pageSizeLines('arm64', 64), ['CONFIG_ARM64_64K_PAGES=y']);
  t.same(pageSizeLines('arm64', 16), ['CONFIG_ARM64_16K_PAGES=y']);
  t.same(pageSizeLines('arm64', 4), ['CONFIG_ARM64_4K_PAGES=y'], 'arm64 4 kB is stated too (verified like the rest)');
  t.same(pageSizeLines('x86_64', 4), []);
  t.throws(() => pageSizeLines('x86_64', 64), RangeError);
  t.throws(() => pageSizeLines('arm64', 8), RangeError);
  const frag = 'CONFIG_NET=y\n';
  t.equal(withPageSize(frag, 'x86_64', 4), frag, 'x86_64: the fragment as it is (its keys do not change)');
  const f64 = withPageSize('CONFIG_NET=y', 'arm64', 64);
  t.same(parseFragment(f64, 'f', () => new Error('bad') as never).map((l) => [l.option, l.value]), [['CONFIG_NET', 'y'], ['CONFIG_ARM64_64K_PAGES', 'y']], 'the page line is a fragment line (verified after olddefconfig)');
  t.match(f64, /# lockstep: spec "page_size_kb": 64\n/);
  t.same(pageSizeOptionsIn(['CONFIG_NET', 'CONFIG_ARM64_16K_PAGES']), ['CONFIG_ARM64_16K_PAGES']);
  t.same(Object.keys(ARM64_PAGE_OPTIONS).map(Number), [4, 16, 64]);

  const k = { source: 'debian:linux-source-6.1=6.1.192-3:sha256:x', fragment: frag, patches: [], compiler: 'gcc 12' };
  t.equal(treeKey({ ...k, arch: 'x86_64' }), treeKey(k), 'x86_64 explicit = absent');
  t.equal(treeKey(k), treeKey({ ...k, arch: 'x86_64', pageSizeKb: 4 }));
  const arm = (kb: number) => ({ ...k, fragment: withPageSize(frag, 'arm64', kb), arch: 'arm64' as const, pageSizeKb: kb });
  const trees = new Set([treeKey(k), treeKey(arm(4)), treeKey(arm(16)), treeKey(arm(64))]);
  t.equal(trees.size, 4, 'one object tree per arch and page size');
  t.not(treeKey({ ...k, arch: 'arm64', pageSizeKb: 64 }), treeKey({ ...k, arch: 'arm64', pageSizeKb: 16 }), 'the page size is in the key even for the same fragment text');
  t.equal(treeKey(arm(64)), treeKey({ ...arm(64), patches: ['p'] }), 'variants of one arch + page size share a tree (relink)');
  t.not(artifactKey(arm(64)), artifactKey({ ...arm(64), patches: ['p'] }));
});

t.test('arm64: the guest fragment has the x86 guest\'s features, none of its x86 options, and what the virt machine needs', async (t) => {
  const read = async (n: string) => parseFragment(await readFile(join(builtinSpecsDir(), 'config', n), 'utf8'), n, (f, field, problem, fix) => new ConfigError(f, field, problem, fix));
  const x86 = await read('lockstep-guest.config');
  const arm = new Map((await read('lockstep-guest-arm64.config')).map((l) => [l.option, l.value]));
  const x86Only = /^CONFIG_(X86_|ACPI$|PCI$|SERIAL_8250)/;
  for (const l of x86) {
    if (x86Only.test(l.option)) t.notOk(arm.has(l.option), `${l.option}: x86 only, not in the arm64 fragment`);
    else t.equal(arm.get(l.option), l.value, `${l.option}=${l.value} in both`);
  }
  for (const o of ['CONFIG_SERIAL_AMBA_PL011', 'CONFIG_SERIAL_AMBA_PL011_CONSOLE', 'CONFIG_VIRTIO', 'CONFIG_VIRTIO_MMIO', 'CONFIG_VIRTIO_CONSOLE', 'CONFIG_OF', 'CONFIG_ARM_PSCI_FW', 'CONFIG_ARM_GIC', 'CONFIG_ARM_GIC_V3', 'CONFIG_ARM_ARCH_TIMER']) {
    t.equal(arm.get(o), 'y', `${o}=y (built in: hvc0 carries the results before any module loads)`);
  }
  t.same(pageSizeOptionsIn([...arm.keys()]), [], 'the page size is left to "page_size_kb"');
});

t.test('arm64: the built-in 64 kB specs and their inputs', async (t) => {
  const all = await builtinSpecs();
  for (const [id, base] of [['pre-fix-arm64-64k', 'pre-fix'], ['current-6.1-arm64-64k', 'current-6.1']] as const) {
    const s = all.find((x) => x.id === id) as SourceSpec | undefined;
    const b = all.find((x) => x.id === base) as SourceSpec;
    t.ok(s, `${id} is built in`);
    if (!s) continue;
    t.match(s, { kind: 'source', arch: 'arm64', page_size_kb: 64, version: b.version, source: b.source, patches: b.patches, expect: b.expect });
    t.equal(s.config, join(builtinSpecsDir(), 'config/lockstep-guest-arm64.config'));
  }
  const F = '/nowhere/specs.json';
  t.equal((parseSpec({ id: 'a', kind: 'source', arch: 'arm64', version: '6.1.192', source: { debian_package: 'linux-source-6.1' } }, F) as SourceSpec).config,
    join(builtinSpecsDir(), 'config/lockstep-guest-arm64.config'), 'an arm64 spec without "config" gets the arm64 fragment');

  // prepareInputs: hashes the installed tarball, builds nothing
  if (!(await stat(debianTarball('linux-source-6.1')).catch(() => null))) { t.comment('linux-source-6.1 not installed: inputs not checked'); return; }
  const spec = (id: string) => all.find((x) => x.id === id) as SourceSpec;
  const [arm, x86, cur] = await Promise.all([prepareInputs(spec('pre-fix-arm64-64k'), { fetch: false }), prepareInputs(spec('pre-fix'), { fetch: false }), prepareInputs(spec('current-6.1-arm64-64k'), { fetch: false })]);
  t.match(arm, { arch: 'arm64', pageSizeKb: 64, cc: { cc: 'aarch64-linux-gnu-gcc' }, backports: [] });
  t.match(arm.buildFragment, /\nCONFIG_ARM64_64K_PAGES=y\n$/);
  t.equal(arm.keyInputs.fragment, arm.buildFragment, 'the page line is in the keys');
  t.match(x86, { arch: 'x86_64', pageSizeKb: 4 });
  t.equal(x86.buildFragment, x86.fragmentText, 'x86_64: configured with the fragment as it is');
  t.not(arm.tree, x86.tree, 'arm64 and x86_64 builds of one tree never share objects');
  t.equal(arm.tree, cur.tree, 'pre-fix and current-6.1 on arm64 64k share one tree (pre-fix relinks)');
  t.not(arm.key, cur.key);

  // a fragment that sets the page size itself is refused, naming the line
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-arm64-frag-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'f.config'), 'CONFIG_NET=y\nCONFIG_ARM64_4K_PAGES=y\n');
  const bad = parseSpec({ id: 'b', kind: 'source', arch: 'arm64', page_size_kb: 64, version: '6.1.192', source: { debian_package: 'linux-source-6.1' }, config: join(dir, 'f.config') }, join(dir, 'k.json')) as SourceSpec;
  await t.rejects(prepareInputs(bad, { fetch: false }), { name: 'ConfigError', field: 'line 2', message: /CONFIG_ARM64_4K_PAGES.*"page_size_kb"/ });
});

t.test('image checks: x86 bzImage vs arm64 Image headers, the arm64 banner', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-img-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // arm64 Image header (Documentation/arm64/booting.rst): magic "ARM\x64" at 0x38
  const arm = Buffer.alloc(0x40);
  arm.write('ARM\x64', 0x38, 'latin1');
  // the banner straddles the 1 MiB read boundary; an earlier "Linux version %s" format string is skipped
  const pre = Buffer.from('Linux version %s\0');
  const banner = 'Linux version 6.1.192-ls12345678 (lockstep@lockstep) (aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0) #1 SMP\n';
  const pad = Buffer.alloc((1 << 20) - 20 - arm.length - pre.length);
  await writeFile(join(dir, 'Image'), Buffer.concat([arm, pre, pad, Buffer.from(banner, 'latin1'), Buffer.alloc(100)]));
  const x86 = Buffer.alloc(0x210);
  x86.write('HdrS', 0x202, 'latin1');
  await writeFile(join(dir, 'bzImage'), x86);
  await writeFile(join(dir, 'short'), 'x');
  t.equal(await isArm64Image(join(dir, 'Image')), true);
  t.equal(await isBzImage(join(dir, 'Image')), false);
  t.equal(await isKernelImage(join(dir, 'Image'), 'arm64'), true);
  t.equal(await isKernelImage(join(dir, 'Image'), 'x86_64'), false, 'an arm64 Image is not an x86_64 kernel');
  t.equal(await isKernelImage(join(dir, 'bzImage'), 'x86_64'), true);
  t.equal(await isKernelImage(join(dir, 'bzImage'), 'arm64'), false);
  t.equal(await isKernelImage(join(dir, 'short'), 'arm64'), false);
  t.equal(await imageBanner(join(dir, 'Image')), banner.slice('Linux version '.length).trim());
  t.equal(await imageBanner(join(dir, 'bzImage')), null);
});
