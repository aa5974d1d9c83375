// QEMU lifecycle for one boot: command line, results channel, console
// capture, hard timeout, teardown. Results arrive on the guest's ttyS1,
// which QEMU connects to a unix socket we listen on (event-driven, no
// polling); the kernel console (ttyS0) arrives on QEMU's stdout.

import { spawn, execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { accessSync, constants } from 'node:fs';
import { promisify } from 'node:util';
import { MissingDependencyError } from '../util/errors.ts';

export const QEMU = process.env.LOCKSTEP_QEMU ?? 'qemu-system-x86_64';

export type Accel = 'kvm' | 'tcg';

export interface BootRequest {
  vmlinuz: string;
  initrd: string;
  cpus: number;
  memMb: number;
  accel: Accel;
  /** hard limit for the whole boot, ms */
  timeoutMs: number;
  /** give up early when no result line arrived by then (ms after start); for the KVM fallback */
  firstResultDeadlineMs?: number;
  /** a private directory for this VM (socket lives here) */
  workDir: string;
  extraCmdline?: string;
  signal?: AbortSignal;
  /** each complete result line as it arrives */
  onResultLine?: (line: string) => void;
}

export interface BootResult {
  /** exited: QEMU ended by itself; timeout: killed at timeoutMs; no-first-result: killed at firstResultDeadlineMs; aborted: the run was interrupted */
  status: 'exited' | 'timeout' | 'no-first-result' | 'aborted' | 'spawn-failed';
  exitCode: number | null;
  exitSignal: string | null;
  console: string;
  results: string;
  /** ms from spawn to the first result line (the reproducer's hello), if any */
  firstResultMs: number | null;
  wallMs: number;
  argv: string[];
  stderr: string;
}

export function qemuArgs(r: BootRequest, sockPath: string): string[] {
  const cmdline = ['console=ttyS0', 'panic=-1', 'loglevel=5', 'printk.devkmsg=on', r.extraCmdline ?? ''].filter(Boolean).join(' ');
  return [
    '-machine', 'pc', '-accel', r.accel === 'kvm' ? 'kvm' : 'tcg',
    '-cpu', r.accel === 'kvm' ? 'host' : 'max',
    '-smp', `${r.cpus}`, '-m', `${r.memMb}`,
    '-nodefaults', '-display', 'none', '-no-reboot', '-monitor', 'none',
    '-kernel', r.vmlinuz, '-initrd', r.initrd, '-append', cmdline,
    // ttyS0: kernel console on stdout; ttyS1: results to our socket
    '-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con',
    '-chardev', `socket,id=res,path=${sockPath}`, '-serial', 'chardev:res',
  ];
}

export async function qemuVersion(): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(QEMU, ['--version']);
    return stdout.split('\n')[0].trim();
  } catch {
    throw new MissingDependencyError(`QEMU (${QEMU})`, 'apt-get install qemu-system-x86');
  }
}

/**
 * Is KVM usable for a guest here? /dev/kvm can exist and still fail (nested
 * virtualisation that rejects MSRs QEMU sets): start a paused VM and quit.
 */
export async function kvmUsable(): Promise<{ ok: boolean; why: string }> {
  if (process.env.LOCKSTEP_ACCEL === 'tcg') return { ok: false, why: 'LOCKSTEP_ACCEL=tcg' };
  try { accessSync('/dev/kvm', constants.R_OK | constants.W_OK); } catch { return { ok: false, why: 'no usable /dev/kvm' }; }
  return new Promise((resolve) => {
    const p = spawn(QEMU, ['-accel', 'kvm', '-cpu', 'host', '-machine', 'pc', '-nodefaults', '-display', 'none', '-S', '-monitor', 'stdio'],
      { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', (e) => resolve({ ok: false, why: `cannot start ${QEMU}: ${e.message}` }));
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.on('close', (code) => {
      clearTimeout(t);
      const msg = err.split('\n').find((l) => /error|assert/i.test(l))?.trim();
      resolve(code === 0 ? { ok: true, why: 'kvm probe ok' } : { ok: false, why: `kvm probe failed: ${msg ?? `exit ${code}`}` });
    });
    p.stdin.end('quit\n');
  });
}

export async function boot(r: BootRequest): Promise<BootResult> {
  const sockPath = join(r.workDir, 'results.sock');
  const argv = qemuArgs(r, sockPath);
  const started = Date.now();
  let results = '';
  let partial = '';
  let firstResultMs: number | null = null;
  let server: Server | undefined;
  const sockets: Socket[] = [];

  // QEMU connects to us (it is the socket client), so listen first.
  server = createServer((s) => {
    sockets.push(s);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      if (firstResultMs === null) firstResultMs = Date.now() - started;
      results += d;
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) r.onResultLine?.(l);
    });
    s.on('error', () => { /* the VM going away closes it */ });
  });
  await new Promise<void>((res, rej) => { server!.once('error', rej); server!.listen(sockPath, () => res()); });

  return new Promise<BootResult>((resolve) => {
    let consoleText = '';
    let stderr = '';
    let status: BootResult['status'] = 'exited';
    const child = spawn(QEMU, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => { consoleText += d; });
    child.stderr.on('data', (d) => { stderr += d; });

    const kill = (why: BootResult['status']): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      status = why;
      child.kill('SIGKILL');
    };
    const hard = setTimeout(() => kill('timeout'), r.timeoutMs);
    const early = r.firstResultDeadlineMs
      ? setTimeout(() => { if (firstResultMs === null) kill('no-first-result'); }, r.firstResultDeadlineMs)
      : undefined;
    const onAbort = (): void => kill('aborted');
    r.signal?.addEventListener('abort', onAbort, { once: true });
    if (r.signal?.aborted) onAbort();

    let spawnError: Error | undefined;
    child.on('error', (e) => { spawnError = e; });
    child.on('close', (code, sig) => {
      clearTimeout(hard);
      if (early) clearTimeout(early);
      r.signal?.removeEventListener('abort', onAbort);
      for (const s of sockets) s.destroy();
      server?.close();
      resolve({
        status: spawnError ? 'spawn-failed' : status,
        exitCode: code, exitSignal: sig,
        console: consoleText, results, firstResultMs,
        wallMs: Date.now() - started, argv: [QEMU, ...argv],
        stderr: spawnError ? `${spawnError.message}\n${stderr}` : stderr,
      });
    });
  });
}
