// Saving and restoring a QEMU guest through migration, without a shell:
// the state goes out over a unix socket we listen on (QMP `migrate` to
// `unix:PATH`) into a file, and comes back in on an inherited descriptor
// (`-incoming fd:3`). Debian 12's QEMU 7.2 has no `file:` migration (8.2+),
// and `exec:` would hand a path to /bin/sh.

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { QmpSession } from './qmp.ts';

/** What a save wrote: the file's sha256 (hex) and size in bytes. */
export interface SavedState {
  sha256: string;
  bytes: number;
}

/** QEMU's status names (QMP query-status) a restore passes through before "running". */
const RESTORING = new Set(['inmigrate', 'prelaunch', 'restore-vm', 'paused', 'postmigrate']);

/**
 * Stop the guest behind `qmp`, migrate its state into `file` (written
 * through the unix socket `sockPath`, which must not exist) and let it run
 * on. Bandwidth is unlimited (QEMU 7.2 caps migration at 128 MiB/s by
 * default). Throws when QEMU reports the migration failed or cancelled,
 * or on a write error; the partial file is then removed.
 */
export async function saveVm(qmp: QmpSession, file: string, sockPath: string): Promise<SavedState> {
  const hash = createHash('sha256');
  let bytes = 0;
  const out = createWriteStream(file, { flags: 'wx' });
  let received!: Promise<void>;
  const server = createServer((c) => {
    received = new Promise<void>((resolve, reject) => {
      c.on('data', (d: Buffer) => { hash.update(d); bytes += d.length; });
      c.on('error', reject);
      c.pipe(out);
      out.on('finish', resolve);
      out.on('error', reject);
    });
  });
  await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(sockPath, res); });
  try {
    await qmp.cmd('stop');
    await qmp.cmd('migrate-set-parameters', { 'max-bandwidth': 64 * 2 ** 30 });
    await qmp.cmd('migrate', { uri: `unix:${sockPath}` });
    for (;;) {
      const st = (await qmp.cmd('query-migrate')) as { status?: string; 'error-desc'?: string };
      if (st.status === 'completed') break;
      if (st.status === 'failed' || st.status === 'cancelled') throw new Error(`migration ${st.status}${st['error-desc'] ? `: ${st['error-desc']}` : ''}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await received;
    await qmp.cmd('cont');
    return { sha256: hash.digest('hex'), bytes };
  } catch (e) {
    out.destroy();
    await rm(file, { force: true });
    throw e;
  } finally {
    server.close();
  }
}

/**
 * Start the guest behind `qmp` once its `-incoming` state is loaded (it was
 * saved stopped, so QEMU leaves it paused) and wait until it runs. Throws
 * when the load failed (QEMU exits, or reports the incoming migration
 * failed) or after `timeoutMs`.
 */
export async function waitRunning(qmp: QmpSession, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const st = (await qmp.cmd('query-status')) as { status?: string };
    if (st.status === 'running') return;
    if (!RESTORING.has(st.status ?? '')) throw new Error(`restored VM is ${st.status ?? '?'}, not running`);
    if (st.status !== 'inmigrate') {
      const m = (await qmp.cmd('query-migrate')) as { status?: string; 'error-desc'?: string };
      if (m.status === 'failed') throw new Error(`loading the snapshot failed${m['error-desc'] ? `: ${m['error-desc']}` : ''}`);
      if (m.status === 'completed') await qmp.cmd('cont');
    }
    if (Date.now() > until) throw new Error(`restored VM not running after ${timeoutMs / 1000} s (${st.status})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
