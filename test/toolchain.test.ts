// Old trees: the compiler and build-fix backport tables (pure), the fragment
// options a release lacks (left out) and unknown names (kept: they fail the
// build), the SKIP reason they give, and the backport
// applied to a copy of a real objtool source (never to the original file,
// even through a hard link). No build, no boot: runs without the heavy lock.

import t from 'tap';
import { link, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import semver from 'semver';
import { backportsDir, toolchainFor } from '../src/kernels/obtain/source/inputs.ts';
import { patchedFiles, treeKey } from '../src/kernels/obtain/source/recipe.ts';
import { applyBackports, effectiveFragment, treeKconfigSymbols } from '../src/kernels/obtain/source/tree.ts';
import {
  BACKPORT_TABLE, backportsFor, vmOffer, nrCpusOf, COMPILER_TABLE, compilerFor, kconfigSymbols, kernelVersion, splitByTree,
} from '../src/kernels/obtain/source/toolchain.ts';
import { parseFragment } from '../src/kernels/obtain/source/recipe.ts';
import { builtinScenarios, compileScenario, scenarioNeeds } from '../src/scenario/load.ts';
import type { CompiledScenario } from '../src/scenario/ops.ts';
import { skipReason } from '../src/scenario/skip.ts';

t.test('the compiler by version: gcc-11 before v5.15, the default gcc after', async (t) => {
  t.equal(compilerFor('5.3.1').cc, 'gcc-11');
  t.equal(compilerFor('5.5-rc5').cc, 'gcc-11', 'an -rc version is read as its release');
  t.equal(compilerFor('5.10.223').cc, 'gcc-11');
  t.equal(compilerFor('4.19.103').cc, 'gcc-11');
  t.equal(compilerFor('5.15.0').cc, 'gcc');
  t.equal(compilerFor('6.1.192').cc, 'gcc', 'the 6.1 builds keep their compiler (and their cache keys)');
  t.equal(COMPILER_TABLE.at(-1)!.range, '*', 'the last row catches every version');
  t.throws(() => compilerFor('banana'), RangeError);
  t.equal(kernelVersion('5.5.0-rc5'), '5.5.0');
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
