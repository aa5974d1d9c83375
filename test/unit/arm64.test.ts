// arm64 guests and page sizes (#19): the qemu-system-aarch64 command line,
// the hvc0 modules of a Debian arm64 kernel, the page size a spec implies,
// the arm64 userland checks; then one run of real arm64 kernels under TCG:
// Debian bookworm cloud-arm64 (4 KiB pages), Debian trixie arm64-16k
// (16 KiB), and the pre-fix / current-6.1 stand-ins cross-built with 64 KiB
// pages. The same profiler workload (128-page rings) is refused at 64 KiB
// pages and accepted at 4 and 16; the incident, sized in bytes, refuses call
// 5 on the pre-fix stand-in at 64 KiB pages. Heavy: run under the lock.
// Tier: unit (its subtests moved unchanged from test/arm64.test.ts; the rest is in test/integration/arm64.test.ts).

import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuArgs, type BootRequest } from '../../src/runner/qemu.ts';
import { hvcModules, modulesArchive } from '../../src/kernels/obtain/guest-modules.ts';
import { parseSpec, specPageKb } from '../../src/kernels/spec.ts';
import { ensureBaseImage } from '../../src/image/initramfs.ts';
import { ensureImage } from '../../src/kernels/obtain/image.ts';
import { isArm64ImageData } from '../../src/kernels/obtain/files.ts';
import { gzipSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import { cpioList } from '../../src/util/cpio.ts';
import { pageSizeMismatch } from '../../src/matrix/cells.ts';
import { builtinScenarios, compileAtPageSize } from '../../src/scenario/load.ts';
import { ConfigError, MissingDependencyError } from '../../src/util/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-arm64-'));

t.test('the arm64 QEMU command line: virt, GICv3, PL011 console, results on a virtio console', (t) => {
  const r: BootRequest = { arch: 'arm64', vmlinuz: '/k/Image', initrd: '/k/initrd', cpus: 36, memMb: 1024, accel: 'tcg', timeoutMs: 1000, workDir: '/w' };
  const a = qemuArgs(r, '/w/s');
  const after = (k: string): string => a[a.indexOf(k) + 1] ?? '';
  t.equal(after('-machine'), 'virt,gic-version=3', 'GICv3: GICv2 stops at 8 CPUs');
  t.match(after('-cpu'), /^max/);
  t.equal(after('-smp'), '36');
  t.match(after('-append'), /console=ttyAMA0/);
  t.match(after('-append'), /lockstep\.out=hvc0/, 'init.sh writes results to hvc0');
  t.ok(a.includes('virtio-serial-device') && a.includes('virtconsole,chardev=res'), 'a virtio console on the results socket');
  const x = qemuArgs({ ...r, arch: undefined }, '/w/s');
  t.equal(x[x.indexOf('-machine') + 1], 'pc', 'x86_64 unchanged');
  t.match(x[x.indexOf('-append') + 1], /console=ttyS0/);
  t.notMatch(x[x.indexOf('-append') + 1], /lockstep\.out=/);
  t.end();
});

t.test('hvc0 modules: what a Debian arm64 config builds as modules, in load order', (t) => {
  const bookworm = 'CONFIG_VIRTIO=m\nCONFIG_VIRTIO_MMIO=m\nCONFIG_VIRTIO_CONSOLE=m\n';
  t.strictSame(hvcModules(bookworm).map((m) => m.name), ['virtio', 'virtio_ring', 'virtio_mmio', 'virtio_console']);
  const trixie = 'CONFIG_VIRTIO=y\nCONFIG_VIRTIO_MMIO=m\nCONFIG_VIRTIO_CONSOLE=y\n';
  t.strictSame(hvcModules(trixie).map((m) => m.name), ['virtio_mmio']);
  t.strictSame(hvcModules('CONFIG_VIRTIO=y\nCONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_CONSOLE=y\n'), [], 'built in: nothing to load');
  t.throws(() => hvcModules('CONFIG_VIRTIO=y\nCONFIG_VIRTIO_MMIO=y\n'), /CONFIG_VIRTIO_CONSOLE is not set/);
  const files = cpioList(modulesArchive([{ name: 'virtio_mmio', data: Buffer.from('ko') }]));
  t.ok(files.some((f) => f.name === 'lib/modules/virtio_mmio.ko' && f.data.toString() === 'ko'));
  t.equal(files.find((f) => f.name === 'lockstep/modules')?.data.toString(), 'virtio_mmio\n', 'init.sh reads the order from lockstep/modules');
  t.end();
});

t.test('the page size a spec implies, and the spec fields', (t) => {
  const spec = (o: Record<string, unknown>) => parseSpec({ id: 'k', expect: 'auto', ...o }, 'k.json');
  t.equal(specPageKb(spec({ kind: 'source', version: '6.1.192', source: { debian_package: 'linux-source-6.1' }, arch: 'arm64', page_size_kb: 64 })), 64);
  t.equal(specPageKb(spec({ kind: 'debian-image', arch: 'arm64', suite: 'trixie', package: 'linux-image-6.12.117+deb13-arm64-16k-unsigned', version: '6.12.117' })), 16);
  t.equal(specPageKb(spec({ kind: 'debian-image', arch: 'arm64', suite: 'bookworm', package: 'linux-image-6.1.0-50-cloud-arm64-unsigned', version: '6.1.176' })), 4);
  const err = (o: Record<string, unknown>): ConfigError | null => { try { spec(o); return null; } catch (e) { return e as ConfigError; } };
  t.match(err({ kind: 'source', version: '6.1.192', source: { debian_package: 'linux-source-6.1' }, page_size_kb: 64 }), { field: 'page_size_kb', problem: /64 kB pages do not exist on x86_64/ });
  t.match(err({ kind: 'source', version: '6.1.192', source: { debian_package: 'linux-source-6.1' }, arch: 'arm64', page_size_kb: 8 }), { field: 'page_size_kb', fix: /4, 16, 64/ });
  t.match(err({ kind: 'image', version: '6.1.1', path: '/k', arch: 'riscv' }), { field: 'arch', problem: /unknown arch "riscv"/ });
  t.match(err({ kind: 'image', version: '6.1.1', path: '/k', arch: 'arm64', runtime: 'virtme' }), { field: 'runtime', problem: /x86_64 guests only/ });
  t.end();
});

t.test('the arm64 userland: busybox and reproducer must be static arm64 ELF', async (t) => {
  const saved = process.env.LOCKSTEP_BUSYBOX_ARM64;
  process.env.LOCKSTEP_BUSYBOX_ARM64 = '/bin/busybox';
  t.teardown(() => { if (saved === undefined) delete process.env.LOCKSTEP_BUSYBOX_ARM64; else process.env.LOCKSTEP_BUSYBOX_ARM64 = saved; });
  const e = await ensureBaseImage(dir, { arch: 'arm64' }).then(() => null, (x: unknown) => x);
  t.ok(e instanceof MissingDependencyError, 'an x86_64 busybox is refused for an arm64 guest');
  t.match(String((e as Error).message), /busybox-static for arm64 \(\/bin\/busybox is ELF for machine 62, not 183\)/);
  t.match(String((e as Error).message), /LOCKSTEP_BUSYBOX_ARM64=\/bin\/busybox must name a static arm64 busybox/);
});

t.test('an "image" spec of arch arm64 takes an arm64 Image, and says so when given a bzImage', async (t) => {
  const img = Buffer.alloc(0x1000);
  img.write('ARM\x64', 0x38, 'latin1');
  img.write('Linux version 6.1.192-test (lockstep@lockstep) #1 SMP\n', 0x200, 'latin1');
  const f = join(dir, 'Image');
  writeFileSync(f, img);
  t.ok(isArm64ImageData(img) && isArm64ImageData(gzipSync(img)), 'plain and gzipped (a Debian arm64 vmlinuz) Image');
  t.notOk(isArm64ImageData(Buffer.alloc(0x1000)), 'no magic: not an Image');
  const arm = parseSpec({ id: 'a', kind: 'image', version: '6.1.192', path: f, arch: 'arm64' }, 'a.json');
  const a = await ensureImage(arm as never, { cacheDir: dir, log: () => {} });
  t.equal(a.release, '6.1.192-test', 'the release from the Image\'s banner');
  const x86 = parseSpec({ id: 'x', kind: 'image', version: '6.1.192', path: f }, 'x.json');
  const e = await ensureImage(x86 as never, { cacheDir: dir, log: () => {} }).then(() => null, (x: unknown) => x as ConfigError);
  t.match(e, { field: 'path', problem: /is not an x86 bzImage/, fix: /"arch": "arm64"/ });
});

t.test('a scenario compiled for one page size and run on another is not judged', (t) => {
  const by = (id: string) => builtinScenarios().find((x) => x.id === id)!.compiled;
  const incident = by('incident');
  t.match(pageSizeMismatch(incident, 64), /guest's pages are 64 kB, and incident was compiled for 4 kB pages/);
  t.equal(pageSizeMismatch(compileAtPageSize(incident, 64), 64), null);
  t.equal(pageSizeMismatch(by('remmap'), 64), null, 'sizes in pages only: the same ops at any page size');
  t.equal(pageSizeMismatch(incident, undefined), null, 'an older reproducer says nothing');
  t.end();
});
