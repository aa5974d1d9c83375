// Cross-process locks on paths, through proper-lockfile (a maintained
// library): the lock is a directory created with mkdir(2) (atomic), its
// holder touches it every UPDATE_MS, and a lock untouched for STALE_MS
// belongs to a dead process and is taken over. Used by the kernel cache
// (one fetch or build per entry), by matrix/ (one lockstep at a time on the
// host kernel) and by container/.

import { mkdir, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';

/** A holder refreshes its lock's mtime this often, ms. */
const UPDATE_MS = 5_000;
/** A lock not refreshed for this long is stale (its holder died), ms. */
export const STALE_MS = 30_000;

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export interface LockOptions {
  log: (msg: string) => void;
  /** give up waiting after this long, ms (default 30 min) */
  timeoutMs?: number;
  /** stop waiting when this aborts (throws its reason) */
  signal?: AbortSignal;
}

/**
 * Take the lock `lockPath` (a directory; its parent is created), waiting for
 * a live holder with backoff and logging every 30 s; a stale one is taken
 * over (and logged). Returns the release function. Throws when `timeoutMs`
 * passes or `signal` aborts while waiting.
 */
export async function acquireLock(lockPath: string, what: string, opts: LockOptions): Promise<() => Promise<void>> {
  await mkdir(dirname(lockPath), { recursive: true });
  const started = Date.now();
  const timeout = opts.timeoutMs ?? 30 * 60_000;
  const lockOpts = {
    realpath: false,
    lockfilePath: lockPath,
    stale: STALE_MS,
    update: UPDATE_MS,
    retries: 0,
    // A lock taken over while we hold it (our process stalled > STALE_MS): say so, do not crash.
    onCompromised: (e: Error) => opts.log(`warning: the lock for ${what} was taken over (${e.message})`),
  };
  let delay = 50;
  let announced = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    const staleBefore = await isStale(lockPath);
    try {
      const release = await lockfile.lock(lockPath, lockOpts);
      if (staleBefore) opts.log(`removed a stale lock (holder gone for more than ${STALE_MS / 1000} s) for ${what}`);
      return async () => {
        await release().catch(() => {});
      };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOTDIR: a lock FILE of a lockstep from before these directory locks;
      // its holder removes it when done, so it is waited for like a live one,
      // up to LEGACY_STALE_MS of age (older: its holder was killed).
      if (code === 'ENOTDIR' && (await ageMs(lockPath)) > LEGACY_STALE_MS) {
        await unlink(lockPath).catch(() => {});
        opts.log(`removed an old-format lock file older than ${LEGACY_STALE_MS / 3600_000} h for ${what}`);
        continue;
      }
      if (code !== 'ELOCKED' && code !== 'ENOTDIR') throw e;
    }
    const waited = Date.now() - started;
    if (waited > timeout) throw new Error(`timed out after ${Math.round(waited / 1000)} s waiting for the lock ${lockPath}`);
    if (announced === 0 || Date.now() - announced > 30_000) {
      opts.log(`waiting for another lockstep holding ${what} (lock ${lockPath})`);
      announced = Date.now();
    }
    await sleep(delay, opts.signal);
    delay = Math.min(2000, Math.round(delay * 1.5));
  }
}

/** A lock file of an older lockstep (never refreshed) this old is abandoned, ms. */
const LEGACY_STALE_MS = 3 * 3600_000;

/** ms since `p` was last modified (0 when absent). */
async function ageMs(p: string): Promise<number> {
  const st = await stat(p).catch(() => null);
  return st === null ? 0 : Date.now() - st.mtimeMs;
}

/** True when the lock exists but its holder stopped refreshing it. */
async function isStale(lockPath: string): Promise<boolean> {
  return (await ageMs(lockPath)) > STALE_MS;
}

/** Is `lockPath` held by a live process right now (exists and not stale)? */
export function lockHeld(lockPath: string): Promise<boolean> {
  return lockfile.check(lockPath, { realpath: false, lockfilePath: lockPath, stale: STALE_MS }).catch(() => false);
}
