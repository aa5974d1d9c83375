// QEMU lifecycle for one boot: command line, results channel, console
// capture, hard timeout, teardown. Results arrive on the guest's ttyS1
// (x86_64: the second 16550 of -machine pc) or hvc0 (arm64: a virtio console
// on -machine virt, whose one PL011 carries the kernel console), which QEMU
// connects to a unix socket we listen on (event-driven, no polling); the
// kernel console (ttyS0 / ttyAMA0) arrives on QEMU's stdout.

import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ARCH_FACTS, type Arch, archFacts } from '../kernels/arch.ts';
import { ConfigError, MissingDependencyError } from '../util/errors.ts';
import { kvmVerdictFile, machineKey, readKvmVerdict } from './kvm-verdict.ts';
import { type SavedState, saveVm, waitRunning } from './migrate.ts';
import { qmpConnect, type QmpSession } from './qmp.ts';

export const QEMU = process.env.LOCKSTEP_QEMU ?? 'qemu-system-x86_64';

/** The QEMU binary that boots `arch` guests: $LOCKSTEP_QEMU / $LOCKSTEP_QEMU_AARCH64, else qemu-system-x86_64 / qemu-system-aarch64. */
export const qemuBinary = (arch: Arch = 'x86_64', env: NodeJS.ProcessEnv = process.env): string => env[ARCH_FACTS[arch].qemu.env] ?? ARCH_FACTS[arch].qemu.binary;

/** Kernel parameters: key or key=value words, no quoting (they go to QEMU as one argv entry, never a shell). */
const CMDLINE_WORD_RE = /^[A-Za-z0-9_.,:/+-]+(=[A-Za-z0-9_.,:/+-]*)?$/;

/**
 * Extra guest kernel parameters from $LOCKSTEP_EXTRA_CMDLINE: a debugging
 * and fault-injection hook (the tests boot with rdinit=/does-not-exist or
 * lockstep.hang_before=1 through it). Checked word by word.
 */
export function extraCmdlineFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.LOCKSTEP_EXTRA_CMDLINE;
  if (v === undefined || v.trim() === '') return undefined;
  const words = v.trim().split(/\s+/);
  const bad = words.find((w) => !CMDLINE_WORD_RE.test(w));
  if (bad !== undefined || words.length > 32) {
    throw new ConfigError('environment', 'LOCKSTEP_EXTRA_CMDLINE', `${JSON.stringify(bad ?? v)} is not a plain kernel parameter (key or key=value of [A-Za-z0-9_.,:/+-], at most 32 of them)`, 'unset it, or give space-separated words like "rdinit=/bin/sh loglevel=7"');
  }
  return words.join(' ');
}

export type Accel = 'kvm' | 'tcg';

export interface BootRequest {
  /** the guest's architecture (default x86_64); arm64 always runs under TCG */
  arch?: Arch;
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
  /**
   * Snapshots (src/runner/snapshot.ts): the guest's initramfs runs the
   * reproducer with --script-from-out, and this script is sent to it on the
   * results channel (harness/PROTOCOL.md, "Waiting for the script"): at its
   * ready line after a boot, or as soon as a restored guest runs.
   */
  script?: string;
  /** with `script`: the reproducer's per-op timeout, seconds (sent with the script, so it is not part of the saved guest) */
  scriptOpTimeoutS?: number;
  /** with `script`: restore the guest from this saved state (QEMU -incoming fd:3) instead of booting it */
  restoreFrom?: string;
  /** with `script` and no `restoreFrom`: at the ready line, save the stopped guest into this new file, then send the script */
  saveTo?: string;
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
  /** saveTo: what was saved (null when the guest never got ready, or the save failed: saveError says why) */
  saved?: SavedState | null;
  saveError?: string;
  /** saveTo: the console up to the ready line (the boot log a restored guest's console lacks) */
  bootConsole?: string;
  /** restoreFrom: why the restore failed before the guest took its script (QEMU's load error, a VM that never ran) */
  restoreError?: string;
}

/**
 * QEMU's argv (without the binary) for one boot of `r`, results to the unix
 * socket `sockPath`. Pure. x86_64: -machine pc, consoles ttyS0 + ttyS1.
 * arm64: -machine virt with GICv3 (GICv2 stops at 8 CPUs), -cpu max under
 * TCG, console ttyAMA0, results on a virtio console the guest sees as hvc0
 * (init.sh reads lockstep.out=hvc0).
 */
export function qemuArgs(r: BootRequest, sockPath: string): string[] {
  const m = archFacts(r.arch);
  const cmdline = [...m.cmdline, r.extraCmdline ?? ''].filter(Boolean).join(' ');
  return [
    // Single-threaded TCG: with many vCPUs on few host cores, one thread
    // round-robining the vCPUs boots 3-4x faster than one thread per vCPU
    // (bench/: 36 vCPUs on 2 cores, ~25 s vs ~90 s), and never slower at 2-4.
    '-machine', m.board, '-accel', r.accel === 'kvm' ? 'kvm' : 'tcg,thread=single',
    '-cpu', m.cpu(r.accel),
    '-smp', `${r.cpus}`, '-m', `${r.memMb}`,
    '-nodefaults', '-display', 'none', '-no-reboot', '-monitor', 'none',
    '-kernel', r.vmlinuz, '-initrd', r.initrd, '-append', cmdline,
    // the kernel console on stdout, the results to our socket
    '-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con',
    ...m.resultsDevice(sockPath),
  ];
}


/**
 * The first line of `QEMU --version` for the emulator of `arch`. Throws
 * MissingDependencyError (with the apt package) when it is not installed,
 * ConfigError naming the overriding variable when that points at something
 * that is not a working QEMU.
 */
export async function qemuVersion(arch: Arch = 'x86_64'): Promise<string> {
  const em = ARCH_FACTS[arch].qemu;
  const bin = qemuBinary(arch);
  const viaEnv = process.env[em.env] !== undefined;
  let out: string;
  try {
    out = (await promisify(execFile)(bin, ['--version'], { timeout: 30_000 })).stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT' || err.code === 'EACCES') {
      if (viaEnv) throw new ConfigError('environment', em.env, `${bin} cannot be run (${err.code})`, `point ${em.env} at a ${em.binary} binary, or unset it to use the one on PATH`);
      throw new MissingDependencyError(`QEMU (${bin})`, `apt-get install ${em.pkg}`);
    }
    const why = (err.stderr ?? '').trim().split('\n')[0] || `exit ${String((e as { code?: unknown }).code)}`;
    throw new ConfigError('environment', viaEnv ? em.env : '', `${bin} --version failed (${why})`, viaEnv ? `point ${em.env} at a working ${em.binary}, or unset it` : `reinstall ${em.pkg} (apt-get install --reinstall ${em.pkg})`);
  }
  const first = out.split('\n')[0].trim();
  if (!/QEMU emulator version/i.test(first)) {
    throw new ConfigError('environment', viaEnv ? em.env : '', `${bin} does not say it is QEMU (--version printed ${JSON.stringify(first.slice(0, 80))})`, viaEnv ? `point ${em.env} at ${em.binary}, or unset it` : `apt-get install ${em.pkg}`);
  }
  return first;
}

/**
 * Is KVM usable for a guest here? /dev/kvm can exist and still fail (nested
 * virtualisation that rejects MSRs QEMU sets): start a paused VM and quit.
 * A paused VM can start while real guests still hang (they stop in the
 * kernel's decompressor on some nested hosts): a KVM boot that gave no
 * result is recorded (src/runner/kvm-verdict.ts) and read back here, so
 * later runs on this machine go straight to TCG and say why.
 */
export async function kvmUsable(): Promise<{ ok: boolean; why: string }> {
  if (process.env.LOCKSTEP_ACCEL === 'tcg') return { ok: false, why: 'LOCKSTEP_ACCEL=tcg' };
  try { accessSync('/dev/kvm', constants.R_OK | constants.W_OK); } catch { return { ok: false, why: 'no usable /dev/kvm' }; }
  const file = kvmVerdictFile();
  const known = readKvmVerdict(machineKey(await qemuVersion().catch(() => '')), file);
  if (known) return { ok: false, why: `a kvm boot gave no result on this machine before (${known.at}: ${known.why}); remove ${file} to try kvm again` };
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

/**
 * One QEMU guest from spawn to exit: boots `r.vmlinuz` (or restores
 * `r.restoreFrom`), collects the console and the result lines, kills it at
 * `r.timeoutMs`, on abort, or without a first result by
 * `firstResultDeadlineMs`. With `r.script` the guest waits for its script
 * (sent here; the ready line is not a result) and `r.saveTo` saves it at
 * that point. Never throws: a failure is in the result's status and errors.
 */
export async function boot(r: BootRequest): Promise<BootResult> {
  let sockPath = join(r.workDir, 'results.sock');
  // sun_path holds 108 bytes: under a deep TMPDIR the sockets go in a short private dir
  let sockDir: string | undefined;
  if (Buffer.byteLength(sockPath) > 90) {
    sockDir = await mkdtemp('/tmp/lockstep-sock-');
    sockPath = join(sockDir, 's');
  }
  // per boot: a retry still running for an earlier QEMU in this directory must never reach this one
  const tag = randomBytes(4).toString('hex');
  const qmpPath = join(dirname(sockPath), `qmp-${tag}.sock`);
  const snap = r.script !== undefined;
  const argv = [...qemuArgs(r, sockPath), ...(snap ? ['-qmp', `unix:${qmpPath},server=on,wait=off`] : []), ...(snap && r.restoreFrom ? ['-incoming', 'fd:3'] : [])];
  const started = Date.now();
  let results = '';
  let partial = '';
  let firstResultMs: number | null = null;
  const sockets: Socket[] = [];
  const extra: Pick<BootResult, 'saved' | 'saveError' | 'bootConsole' | 'restoreError'> = {};
  let consoleText = '';
  let qmp: QmpSession | undefined;
  let readySeen = false;
  let kill: (why: BootResult['status']) => void = () => {};
  let exited = false;
  const running = (): boolean => !exited;
  /** the script, framed as --script-from-out reads it */
  const sendScript = (): void => { sockets[0]?.write(`script ${Buffer.byteLength(r.script!)}${r.scriptOpTimeoutS ? ` ${r.scriptOpTimeoutS}` : ''}\n${r.script!}`); };
  const onReady = async (): Promise<void> => {
    if (r.saveTo) {
      extra.bootConsole = consoleText;
      try {
        qmp ??= await qmpConnect(qmpPath, 10_000, running);
        extra.saved = await saveVm(qmp, r.saveTo, join(dirname(sockPath), `save-${tag}.sock`));
      } catch (e) {
        extra.saved = null;
        extra.saveError = (e as Error).message;
        // a guest stopped for a save that failed must still run its script
        await qmp?.cmd('cont').catch(() => {});
      }
    }
    sendScript();
  };

  // QEMU connects to us (it is the socket client), so listen first.
  const server: Server = createServer((s) => {
    sockets.push(s);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      if (firstResultMs === null) firstResultMs = Date.now() - started;
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        // the guest waits here for its script: the snapshot point, not a result
        if (snap && !readySeen && l.startsWith('{"ev":"ready"')) { readySeen = true; void onReady(); continue; }
        results += l + '\n';
        r.onResultLine?.(l);
      }
    });
    s.on('error', () => { /* the VM going away closes it */ });
  });
  await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(sockPath, () => res()); });
  const restoreFd = snap && r.restoreFrom ? await open(r.restoreFrom, 'r').catch((e: Error) => e) : undefined;
  if (restoreFd instanceof Error) extra.restoreError = `cannot open ${r.restoreFrom}: ${restoreFd.message}`;

  const result = await new Promise<BootResult>((resolve) => {
    let stderr = '';
    let status: BootResult['status'] = 'exited';
    const bin = qemuBinary(r.arch);
    const fd3 = restoreFd && !(restoreFd instanceof Error) ? restoreFd.fd : 'ignore';
    const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe', fd3] });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => { consoleText += d; });
    child.stderr!.on('data', (d) => { stderr += d; });

    kill = (why) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      status = why;
      child.kill('SIGKILL');
    };
    if (extra.restoreError) kill('spawn-failed');
    const hard = setTimeout(() => kill('timeout'), r.timeoutMs);
    const early = r.firstResultDeadlineMs
      ? setTimeout(() => { if (firstResultMs === null) kill('no-first-result'); }, r.firstResultDeadlineMs)
      : undefined;
    const onAbort = (): void => kill('aborted');
    r.signal?.addEventListener('abort', onAbort, { once: true });
    if (r.signal?.aborted) onAbort();

    let spawnError: Error | undefined;
    child.on('error', (e) => { spawnError = e; });
    child.on('spawn', () => { if (snap && r.restoreFrom && !extra.restoreError) void resumeRestored(); });
    const resumeRestored = async (): Promise<void> => {
      try {
        qmp = await qmpConnect(qmpPath, 10_000, running);
        await waitRunning(qmp, 60_000);
        sendScript();
      } catch (e) {
        extra.restoreError = (e as Error).message;
        kill('exited');
      }
    };
    child.on('exit', () => { exited = true; });
    child.on('close', (code, sig) => {
      exited = true;
      clearTimeout(hard);
      if (early) clearTimeout(early);
      r.signal?.removeEventListener('abort', onAbort);
      for (const s of sockets) s.destroy();
      qmp?.close();
      server.close();
      resolve({
        status: spawnError ? 'spawn-failed' : status,
        exitCode: code, exitSignal: sig,
        // the guest's serial console ends lines with CRLF
        console: consoleText.replace(/\r\n/g, '\n'), results: results + partial, firstResultMs,
        wallMs: Date.now() - started, argv: [bin, ...argv],
        stderr: spawnError ? `${spawnError.message}\n${stderr}` : stderr,
        ...extra,
        ...(extra.bootConsole !== undefined ? { bootConsole: extra.bootConsole.replace(/\r\n/g, '\n') } : {}),
      });
    });
  });
  if (restoreFd && !(restoreFd instanceof Error)) await restoreFd.close();
  if (sockDir) await rm(sockDir, { recursive: true, force: true });
  return result;
}
