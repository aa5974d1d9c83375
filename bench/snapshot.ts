// Issue 29, "measure first": is restoring a booted guest from a QEMU
// migration file at least 3x faster than booting it, at 2 and 36 vCPUs?
//
// For each kernel and vCPU count, alternately (so both see the same load):
//   boot:    spawn QEMU with lockstep's own argv (src/runner/qemu.ts qemuArgs)
//            -> the reproducer's first result line (what cells call boot_ms);
//   save:    once, a guest booted to its first scenario (a `hang` op holds it
//            there) is stopped and migrated into a file (src/runner/migrate.ts
//            saveVm: QMP `migrate` to a unix socket we write to the file), its size recorded;
//   restore: spawn QEMU with the same argv and `-incoming fd:3` (the file),
//            then `cont` once loaded -> status running (waitRunning).
// Prints the median of --runs (default 5) of each and the boot/restore ratio.
// Not a test: speed is measured here, never asserted.
//
//   node --import tsx bench/snapshot.ts [--runs 5] [--kernels debian-6.1.190,current-6.1] [--cpus 2,36]

import { spawn } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, ensureKernel } from '../src/kernels/artifact.ts';
import { builtinSpecs } from '../src/kernels/spec.ts';
import { ensureBaseImage, writeBootInitrd } from '../src/image/initramfs.ts';
import { GUEST_MEM_MB } from '../src/runner/vm.ts';
import { qemuArgs, qemuBinary } from '../src/runner/qemu.ts';
import { saveVm, waitRunning } from '../src/runner/migrate.ts';
import { qmpConnect } from '../src/runner/qmp.ts';
import { compileScenario } from '../src/scenario/load.ts';
import { toScript } from '../src/scenario/ops.ts';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, kernels: { type: 'string', default: 'debian-6.1.190,current-6.1' }, cpus: { type: 'string', default: '2,36' } } });
const runs = Math.max(1, Number(args.runs));
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const log = (m: string): void => console.error(`bench snapshot: ${m}`);

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
        const q = await qmpConnect(g.qmpPath);
        await saveVm(q, snap, join(dir, 'save.sock'));
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
          const fd = openSync(snap, 'r');
          const p = spawn(bin, [...argv(resSock), '-qmp', `unix:${qmpPath},server=on,wait=off`, '-incoming', 'fd:3'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
          const r = await qmpConnect(qmpPath);
          await waitRunning(r, 120_000);
          restores.push(Date.now() - t0);
          r.close(); p.kill('SIGKILL'); server.close(); closeSync(fd);
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
