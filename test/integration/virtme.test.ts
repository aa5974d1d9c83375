// The virtme runtime (src/runner/virtme.ts) against real vng boots: the same
// Debian kernel booted by lockstep's own QEMU runtime and through virtme-ng
// (one boot each), three discriminating scenarios, must give the same verdicts, EPERM points and VmPin series.
// And a built tree through vng (--kernel DIR). Faults under vng are in
// test/integration/virtme-faults.test.ts.
// Tier: integration (its subtests moved unchanged from test/virtme.test.ts; the rest is in test/unit/virtme.test.ts).

import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { resolveKernelArg, treeKernel } from '../../src/cli/kernel-arg.ts';
import { KBUILD_TARGETS } from '../../src/kernels/obtain/source/arch.ts';
const TREE_BZIMAGE = KBUILD_TARGETS.x86_64.image;
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { virtmeSourceSpec } from '../../src/kernels/obtain/virtme-root.ts';
import { builtinSpecs, parseSpec, type KernelSpec } from '../../src/kernels/spec.ts';
import type { SourceSpec } from '../../src/kernels/types.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import type { CellResult } from '../../src/results/schema.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { cell, lockstep, readResults } from '../lib/faults-util.ts';

const exec = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Real boots: the same Debian generic kernel (the cloud flavour has no 9p) through both runtimes

const PICK = ['baseline', 'remmap', 'rlimit-small'];

t.test('a Debian image and a source kernel: vng and lockstep\'s QEMU boot agree on verdicts, EPERM points and VmPin', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-virtme-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const deb = { kind: 'debian-image', package: 'linux-image-6.1.0-56-amd64-unsigned', version: '6.1.192', package_version: '6.1.192-2', expect: 'auto' };
  // the built-in source kernel, and the same built with vng's options
  const src = (await builtinSpecs()).find((k) => k.id === 'current-6.1')!;
  const kernels = [parseSpec({ id: 'deb-qemu', ...deb }, 'test'), parseSpec({ id: 'deb-vng', ...deb, runtime: 'virtme' }, 'test'), src, { ...src, id: 'current-6.1-vng', runtime: 'virtme' } as KernelSpec];
  const pairs = [['deb-qemu', 'deb-vng'], ['current-6.1', 'current-6.1-vng']] as const;
  const scen = new Map(builtinScenarios().map((s) => [s.id, s.compiled]));
  const scenarios = PICK.map((id) => scen.get(id)!);
  t.ok(scenarios.every((s) => s.cpus === 2), 'one group (one boot) per runtime');
  const r = await runMatrix({
    kernels, scenarios, outDir: dir, cacheDir: defaultCacheDir(), jobs: 1, opTimeoutS: 60, attempts: 1,
    log: (l) => t.comment(l), rerun: () => '',
  });
  const cell = (k: string, s: string): CellResult => r.cells.find((c) => c.kernel === k && c.scenario === s)!;
  for (const [qk, vk] of pairs) for (const s of PICK) {
    const q = cell(qk, s);
    const v = cell(vk, s);
    t.equal(q.verdict, 'MATCH', `${s} under QEMU: ${q.reason ?? ''}`);
    t.equal(v.verdict, q.verdict, `${s}: same verdict through vng (${v.reason ?? ''})`);
    t.equal(v.first_eperm_measured, q.first_eperm_measured, `${s}: same first EPERM (${q.first_eperm_measured})`);
    t.strictSame(v.pinned_measured, q.pinned_measured, `${s}: same VmPin series`);
    t.equal(v.runtime, 'virtme');
    // the source kernel for vng is its own build (vng's options added): same version, its own build id
    t.equal(v.kernel_release?.replace(/-ls[0-9a-f]+$/, ''), q.kernel_release?.replace(/-ls[0-9a-f]+$/, ''), 'the same kernel version ran');
  }
  t.not(cell('deb-qemu', 'rlimit-small').first_eperm_measured, null, 'rlimit-small discriminates: a map is refused');
  const v = cell('deb-vng', 'baseline');
  t.match(v.qemu_version, /^virtme-ng \d+\.\d+ \(QEMU emulator version /, 'provenance: vng and QEMU versions');
  t.equal(v.qemu_argv![0], 'vng');
  t.ok(v.qemu_argv!.includes('--disable-kvm'));
  t.match(v.qemu_argv![v.qemu_argv!.indexOf('--run') + 1], /kernels\/virtme-roots\/linux-image-6\.1\.0-56-amd64-unsigned_6\.1\.192-2\/boot\/vmlinuz-6\.1\.0-56-amd64$/,
    'vng boots the kernel from the tree with its own modules, not the host\'s /lib/modules');
});

t.test('a Debian cloud kernel: every cell SKIPs with vng\'s reason, nothing booted', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-virtme-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kernels = [parseSpec({ id: 'cloud-vng', kind: 'debian-image', package: 'linux-image-6.1.0-56-cloud-amd64-unsigned', version: '6.1.192', package_version: '6.1.192-2', expect: 'auto', runtime: 'virtme' }, 'test')];
  const scen = new Map(builtinScenarios().map((s) => [s.id, s.compiled]));
  const r = await runMatrix({
    kernels, scenarios: [scen.get('baseline')!], outDir: dir, cacheDir: defaultCacheDir(), jobs: 1, opTimeoutS: 60, attempts: 1,
    log: (l) => t.comment(l), rerun: () => '',
  });
  t.equal(r.cells.length, 1);
  t.equal(r.cells[0]!.verdict, 'SKIP');
  t.match(r.cells[0]!.reason, /lacks CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS/);
});

// ---------------------------------------------------------------------------
// `lockstep run --runtime virtme --kernel /path/to/linux`: a built tree

/** A file with just an x86 boot-protocol header: "HdrS" at 0x202, the version string where 0x20e points. */
function fakeBzImage(path: string, version: string): void {
  const b = Buffer.alloc(0x400);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x100, 0x20e);
  b.write(`${version}\0`, 0x300, 'latin1');
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, b);
}

t.test('--kernel DIR: a built tree resolves to its arch/x86/boot/bzImage and its release; a tree with nothing built is refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-tree-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tree = join(dir, 'linux');
  fakeBzImage(join(tree, TREE_BZIMAGE), '6.9.0-rc2-virtme (me@box) #1 SMP');
  // no include/config/kernel.release: the header says
  t.match(resolveKernelArg(tree), { id: 'tree-6.9.0-rc2-virtme', kind: 'image', path: join(tree, 'arch/x86/boot/bzImage'), version: '6.9.0' });
  mkdirSync(join(tree, 'include/config'), { recursive: true });
  writeFileSync(join(tree, 'include/config/kernel.release'), '6.9.1-dirty\n');
  t.match(resolveKernelArg(`${tree}/`), { id: 'tree-6.9.1-dirty', version: '6.9.1' }, 'kernel.release first (make writes it with every build)');
  t.match(treeKernel(tree, tree), { bzImage: join(tree, 'arch/x86/boot/bzImage'), release: '6.9.1-dirty' });
  const empty = join(dir, 'unbuilt');
  mkdirSync(empty);
  writeFileSync(join(empty, 'Makefile'), '');
  t.throws(() => resolveKernelArg(empty), ConfigError);
  t.throws(() => resolveKernelArg(empty), new RegExp(`${empty} is a directory with no built kernel: ${empty}/arch/x86/boot/bzImage is missing \\(built out of tree with make O=BUILD\\? give BUILD\\); build it first \\(make -C ${empty} bzImage, or vng --build in it\\)`));
  const r = await exec(process.execPath, [join(ROOT, 'bin/lockstep.mjs'), 'run', '--runtime', 'virtme', '--kernel', empty, '--scenarios', 'baseline', '--out', join(dir, 'out')])
    .then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
  t.equal(r.code, 2, 'bad input: exit 2');
  t.match(r.stderr, /--kernel.*no built kernel.*make -C .* bzImage, or vng --build/);
});

t.test('a real built tree through vng: `run --runtime virtme --kernel TREE` boots the tree\'s image with its .config, MATCH', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-tree-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // the tree a user gets from `vng --build` (vng's options built in), made of current-6.1's virtme build:
  // what --kernel DIR and vng read of it (bzImage, .config, kernel.release)
  const cacheDir = defaultCacheDir();
  const src = (await builtinSpecs()).find((k) => k.id === 'current-6.1')! as SourceSpec;
  const a = await ensureKernel(await virtmeSourceSpec(src, cacheDir), { cacheDir, log: (l) => t.comment(l) });
  const release = String(a.meta.release);
  const tree = join(dir, 'linux');
  mkdirSync(join(tree, 'arch/x86/boot'), { recursive: true });
  mkdirSync(join(tree, 'include/config'), { recursive: true });
  copyFileSync(a.vmlinuz!, join(tree, TREE_BZIMAGE));
  copyFileSync(join(a.vmlinuz!, '..', 'config'), join(tree, '.config'));
  writeFileSync(join(tree, 'include/config/kernel.release'), `${release}\n`);
  const out = join(dir, 'out');
  const r = await lockstep(['run', '--runtime', 'virtme', '--kernel', tree, '--no-builtin-kernels', '--scenarios', 'baseline', '--out', out, '--quiet', '--attempts', '1']);
  t.equal(r.code, 0, r.stderr);
  const res = readResults(out);
  const c = cell(res, 'baseline', `tree-${release}`)!;
  t.equal(c.verdict, 'MATCH', c.reason ?? '');
  t.equal(c.runtime, 'virtme');
  t.equal(c.kernel_release, release, 'the tree\'s kernel ran');
  const argv = (res.kernels as { provenance: { qemu_argv: string[] } }[])[0]!.provenance.qemu_argv;
  // (provenance writes the temp dir as $TMPDIR)
  t.ok(argv[argv.indexOf('--run') + 1]!.endsWith(`/${basename(dir)}/linux/${TREE_BZIMAGE}`), `vng got the tree's image (and so the tree: its .config beside): ${argv[argv.indexOf('--run') + 1]}`);
});
