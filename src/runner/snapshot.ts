// Saved guests (issue 29): a guest booted to its reproducer's "ready" line
// (harness/PROTOCOL.md, "Waiting for the script") and saved by QEMU
// migration, so each group restores it in a fraction of a boot instead of
// booting. A restored guest starts from the same freshly booted state every
// time, so even uid 0's per-user record is fresh for every group.
//
// Cache layout, under <cacheDir>/snapshots/<slot>/ where the slot is one
// kernel image at one arch and CPU count:
//   <key>.json                       what the snapshot is (SnapshotMeta)
//   <key>-<sha256[0:16]>.vmstate     QEMU's migration stream
// The key hashes everything the saved state depends on (SnapshotKeyParts):
// when any part changes the key does, and storing the new one drops the
// slot's others. Every entry is checked before use: a damaged, truncated or
// missing file is dropped and the guest is booted (and saved) again.

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { sha256File } from '../kernels/obtain/files.ts';
import { ConfigError } from '../util/errors.ts';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';

/** What the snapshot cache may hold by default, bytes (16 GiB; the default matrix's 80 snapshots take 6 GB). */
export const SNAPSHOT_BUDGET_BYTES = 16 * 2 ** 30;

/**
 * The snapshot cache's budget from $LOCKSTEP_SNAPSHOT_GB (GiB, a number > 0),
 * else SNAPSHOT_BUDGET_BYTES. Throws ConfigError naming the variable.
 */
export function snapshotBudget(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.LOCKSTEP_SNAPSHOT_GB;
  if (v === undefined || v.trim() === '') return SNAPSHOT_BUDGET_BYTES;
  const gb = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(gb > 0)) throw new ConfigError('environment', 'LOCKSTEP_SNAPSHOT_GB', `${JSON.stringify(v)} is not a size in GiB`, 'give a number of GiB above 0 (e.g. LOCKSTEP_SNAPSHOT_GB=8), or unset it for 16; `run --no-snapshot` saves none');
  return Math.floor(gb * 2 ** 30);
}

/** Bump when the layout or the guest's wait protocol changes: every older snapshot is then stale. */
export const SNAPSHOT_FORMAT = 1;

/** What a saved guest's state depends on; the same parts give the same key. */
export interface SnapshotKeyParts {
  /** QEMU's version line (src/runner/qemu.ts qemuVersion) */
  emulator: string;
  /** QEMU's argv without the binary, with the per-boot paths (kernel, initrd, sockets) replaced by "<...>" */
  argv: string[];
  /** sha256 of the kernel image QEMU boots */
  kernelSha256: string;
  /** sha256 of the initramfs as booted: base image (busybox, reproducer, init), the kernel's modules, the wait arguments */
  initrdSha256: string;
}

/** The cache entry's description (<key>.json). */
export interface SnapshotMeta {
  format: number;
  key: string;
  parts: SnapshotKeyParts;
  /** the state file's name in the slot */
  file: string;
  sha256: string;
  bytes: number;
  created_at: string;
  /** the guest's console from boot to the ready line: the boot log a restored guest's console does not repeat */
  boot_console: string;
  /**
   * The state file's inode, size, mtime and ctime when its sha256 was last
   * checked: while they are unchanged the file is not hashed again (the
   * default matrix's 80 snapshots are 6 GB, 18 s of hashing per run). Any
   * write to the file changes its ctime, so a changed file is always hashed.
   */
  checked_stat?: FileStamp;
}

/** What identifies a file's content without reading it: inode, size, mtime and ctime (ns, as strings). */
export interface FileStamp {
  ino: string;
  size: number;
  mtime_ns: string;
  ctime_ns: string;
}

/** The stamp of `path` now. Throws when it cannot be stat'ed. */
export async function fileStamp(path: string): Promise<FileStamp> {
  const st = await stat(path, { bigint: true });
  return { ino: String(st.ino), size: Number(st.size), mtime_ns: String(st.mtimeNs), ctime_ns: String(st.ctimeNs) };
}

const sameStamp = (a: FileStamp | undefined, b: FileStamp | null): boolean =>
  !!a && !!b && a.ino === b.ino && a.size === b.size && a.mtime_ns === b.mtime_ns && a.ctime_ns === b.ctime_ns;

/** A usable snapshot: its meta and the state file's path. */
export interface Snapshot {
  meta: SnapshotMeta;
  path: string;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The key of `parts` (hex sha256 of their canonical JSON and the format). Pure. */
export function snapshotKey(parts: SnapshotKeyParts): string {
  return sha256(JSON.stringify({ format: SNAPSHOT_FORMAT, emulator: parts.emulator, argv: parts.argv, kernel: parts.kernelSha256, initrd: parts.initrdSha256 }));
}

/** The slot of `parts`: one kernel image at one CPU count (`-smp`) on one emulator binary's arch. Pure. */
export function snapshotSlot(parts: SnapshotKeyParts): string {
  const smp = parts.argv[parts.argv.indexOf('-smp') + 1] ?? '?';
  return sha256(`${parts.kernelSha256} ${parts.argv[parts.argv.indexOf('-machine') + 1] ?? '?'} ${smp}`).slice(0, 16);
}

/**
 * `argv` with the paths that change from boot to boot (the values of
 * -kernel and -initrd, socket paths in -chardev/-qmp) replaced by
 * placeholders, so two boots of the same guest give the same key. Pure.
 */
export function keyArgv(argv: readonly string[]): string[] {
  return argv.map((a, k) => {
    const flag = argv[k - 1];
    if (flag === '-kernel' || flag === '-initrd') return `<${flag.slice(1)}>`;
    return a.replace(/path=[^,]*/g, 'path=<socket>').replace(/^unix:[^,]*/, 'unix:<socket>');
  });
}

function isMeta(m: unknown): m is SnapshotMeta {
  const o = m as Partial<SnapshotMeta> | null;
  return !!o && o.format === SNAPSHOT_FORMAT && typeof o.key === 'string' && typeof o.file === 'string' && /^[0-9a-f]{64}-[0-9a-f]{16}\.vmstate$/.test(o.file)
    && typeof o.sha256 === 'string' && typeof o.bytes === 'number' && typeof o.boot_console === 'string';
}

/**
 * The snapshots of one cache directory. Checks each entry once per process
 * (sha256 of the whole file against its meta) and remembers the verdict;
 * stores new ones atomically (the meta, written last, is the commit point).
 */
export class SnapshotStore {
  private readonly checked = new Map<string, Promise<boolean>>();

  /** `budgetBytes`: what the cache may hold; saving beyond it drops the least recently used snapshots */
  constructor(readonly cacheDir: string, private readonly budgetBytes = SNAPSHOT_BUDGET_BYTES) {}

  /** The slot directory of `parts` (created by `newStateFile`). */
  slotDir(parts: SnapshotKeyParts): string {
    return join(this.cacheDir, 'snapshots', snapshotSlot(parts));
  }

  /**
   * The verified snapshot of `parts`, or null with why (none yet, or one that
   * was damaged, truncated or of another key: then it is removed). Never throws.
   */
  async lookup(parts: SnapshotKeyParts): Promise<{ snapshot: Snapshot | null; why: string }> {
    const key = snapshotKey(parts);
    const dir = this.slotDir(parts);
    const metaPath = join(dir, `${key}.json`);
    let meta: unknown;
    try { meta = JSON.parse(await readFile(metaPath, 'utf8')); } catch (e) {
      return { snapshot: null, why: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no snapshot yet' : `unreadable ${metaPath}: dropped` };
    }
    if (!isMeta(meta) || meta.key !== key) { await this.drop(parts); return { snapshot: null, why: `${metaPath} is not a snapshot of this key: dropped` }; }
    const path = join(dir, meta.file);
    if (!this.checked.has(path)) this.checked.set(path, this.check(meta, metaPath, path));
    if (!(await this.checked.get(path))) {
      this.checked.delete(path);
      await this.drop(parts);
      return { snapshot: null, why: `${path} does not match its sha256 (damaged or truncated): dropped` };
    }
    // its meta's mtime says when it was last used (prune drops the least recently used)
    await utimes(metaPath, new Date(), new Date()).catch(() => {});
    return { snapshot: { meta, path }, why: 'verified' };
  }

  /** Does the state file at `path` hold what `meta` says? Hashed unless its stamp is the one recorded at the last check; a good hash records the new stamp. */
  private async check(meta: SnapshotMeta, metaPath: string, path: string): Promise<boolean> {
    const now = await fileStamp(path).catch(() => null);
    if (!now || now.size !== meta.bytes) return false;
    if (sameStamp(meta.checked_stat, now)) return true;
    // the size was compared above: the hash decides the content
    if ((await sha256File(path).catch(() => null)) !== meta.sha256) return false;
    await writeFileAtomic(metaPath, JSON.stringify({ ...meta, checked_stat: now }, null, 1) + '\n').catch(() => {});
    return true;
  }

  /** A fresh path in `parts`' slot for a save to write (the directory is made). */
  async newStateFile(parts: SnapshotKeyParts): Promise<string> {
    const dir = this.slotDir(parts);
    await mkdir(dir, { recursive: true });
    return join(dir, `.saving-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  }

  /**
   * Commit the state file `tmp` (sha256 and bytes as saveVm measured them)
   * as the snapshot of `parts`, and drop every other entry of its slot
   * (their keys are stale). Throws on a write error (the caller keeps
   * running without a snapshot).
   */
  async commit(parts: SnapshotKeyParts, tmp: string, saved: { sha256: string; bytes: number }, bootConsole: string): Promise<Snapshot> {
    const key = snapshotKey(parts);
    const dir = this.slotDir(parts);
    const file = `${key}-${saved.sha256.slice(0, 16)}.vmstate`;
    await rename(tmp, join(dir, file));
    // saveVm hashed the stream as it wrote it: the file as renamed is that content
    const meta: SnapshotMeta = { format: SNAPSHOT_FORMAT, key, parts, file, sha256: saved.sha256, bytes: saved.bytes, created_at: new Date().toISOString(), boot_console: bootConsole, checked_stat: await fileStamp(join(dir, file)) };
    await writeFileAtomic(join(dir, `${key}.json`), JSON.stringify(meta, null, 1) + '\n');
    this.checked.set(join(dir, file), Promise.resolve(true));
    for (const name of await readdir(dir)) {
      if (name === file || name === `${key}.json` || name.startsWith('.saving-')) continue;
      await rm(join(dir, name), { force: true });
    }
    await this.prune(join(dir, `${key}.json`));
    return { meta, path: join(dir, file) };
  }

  /** Drop the least recently used snapshots (by their meta's mtime) until the cache fits its budget; never `keep` (a meta path). Never throws. */
  private async prune(keep: string): Promise<void> {
    const root = join(this.cacheDir, 'snapshots');
    const entries: { meta: string; files: string[]; bytes: number; used: number }[] = [];
    for (const slot of await readdir(root).catch(() => [] as string[])) {
      const names = await readdir(join(root, slot)).catch(() => [] as string[]);
      for (const m of names.filter((n) => n.endsWith('.json'))) {
        const key = m.slice(0, -'.json'.length);
        const files = names.filter((n) => n.startsWith(key)).map((n) => join(root, slot, n));
        const sts = await Promise.all(files.map((f) => stat(f).catch(() => null)));
        const used = sts[files.indexOf(join(root, slot, m))]?.mtimeMs ?? 0;
        entries.push({ meta: join(root, slot, m), files, bytes: sts.reduce((a, x) => a + (x?.size ?? 0), 0), used });
      }
    }
    let total = entries.reduce((a, e) => a + e.bytes, 0);
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.budgetBytes) break;
      if (e.meta === keep) continue;
      for (const f of e.files) await rm(f, { force: true }).catch(() => {});
      total -= e.bytes;
    }
  }

  /** Remove `parts`' snapshot (its meta and state files). Never throws. */
  async drop(parts: SnapshotKeyParts): Promise<void> {
    const key = snapshotKey(parts);
    const dir = this.slotDir(parts);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names) if (n.startsWith(key)) await rm(join(dir, n), { force: true }).catch(() => {});
  }
}
