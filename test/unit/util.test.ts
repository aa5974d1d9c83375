// The shared plumbing: running tools (util/exec.ts: errors, SIGTERM then
// SIGKILL on abort), cross-process locks (util/lock.ts: exclusion, stale
// takeover, liveness), and the downloader (kernels/obtain/download.ts:
// streaming hash, HTTP errors, a stalled transfer abandoned).

import t from 'tap';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dir as tmpDir } from 'tmp-promise';
import { download, DownloadError } from '../../src/kernels/obtain/download.ts';
import { MissingDependencyError } from '../../src/util/errors.ts';
import { KILL_GRACE_MS, runTool, ToolError } from '../../src/util/exec.ts';
import { acquireLock, lockHeld, STALE_MS } from '../../src/util/lock.ts';

// The subtests share nothing (each its own temporary directory, child, lock
// files and server) and mostly wait (the abort test alone waits KILL_GRACE_MS):
// run them side by side, each buffered and reported in order.
t.jobs = 4;

t.test('runTool: output, exit codes, a missing tool', async (t) => {
  t.equal((await runTool('sh', ['-c', 'echo out; echo err >&2'], { install: 'x' })).stdout, 'out\n');
  const e = await runTool('sh', ['-c', 'echo nope >&2; exit 3'], { install: 'x' }).catch((x: unknown) => x);
  t.ok(e instanceof ToolError);
  t.match(e, { exitCode: 3, stderr: 'nope\n', canceled: false });
  await t.rejects(runTool('lockstep-no-such-tool', [], { install: 'apt-get install it' }), MissingDependencyError);
});

t.test('runTool: an abort sends SIGTERM, then SIGKILL to a child that ignores it', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const pidFile = join(d.path, 'pid');
  const ac = new AbortController();
  // ignores SIGTERM: only SIGKILL ends it
  const p = runTool('sh', ['-c', `trap '' TERM; echo $$ > ${pidFile}; while :; do sleep 0.1; done`], { install: 'x', signal: ac.signal });
  p.catch(() => {});
  while (!existsSync(pidFile) || !readFileSync(pidFile, 'utf8').trim()) await new Promise((r) => setTimeout(r, 20));
  const t0 = Date.now();
  ac.abort();
  const e = await p.catch((x: unknown) => x);
  const took = Date.now() - t0;
  t.match(e, { name: 'ToolError', canceled: true });
  t.ok(took >= KILL_GRACE_MS - 200 && took < KILL_GRACE_MS + 5000, `killed after the grace period (${took} ms)`);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the child is gone');
  t.match(await runTool('true', [], { install: 'x', signal: ac.signal }).catch((x: unknown) => x), { name: 'ToolError', canceled: true }, 'nothing starts after the abort');
});

t.test('locks: one holder at a time, liveness, stale takeover', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const lock = join(d.path, 'sub', 'x.lock');
  const logs: string[] = [];
  const log = (m: string): void => { logs.push(m); };
  t.equal(await lockHeld(lock), false, 'absent: not held');
  const release = await acquireLock(lock, 'x', { log });
  t.equal(await lockHeld(lock), true, 'held');
  let second = false;
  const waiting = acquireLock(lock, 'x', { log }).then((r) => { second = true; return r; });
  await new Promise((r) => setTimeout(r, 300));
  t.equal(second, false, 'a second taker waits');
  t.match(logs.join('\n'), /waiting for another lockstep holding x/);
  await release();
  const r2 = await waiting;
  t.equal(second, true, 'and gets it once released');
  await r2();
  t.equal(await lockHeld(lock), false, 'released');
  await t.rejects(acquireLock(lock, 'x', { log, signal: AbortSignal.abort() }), 'an aborted signal stops the wait');

  // A holder that died: its lock is no longer refreshed.
  const dead = join(d.path, 'dead.lock');
  mkdirSync(dead);
  const old = new Date(Date.now() - 2 * STALE_MS);
  utimesSync(dead, old, old);
  t.equal(await lockHeld(dead), false, 'stale: not held');
  const r3 = await acquireLock(dead, 'dead', { log, timeoutMs: 5000 });
  t.match(logs.join('\n'), /removed a stale lock .* for dead/);
  await r3();

  // A live holder past the timeout: a clear error.
  const r4 = await acquireLock(lock, 'x', { log });
  await t.rejects(acquireLock(lock, 'x', { log, timeoutMs: 200 }), /timed out after \d+ s waiting for the lock/);
  await r4();

  // An old-format lock FILE (an older lockstep) is waited for while recent.
  const legacy = join(d.path, 'legacy.lock');
  writeFileSync(legacy, '123\nhost\n');
  await t.rejects(acquireLock(legacy, 'legacy', { log, timeoutMs: 300 }), /timed out/);
});

t.test('download: streamed with its sha256; HTTP errors and stalls are DownloadErrors', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const body = Buffer.alloc(3 << 20, 0x5a);
  const server = createServer((req, res) => {
    if (req.url === '/ok') res.writeHead(200, { 'content-length': body.length }).end(body);
    else if (req.url === '/stall') { res.writeHead(200, { 'content-length': 100 }); res.write('x'); /* then nothing */ }
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const log = (): void => {};
  const dest = join(d.path, 'f');
  const got = await download(`${base}/ok`, dest, { log });
  t.same(got, { sha256: createHash('sha256').update(body).digest('hex'), size: body.length });
  t.equal(readFileSync(dest).length, body.length);
  await t.rejects(download(`${base}/missing`, join(d.path, 'g'), { log }), { name: 'DownloadError', message: /HTTP 404/ });
  const stalled = await download(`${base}/stall`, join(d.path, 'h'), { log, stallMs: 500 }).catch((e: unknown) => e);
  t.ok(stalled instanceof DownloadError, String(stalled));
  t.match(stalled, { message: /stalled: no data for 1 s|stalled/ });
  t.notOk(existsSync(join(d.path, 'h')), 'nothing left of a failed download');
  const ac = new AbortController();
  const p = download(`${base}/stall`, join(d.path, 'i'), { log, signal: ac.signal });
  setTimeout(() => ac.abort(new Error('run interrupted')), 200);
  await t.rejects(p, /run interrupted/, 'an abort stops it with the abort reason');
});
