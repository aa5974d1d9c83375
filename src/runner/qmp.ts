// A minimal QMP client (QEMU's JSON monitor protocol, docs/interop/qmp-spec
// in QEMU's tree) over the unix socket of `-qmp unix:PATH,server=on,wait=off`:
// the greeting, qmp_capabilities, then one command at a time. Events
// (lines with "event") are skipped. Only what snapshots need: stop, cont,
// migrate, query-migrate, query-status, migrate-set-parameters.

import { connect, type Socket } from 'node:net';

/** A QMP session: `cmd` sends one command and resolves with its "return" (rejects with QMP's error class and text). */
export interface QmpSession {
  cmd(execute: string, args?: Record<string, unknown>): Promise<unknown>;
  close(): void;
}

type Reply = { return?: unknown; error?: { class?: string; desc?: string }; QMP?: unknown };

/**
 * Connect to the QMP socket at `path`, retrying every 20 ms for up to
 * `waitMs` (QEMU creates it shortly after it starts) while `alive()` (the
 * QEMU process still runs), and negotiate capabilities. Throws when the socket never answers or closes while a
 * command is pending (QEMU exited).
 */
export async function qmpConnect(path: string, waitMs = 10_000, alive: () => boolean = () => true): Promise<QmpSession> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      return await session(await open(path));
    } catch (e) {
      // a QEMU that exited never answers: stop at once (a later QEMU may reuse the path)
      if (Date.now() > until || !alive()) throw new Error(`QMP socket ${path}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  });
}

async function session(s: Socket): Promise<QmpSession> {
  let buf = '';
  const waiters: { ok: (r: Reply) => void; fail: (e: Error) => void }[] = [];
  const failAll = (e: Error): void => { for (const w of waiters.splice(0)) w.fail(e); };
  s.setEncoding('utf8');
  s.on('data', (d: string) => {
    buf += d;
    for (let k = buf.indexOf('\n'); k >= 0; k = buf.indexOf('\n')) {
      const line = buf.slice(0, k).trim();
      buf = buf.slice(k + 1);
      if (!line) continue;
      let msg: Reply & { event?: unknown };
      try { msg = JSON.parse(line) as Reply; } catch { continue; }
      if (msg.event === undefined) waiters.shift()?.ok(msg);
    }
  });
  s.on('error', (e) => failAll(e));
  s.on('close', () => failAll(new Error('QMP connection closed (QEMU exited)')));
  const next = (): Promise<Reply> => new Promise((ok, fail) => waiters.push({ ok, fail }));
  await next(); // the greeting
  const cmd = async (execute: string, args?: Record<string, unknown>): Promise<unknown> => {
    const p = next();
    s.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
    const r = await p;
    if (r.error) throw new Error(`QMP ${execute}: ${r.error.class ?? 'Error'}: ${r.error.desc ?? ''}`);
    return r.return;
  };
  await cmd('qmp_capabilities');
  return { cmd, close: () => s.destroy() };
}
