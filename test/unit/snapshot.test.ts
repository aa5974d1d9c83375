// Saved guests (src/runner/snapshot.ts): the key changes with every part
// the saved state depends on and with nothing that changes per boot; the
// store keeps one entry per slot, checks each against its sha256 and drops
// a damaged, truncated or foreign one. Real files in a temp dir; the real
// save and restore are in test/integration/snapshot.test.ts.

import t from 'tap';
import { createHash } from 'node:crypto';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir as tmpDir } from 'tmp-promise';
import { qemuArgs } from '../../src/runner/qemu.ts';
import { fileStamp, keyArgv, snapshotBudget, type SnapshotKeyParts, snapshotKey, snapshotSlot, SnapshotStore } from '../../src/runner/snapshot.ts';
import { restoredMarker } from '../../src/runner/vm-snapshot.ts';

const argvOf = (o: { cpus?: number; kernel?: string; initrd?: string; sock?: string; append?: string; mem?: number }): string[] =>
  keyArgv(qemuArgs({ vmlinuz: o.kernel ?? '/a/vmlinuz', initrd: o.initrd ?? '/tmp/x/initrd', cpus: o.cpus ?? 2, memMb: o.mem ?? 1024, accel: 'tcg', timeoutMs: 1, workDir: '/tmp', extraCmdline: o.append }, o.sock ?? '/tmp/x/results.sock'));

const parts = (over: Partial<SnapshotKeyParts> = {}): SnapshotKeyParts => ({
  emulator: 'QEMU emulator version 7.2.19', argv: argvOf({}), kernelSha256: 'a'.repeat(64), initrdSha256: 'b'.repeat(64), ...over,
});

t.test('the key: per-boot paths do not change it, every part of the saved state does', async (t) => {
  t.equal(snapshotKey(parts({ argv: argvOf({ kernel: '/other/dir/vmlinuz', initrd: '/tmp/y/initrd', sock: '/tmp/y/results.sock' }) })), snapshotKey(parts()), 'kernel, initrd and socket paths are placeholders');
  const a = argvOf({});
  t.ok(a.includes('<kernel>') && a.includes('<initrd>') && a.some((w) => w.includes('path=<socket>')), 'placeholders in the key argv');
  const base = snapshotKey(parts());
  const changed: [string, Partial<SnapshotKeyParts>][] = [
    ['QEMU version', { emulator: 'QEMU emulator version 8.2.0' }],
    ['vCPUs', { argv: argvOf({ cpus: 36 }) }],
    ['memory', { argv: argvOf({ mem: 2048 }) }],
    ['kernel command line', { argv: argvOf({ append: 'loglevel=7' }) }],
    ['kernel image', { kernelSha256: 'c'.repeat(64) }],
    ['initramfs (reproducer, modules, arguments)', { initrdSha256: 'd'.repeat(64) }],
  ];
  for (const [what, over] of changed) t.not(snapshotKey(parts(over)), base, `${what} changes the key`);
  t.equal(snapshotSlot(parts({ initrdSha256: 'd'.repeat(64), emulator: 'x' })), snapshotSlot(parts()), 'same kernel and vCPUs: same slot (the newer key replaces the older)');
  t.not(snapshotSlot(parts({ argv: argvOf({ cpus: 36 }) })), snapshotSlot(parts()), 'another vCPU count: its own slot');
});

async function savedFile(store: SnapshotStore, p: SnapshotKeyParts, body: string): Promise<string> {
  const tmp = await store.newStateFile(p);
  await writeFile(tmp, body);
  const s = await store.commit(p, tmp, { sha256: createHash('sha256').update(body).digest('hex'), bytes: Buffer.byteLength(body) }, 'boot log\n');
  return s.path;
}

t.test('the store: commit, verified lookup, a stale key dropped from its slot', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const store = new SnapshotStore(d.path);
  t.same(await store.lookup(parts()).then((l) => [l.snapshot, l.why]), [null, 'no snapshot yet']);
  const path = await savedFile(store, parts(), 'state one');
  const got = await store.lookup(parts());
  t.equal(got.snapshot?.path, path);
  t.equal(got.snapshot?.meta.boot_console, 'boot log\n');
  t.equal(got.why, 'verified');
  // a new QEMU: a new key in the same slot; the old entry goes
  const newer = parts({ emulator: 'QEMU emulator version 9.0.0' });
  await savedFile(store, newer, 'state two');
  const names = await readdir(store.slotDir(parts()));
  t.equal(names.filter((n) => n.startsWith(snapshotKey(parts()))).length, 0, 'the stale key\'s meta and state are gone');
  t.equal(names.length, 2, 'one meta and one state file left');
  t.equal((await store.lookup(parts())).snapshot, null);
  t.ok((await store.lookup(newer)).snapshot);
});

t.test('the store: a damaged, truncated or foreign entry is dropped, never used', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  for (const [what, harm] of [
    ['one flipped byte', async (f: string) => { const b = await readFile(f); b[3] ^= 0xff; await writeFile(f, b); }],
    ['truncated', async (f: string) => { await truncate(f, 4); }],
  ] as const) {
    const store = new SnapshotStore(d.path); // a fresh process: nothing checked yet
    const path = await savedFile(new SnapshotStore(d.path), parts(), `good state ${what}`);
    await harm(path);
    const l = await store.lookup(parts());
    t.equal(l.snapshot, null, `${what}: not used`);
    t.match(l.why, /does not match its sha256/, `${what}: says why`);
    t.same(await readdir(store.slotDir(parts())), [], `${what}: dropped`);
  }
  const store = new SnapshotStore(d.path);
  await savedFile(store, parts(), 'x');
  const meta = join(store.slotDir(parts()), `${snapshotKey(parts())}.json`);
  await writeFile(meta, JSON.stringify({ ...JSON.parse(await readFile(meta, 'utf8')), key: 'f'.repeat(64) }));
  const l = await new SnapshotStore(d.path).lookup(parts());
  t.equal(l.snapshot, null);
  t.match(l.why, /not a snapshot of this key/);
  await writeFile(meta, '{not json');
  t.match((await new SnapshotStore(d.path).lookup(parts())).why, /unreadable/);
});

t.test('a restored console says which snapshot it came from', async (t) => {
  t.equal(restoredMarker('0123456789abcdef0123'), '[lockstep: guest restored from snapshot 0123456789abcdef]\n');
});

t.test('the store: a checked file is not hashed again until it changes', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const store = new SnapshotStore(d.path);
  const path = await savedFile(store, parts(), 'checked state');
  const metaPath = join(store.slotDir(parts()), `${snapshotKey(parts())}.json`);
  const meta = JSON.parse(await readFile(metaPath, 'utf8'));
  t.same(meta.checked_stat, await fileStamp(path), 'the save records the state file\'s stamp');
  // rewritten with the same bytes: a new ctime, so it is hashed again, passes, and the new stamp is recorded
  await new Promise((r) => setTimeout(r, 20));
  await writeFile(path, 'checked state');
  t.ok((await new SnapshotStore(d.path).lookup(parts())).snapshot, 'same content: still good');
  t.same(JSON.parse(await readFile(metaPath, 'utf8')).checked_stat, await fileStamp(path), 'the new stamp recorded');
});

t.test('the store keeps to its budget: the least recently used snapshots go first', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const p = (cpus: number): SnapshotKeyParts => parts({ argv: argvOf({ cpus }) });
  // each entry: a 1000-byte state file and a meta of a few hundred bytes; the budget holds two
  const store = new SnapshotStore(d.path, 2 * 1000 + 2 * 2000);
  const body = 'x'.repeat(1000);
  await savedFile(store, p(2), body);
  await savedFile(store, p(4), body);
  // 2 vCPUs used again: 4 is now the least recently used
  await new Promise((r) => setTimeout(r, 20));
  t.ok((await store.lookup(p(2))).snapshot, 'the 2-vCPU snapshot is used');
  await savedFile(store, p(36), body);
  t.ok((await store.lookup(p(2))).snapshot, 'recently used: kept');
  t.ok((await store.lookup(p(36))).snapshot, 'just saved: kept');
  t.equal((await store.lookup(p(4))).snapshot, null, 'least recently used: dropped');
  const tiny = new SnapshotStore(d.path, 1);
  await savedFile(tiny, p(8), body);
  t.ok((await tiny.lookup(p(8))).snapshot, 'the one just saved stays even over the budget');
});

t.test('$LOCKSTEP_SNAPSHOT_GB: GiB above 0, else a ConfigError naming it', async (t) => {
  t.equal(snapshotBudget({}), 16 * 2 ** 30, 'default 16 GiB');
  t.equal(snapshotBudget({ LOCKSTEP_SNAPSHOT_GB: '2.5' }), 2.5 * 2 ** 30);
  for (const bad of ['0', '-1', 'abc', '1e3', '8 GB']) t.throws(() => snapshotBudget({ LOCKSTEP_SNAPSHOT_GB: bad }), /LOCKSTEP_SNAPSHOT_GB: .* is not a size in GiB/, JSON.stringify(bad));
});
