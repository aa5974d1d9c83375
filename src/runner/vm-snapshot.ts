// One QEMU group through a saved guest (issue 29): restore the snapshot of
// this kernel, CPU count and initramfs when the cache has a good one, else
// boot, save the guest at its ready line and run on. A snapshot that does
// not restore is an infrastructure failure: it is dropped and the group
// boots (and saves a new one), so it never becomes a verdict.

import { rm } from 'node:fs/promises';
import { sha256File, sha256FileOnce } from '../kernels/obtain/files.ts';
import type { VmSnapshotUse } from '../results/schema.ts';
import { boot, type BootRequest, type BootResult, qemuArgs } from './qemu.ts';
import { keyArgv, type SnapshotKeyParts, snapshotKey, type SnapshotStore } from './snapshot.ts';

/** A group's boot through a snapshot: QEMU's result, the console to keep and judge (the saved boot log first when restored), and the snapshot used. */
export interface SnapshotBoot {
  r: BootResult;
  console: string;
  snapshot: VmSnapshotUse | null;
}

/** Saves under way in this process, by key: a group whose snapshot another group is saving waits for it and restores. */
const saving = new Map<string, Promise<void>>();

/** The line a restored guest's console starts with, after the saved boot log. */
export const restoredMarker = (sha256: string): string => `[lockstep: guest restored from snapshot ${sha256.slice(0, 16)}]\n`;

/**
 * Run boot request `b` (its initrd waits for the script: --script-from-out)
 * with `script`, restoring or saving a snapshot in `store`. `emulator` is
 * QEMU's version line (part of the key). `log` gets one line when a
 * snapshot is dropped or cannot be saved. Never throws: a kernel image that
 * cannot be read boots without a snapshot and fails as QEMU says.
 */
export async function bootViaSnapshot(store: SnapshotStore, b: BootRequest, script: string, emulator: string, log: (m: string) => void): Promise<SnapshotBoot> {
  let parts: SnapshotKeyParts;
  try {
    parts = {
      emulator, argv: keyArgv(qemuArgs(b, '<socket>')),
      kernelSha256: await sha256FileOnce(b.vmlinuz), initrdSha256: await sha256File(b.initrd),
    };
  } catch {
    // an image that cannot be read: QEMU says so, as a BOOT_FAIL, as without snapshots
    const r = await boot({ ...b, script });
    return { r, console: r.console, snapshot: null };
  }
  const key = snapshotKey(parts);
  await saving.get(key);
  const found = await store.lookup(parts);
  if (found.snapshot) {
    const { meta, path } = found.snapshot;
    const r = await boot({ ...b, script, restoreFrom: path });
    const tookScript = r.firstResultMs !== null || r.status === 'timeout' || r.status === 'aborted';
    if (!r.restoreError && tookScript) return { r, console: meta.boot_console + restoredMarker(meta.sha256) + r.console, snapshot: { how: 'restored', key, sha256: meta.sha256 } };
    log(`snapshot ${meta.sha256.slice(0, 16)} did not restore (${r.restoreError ?? `QEMU exited ${r.exitCode}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`}): dropped, booting instead`);
    await store.drop(parts);
  } else if (found.why !== 'no snapshot yet') {
    log(`snapshot: ${found.why}; booting instead`);
  }
  let done!: () => void;
  saving.set(key, new Promise<void>((res) => { done = res; }));
  try {
    const tmp = await store.newStateFile(parts);
    const r = await boot({ ...b, script, saveTo: tmp });
    if (!r.saved) {
      await rm(tmp, { force: true });
      if (r.saveError) log(`snapshot not saved: ${r.saveError}`);
      return { r, console: r.console, snapshot: null };
    }
    try {
      const s = await store.commit(parts, tmp, r.saved, r.bootConsole ?? '');
      return { r, console: r.console, snapshot: { how: 'saved', key, sha256: s.meta.sha256 } };
    } catch (e) {
      await rm(tmp, { force: true });
      log(`snapshot not kept: ${(e as Error).message}`);
      return { r, console: r.console, snapshot: null };
    }
  } finally {
    saving.delete(key);
    done();
  }
}
