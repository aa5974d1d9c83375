// The guest image: the cpio writer round-trips, the base image carries
// busybox, the reproducer and init, and a per-boot archive appends cleanly.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { dir as tmpDir } from 'tmp-promise';
import { cpioArchive, cpioList } from '../../src/util/cpio.ts';
import { ensureBaseImage, scriptArchive, writeBootInitrd } from '../../src/image/initramfs.ts';

t.test('cpio newc round trip, device node and reproducible bytes', async (t) => {
  const entries = [
    { name: 'bin', kind: 'dir' as const, perm: 0o755 },
    { name: 'dev/console', kind: 'chardev' as const, perm: 0o600, rdev: { major: 5, minor: 1 } },
    { name: 'bin/x', kind: 'file' as const, perm: 0o755, data: Buffer.from('hello\n') },
  ];
  const a = cpioArchive(entries);
  t.same(a, cpioArchive(entries), 'same input, same bytes');
  t.equal(a.length % 4, 0);
  const back = cpioList(a);
  t.same(back.map((e) => e.name), ['bin', 'dev/console', 'bin/x']);
  t.equal(back[1].mode, 0o020600, 'character device with its permissions');
  t.equal(back[2].data.toString(), 'hello\n');
  t.throws(() => cpioArchive([{ name: '../etc/passwd', kind: 'file', perm: 0o644 }]), /bad entry name/);
  t.throws(() => cpioArchive([{ name: '/abs', kind: 'file', perm: 0o644 }]), /bad entry name/);
});

t.test('base image holds init, static busybox and the reproducer; boot initrd appends the script 4-byte aligned', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const base = await ensureBaseImage(d.path);
  const again = await ensureBaseImage(d.path);
  t.equal(again.path, base.path, 'cached by content');
  const names = cpioList(gunzipSync(await readFile(base.path))).map((e) => e.name);
  for (const n of ['init', 'bin/busybox', 'lockstep/repro', 'dev/console']) t.ok(names.includes(n), n);
  t.ok(base.bytes < 8 * 1024 * 1024, `compressed image is ${(base.bytes / 1e6).toFixed(1)} MB`);
  const out = `${d.path}/initrd`;
  await writeBootInitrd(base, 'begin x uid=10000 cpus=2 mlock_kb=516 paranoid=2 rlimit_kb=64 cap_ipc_lock=0\nprobe\nend\n', ['--op-timeout', '5'], out);
  const all = await readFile(out);
  const baseLen = (await readFile(base.path)).length;
  const start = baseLen + ((4 - (baseLen % 4)) % 4);
  t.equal(all.subarray(baseLen, start).every((b) => b === 0), true, 'zero padding only');
  const script = cpioList(all.subarray(start));
  t.same(script.map((e) => e.name), ['lockstep', 'lockstep/script.ops', 'lockstep/args']);
  t.match(script[1].data.toString(), /^begin x uid=10000/);
  t.equal(script[2].data.toString(), '--op-timeout 5\n');
  t.throws(() => scriptArchive('x', ['$(reboot)']), /bad reproducer argument/);
});

t.test('a damaged cached image is rebuilt, never used', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const base = await ensureBaseImage(d.path);
  const good = await readFile(base.path);
  const bad = Buffer.from(good);
  for (let k = 0; k < 64; k++) bad[Math.floor(bad.length / 2) + k] ^= 0xff;
  await writeFile(base.path, bad);
  const again = await ensureBaseImage(d.path);
  t.equal(again.path, base.path);
  t.same(await readFile(again.path), good, 'rebuilt to the same bytes');
  await writeFile(base.path, good.subarray(0, 1000));
  await ensureBaseImage(d.path);
  t.same(await readFile(base.path), good, 'a truncated image is rebuilt too');
});
