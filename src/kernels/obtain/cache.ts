// The kernel cache: content-addressed entries, each verified by hash before
// use, filled through a staging directory under a per-entry lock.
//
// Layout, per kind (debian, image, source):
//   <cacheDir>/kernels/<kind>/<key>/{...,meta.json}   an entry
//   <cacheDir>/kernels/<kind>/<key>.lock              held while one process fills <key>
//   <cacheDir>/kernels/<kind>/.tmp-<key>-*            staging and scratch, swept by the next filler
//
// An entry appears by one rename(2) of a complete staging directory, so an
// interrupted fetch or build never leaves a half entry. A miss is filled by
// one process; another one waits on the lock and then uses that result. Only
// lock holders delete a bad entry, so a reader never removes a fresh one.

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { acquireLock } from '../../util/lock.ts';
import { exists, sha256File } from './files.ts';

/** $LOCKSTEP_CACHE, else $XDG_CACHE_HOME/lockstep, else ~/.cache/lockstep. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LOCKSTEP_CACHE) return resolve(env.LOCKSTEP_CACHE);
  // The XDG spec says relative values are to be ignored.
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) return join(env.XDG_CACHE_HOME, 'lockstep');
  return join(homedir(), '.cache', 'lockstep');
}

/** An entry's meta when every file matches its recorded hash, why not, or null when the entry is absent. */
export type Checked<M> = { ok: M } | { bad: string } | null;

/** An entry's meta.json, or null when missing or not JSON. */
export async function readMeta<M>(entry: string): Promise<M | null> {
  try {
    return JSON.parse(await readFile(join(entry, 'meta.json'), 'utf8')) as M;
  } catch {
    return null;
  }
}

/** Write an entry's meta.json (fsync'd before the rename that publishes the entry). */
export async function writeMeta(dir: string, meta: object): Promise<void> {
  await writeFileAtomic(join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
}

/**
 * THE cache-entry check: read meta.json, then hash every file that
 * `hashes(meta)` names (file name -> expected sha256; undefined = must exist,
 * not hashed). `hashes` returns null when the meta lacks what it needs.
 */
export async function checkEntry<M>(entry: string, hashes: (meta: M) => Record<string, string | undefined> | null): Promise<Checked<M>> {
  if (!(await exists(entry))) return null;
  const meta = await readMeta<M>(entry);
  const want = meta === null ? null : hashes(meta);
  if (meta === null || want === null) return { bad: 'meta.json missing or unreadable' };
  for (const [file, sha] of Object.entries(want)) {
    const p = join(entry, file);
    if (!(await exists(p))) return { bad: `${file} missing` };
    if (sha === undefined) continue;
    const got = await sha256File(p);
    if (got !== sha) return { bad: `${file} sha256 ${got} != recorded ${sha}` };
  }
  return { ok: meta };
}

/** A fresh directory `.tmp-<key>-*` inside `parent` (same filesystem as the entry), swept by the next filler of `key`. */
export async function scratchDir(parent: string, key: string): Promise<string> {
  const p = join(parent, `.tmp-${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(p, { recursive: true });
  return p;
}

/** Remove staging/scratch dirs left by interrupted fills of `key` (call with the lock held). */
async function sweep(parent: string, key: string): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(`.tmp-${key}-`)).map((n) => rm(join(parent, n), { recursive: true, force: true })));
}

export interface EntryRequest<M> {
  /** <cacheDir>/kernels/<kind> */
  parent: string;
  key: string;
  /** shown in logs: "linux-image-...=6.1.190-1", a URL, "kernel fix-4 (abc...)" */
  label: string;
  /** checkEntry with the kind's file list */
  check: (entry: string) => Promise<Checked<M>>;
  /** put every file of the entry (meta.json included) into `staging`; return the meta */
  fill: (staging: string) => Promise<M>;
  /** "fetching" or "building", for the corrupt-entry line */
  verb: string;
  log: (m: string) => void;
  lockTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The verified entry `parent/key`: from the cache when it checks out, else
 * filled once (under the lock; a waiting process uses the winner's result),
 * a corrupt entry being deleted and refilled. `cached` is false only for the
 * caller that filled it. Throws what `fill` throws (nothing is published then).
 */
export async function ensureEntry<M>(r: EntryRequest<M>): Promise<{ entry: string; meta: M; cached: boolean }> {
  await mkdir(r.parent, { recursive: true });
  const entry = join(r.parent, r.key);
  const hit = await r.check(entry);
  if (hit && 'ok' in hit) return { entry, meta: hit.ok, cached: true };

  const release = await acquireLock(join(r.parent, `${r.key}.lock`), r.label, { log: r.log, timeoutMs: r.lockTimeoutMs, signal: r.signal });
  try {
    const again = await r.check(entry);
    if (again && 'ok' in again) return { entry, meta: again.ok, cached: true };
    if (again) {
      r.log(`cache entry for ${r.label} is corrupt (${again.bad}); deleting it and ${r.verb} again`);
      await rm(entry, { recursive: true, force: true });
    }
    await sweep(r.parent, r.key);
    const staging = await scratchDir(r.parent, r.key);
    try {
      const meta = await r.fill(staging);
      r.signal?.throwIfAborted();
      await rm(entry, { recursive: true, force: true });
      await rename(staging, entry);
      return { entry, meta, cached: false };
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw e;
    }
  } finally {
    await release();
  }
}
