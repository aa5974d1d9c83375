// Issue 29, "measure first": is restoring a booted guest from a QEMU
// migration file at least 3x faster than booting it, at 2 and 36 vCPUs?
//
// For each kernel and vCPU count, alternately (so both see the same load):
//   boot:    spawn QEMU with lockstep's own argv (src/runner/qemu.ts qemuArgs)
//            -> the reproducer's first result line (what cells call boot_ms);
//   save:    once, a guest booted to its first scenario (a `hang` op holds it
//            there) is stopped and migrated to a file (QMP `migrate` to
//            `exec:cat > FILE`), its size recorded;
//   restore: spawn QEMU with the same argv and `-incoming defer`, QMP
//            `migrate-incoming exec:cat FILE`, then `cont` -> status running.
// Prints the median of --runs (default 5) of each and the boot/restore ratio.
// Not a test: speed is measured here, never asserted.
//
//   node --import tsx bench/snapshot.ts [--runs 5] [--kernels debian-6.1.190,current-6.1] [--cpus 2,36]

import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, ensureKernel } from '../src/kernels/artifact.ts';
import { builtinSpecs } from '../src/kernels/spec.ts';
import { ensureBaseImage, writeBootInitrd } from '../src/image/initramfs.ts';
import { GUEST_MEM_MB } from '../src/runner/vm.ts';
import { qemuArgs, qemuBinary } from '../src/runner/qemu.ts';
import { compileScenario } from '../src/scenario/load.ts';
import { toScript } from '../src/scenario/ops.ts';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, kernels: { type: 'string', default: 'debian-6.1.190,current-6.1' }, cpus: { type: 'string', default: '2,36' } } });
const runs = Math.max(1, Number(args.runs));
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const log = (m: string): void => console.error(`bench snapshot: ${m}`);

/** A QMP session on unix socket `path`: send a command, get its return (events skipped). */
async function qmp(path: string): Promise<{ cmd: (execute: string, a?: object) => Promise<unknown>; close: () => void }> {
  for (let i = 0; ; i++) {
    try {
      const s = await new Promise<ReturnType<typeof connect>>((res, rej) => { const c = connect(path, () => res(c)); c.once('error', rej); });
      let buf = '';
      const waiters: ((v: Record<string, unknown>) => void)[] = [];
      s.on('data', (d) => {
        buf += d.toString();
        for (let k = buf.indexOf('\n'); k >= 0; k = buf.indexOf('\n')) {
          const msg = JSON.parse(buf.slice(0, k)) as Record<string, unknown>;
          buf = buf.slice(k + 1);
          if ('return' in msg || 'error' in msg || 'QMP' in msg) waiters.shift()?.(msg);
        }
      });
      const next = (): Promise<Record<string, unknown>> => new Promise((res) => waiters.push(res));
      await next(); // greeting
      const cmd = async (execute: string, a?: object): Promise<unknown> => {
        const p = next();
        s.write(JSON.stringify({ execute, ...(a ? { arguments: a } : {}) }) + '\n');
        const r = await p;
        if (r.error) throw new Error(`${execute}: ${JSON.stringify(r.error)}`);
        return r.return;
      };
      await cmd('qmp_capabilities');
      return { cmd, close: () => s.destroy() };
    } catch (e) {
      if (i > 200) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Spawn QEMU with `argv`; resolves at the first line on the results socket (ms since spawn). */
async function qemuUntilFirstResult(bin: string, argv: (sock: string) => string[], dir: string, extra: string[]): Promise<{ ms: number; kill: () => void; qmpPath: string }> {
  const sock = join(dir, `res-${Date.now()}.sock`);
  const qmpPath = join(dir, `qmp-${Date.now()}.sock`);
  let first: (() => void) | undefined;
  const got = new Promise<void>((r) => { first = r; });
  const server = createServer((c) => c.once('data', () => first?.()));
  await new Promise<void>((r) => server.listen(sock, r));
  const t0 = Date.now();
  const p = spawn(bin, [...argv(sock), '-qmp', `unix:${qmpPath},server=on,wait=off`, ...extra], { stdio: ['ignore', 'ignore', 'ignore'] });
  await got;
  return { ms: Date.now() - t0, qmpPath, kill: () => { p.kill('SIGKILL'); server.close(); } };
}

async function main(): Promise<void> {
  const cacheDir = defaultCacheDir();
  const base = await ensureBaseImage(cacheDir, { log });
  const specs = await builtinSpecs();
  const rows: string[] = ['| kernel | vCPUs | boot to first result (median) | restore to running (median) | boot / restore | snapshot size |', '|---|---|---|---|---|---|'];
  for (const id of args.kernels!.split(',')) {
    const spec = specs.find((k) => k.id === id);
    if (!spec) throw new Error(`no built-in kernel ${id}`);
    const a = await ensureKernel(spec, { cacheDir, log });
    for (const cpus of args.cpus!.split(',').map(Number)) {
      const dir = await mkdtemp(join(tmpdir(), 'lockstep-snap-'));
      try {
        const s = compileScenario({ id: 'hold', description: 'holds the guest at its first scenario', cpus, fault_injection: true, ops: [{ op: 'hang', seconds: 3000 }] }, 'bench');
        const initrd = join(dir, 'initrd');
        await writeBootInitrd(base, toScript(s, 10_000), ['--op-timeout', '3600', '--allow-uid-0'], initrd, a.initrdExtra);
        const argv = (sock: string): string[] => qemuArgs({ arch: 'x86_64', vmlinuz: a.vmlinuz!, initrd, cpus, memMb: GUEST_MEM_MB, accel: 'tcg' } as never, sock);
        const bin = qemuBinary('x86_64');
        // the snapshot: a guest at its first result, stopped and saved
        const snap = join(dir, 'snap');
        const g = await qemuUntilFirstResult(bin, argv, dir, []);
        const q = await qmp(g.qmpPath);
        await q.cmd('stop');
        await q.cmd('migrate', { uri: `exec:cat > ${snap}` });
        for (;;) {
          const st = (await q.cmd('query-migrate')) as { status?: string };
          if (st.status === 'completed') break;
          if (st.status === 'failed') throw new Error('migrate failed');
          await new Promise((r) => setTimeout(r, 50));
        }
        q.close(); g.kill();
        const boots: number[] = [];
        const restores: number[] = [];
        for (let n = 0; n < runs; n++) {
          const b = await qemuUntilFirstResult(bin, argv, dir, []);
          boots.push(b.ms); b.kill();
          const t0 = Date.now();
          const sockDir = dir;
          const qmpPath = join(sockDir, `qmp-r${n}.sock`);
          const resSock = join(sockDir, `res-r${n}.sock`);
          const server = createServer(() => {});
          await new Promise<void>((r) => server.listen(resSock, r));
          const p = spawn(bin, [...argv(resSock), '-qmp', `unix:${qmpPath},server=on,wait=off`, '-incoming', 'defer'], { stdio: ['ignore', 'ignore', 'ignore'] });
          const r = await qmp(qmpPath);
          await r.cmd('migrate-incoming', { uri: `exec:cat ${snap}` });
          for (;;) {
            const st = (await r.cmd('query-status')) as { status?: string };
            if (st.status === 'paused' || st.status === 'postmigrate' || st.status === 'running') { if (st.status !== 'running') await r.cmd('cont'); break; }
            await new Promise((res) => setTimeout(res, 10));
          }
          for (;;) {
            const st = (await r.cmd('query-status')) as { status?: string };
            if (st.status === 'running') break;
            await new Promise((res) => setTimeout(res, 10));
          }
          restores.push(Date.now() - t0);
          r.close(); p.kill('SIGKILL'); server.close();
          log(`${id} @${cpus}: boot ${boots.at(-1)} ms, restore ${restores.at(-1)} ms`);
        }
        const mb = (statSync(snap).size / 2 ** 20).toFixed(0);
        rows.push(`| ${id} | ${cpus} | ${(median(boots) / 1000).toFixed(2)} s | ${(median(restores) / 1000).toFixed(2)} s | ${(median(boots) / median(restores)).toFixed(1)}x | ${mb} MiB |`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  console.log(rows.join('\n'));
}

await main();
