// The virtme runtime: the kernel boots through virtme-ng (`vng --run`), with
// the host's root filesystem shared read-only as vng does, and runs the
// static reproducer from lockstep's checkout. Results go to a file in a
// private directory vng shares read-write (--rwdir): the reproducer's
// single-write JSON lines land there untouched by vng's console. With
// --verbose vng points the guest's serial console at its own stderr
// (virtme/commands/run.py: a QEMU file chardev on /proc/self/fd/2): the
// kernel log lockstep scans for panics is vng's stderr, not its stdout.

import { execFile, spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dir as tmpDir } from 'tmp-promise';
import { REPRO_BINARY } from '../image/initramfs.ts';
import { toScript } from '../scenario/ops.ts';
import { ConfigError, MissingDependencyError } from '../util/errors.ts';
import type { KernelArtifact } from '../kernels/artifact.ts';
import type { KernelSpec } from '../kernels/spec.ts';
import type { Offer } from '../scenario/skip.ts';
import { type GroupOutcome, type GroupRequest, groupStatus, type Runtime, StopSwitch } from './runtime.ts';
import { consoleFaults, StreamParser, tail } from './stream.ts';
import { extraCmdlineFromEnv, qemuVersion } from './qemu.ts';
import { GUEST_MEM_MB, vmKernelOffer } from './vm.ts';

export const VNG = process.env.LOCKSTEP_VNG ?? 'vng';

/**
 * How to install virtme-ng on Debian 12: it is packaged from Debian 13
 * (trixie, virtme-ng 1.35, Architecture: all); its dependencies are in
 * bookworm. .ci/setup.sh runs these as root.
 */
export const VNG_INSTALL =
  'apt-get install python3-argcomplete python3-requests python3-pkg-resources file kmod udev && ' +
  'bash .ci/setup.sh (as root: downloads virtme-ng from Debian trixie with lockstep\'s own apt lists and dpkg -i it)';

/** `vng --version` ("virtme-ng 1.35"); MissingDependencyError with the install command when vng is absent. */
export async function vngVersion(): Promise<string> {
  try {
    const out = (await promisify(execFile)(VNG, ['--version'], { timeout: 30_000 })).stdout.trim();
    if (!/virtme-ng/i.test(out)) throw new ConfigError('environment', 'LOCKSTEP_VNG', `${VNG} --version printed ${JSON.stringify(out.slice(0, 80))}, not virtme-ng`, 'point LOCKSTEP_VNG at vng, or unset it');
    return out.split('\n')[0]!;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES') throw new MissingDependencyError(`virtme-ng (${VNG})`, VNG_INSTALL);
    throw e;
  }
}

/** POSIX shell single-quoting of one word. Pure. */
const sq = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;

export interface VngRequest {
  /** the kernel image; for a Debian image, <root>/boot/vmlinuz-<release> with <root>/lib/modules/<release> beside it */
  kimg: string;
  cpus: number;
  memMb: number;
  /** the directory shared read-write: script.ops in, results.jsonl out */
  shareDir: string;
  repro: string;
  opTimeoutS: number;
  /** extra guest kernel parameters (run --append / $LOCKSTEP_EXTRA_CMDLINE), checked words */
  extraCmdline?: string;
}

/**
 * vng's argument list for one boot. Pure. --disable-kvm: lockstep's TCG
 * (KVM is a later choice); --verbose: the kernel console on vng's stderr,
 * for panic detection; no_timer_check as in qemu.ts (TCG on a loaded host),
 * then the extra parameters, all in one --append (vng joins its --append
 * words into the kernel command line). The guest command's stderr joins its
 * stdout: vng's guest stderr port writes to the same host file as the
 * console, from its own file offset, and would overwrite console text.
 */
export function vngArgs(r: VngRequest): string[] {
  const cmd = ['env', 'LOCKSTEP_GUEST=1', r.repro, '--script', join(r.shareDir, 'script.ops'), '--out', join(r.shareDir, 'results.jsonl'), '--op-timeout', String(r.opTimeoutS), '--allow-uid-0'];
  return [
    '--run', r.kimg, '--disable-kvm', '--verbose', '--cpus', String(r.cpus), '--memory', `${r.memMb}M`,
    '--rwdir', r.shareDir, '--cwd', r.shareDir, '--append', ['no_timer_check', r.extraCmdline].filter(Boolean).join(' '),
    '--exec', `${cmd.map(sq).join(' ')} 2>&1`,
  ];
}

/**
 * Boots through virtme-ng. prepare(): vng's and QEMU's versions (vng
 * missing: MissingDependencyError with the command that installs it, exit 2)
 * and $LOCKSTEP_EXTRA_CMDLINE; stop() ends any boot still going.
 */
export class VirtmeRuntime implements Runtime {
  readonly name = 'virtme' as const;

  /** $LOCKSTEP_EXTRA_CMDLINE (run --append), checked once in prepare() so a bad value stops the run before any boot */
  private extraCmdline?: string;
  private prepared?: Promise<void>;
  private readonly halt = new StopSwitch();
  /** what the cells record as qemu_version: vngVersion() and QEMU's version line (after prepare()) */
  private vngEmulator = '';

  prepare(): Promise<void> {
    this.prepared ??= (async () => {
      this.vngEmulator = `${await vngVersion()} (${await qemuVersion()})`;
      this.extraCmdline = extraCmdlineFromEnv();
    })();
    return this.prepared;
  }

  offer(_group: unknown, spec: KernelSpec, a: KernelArtifact): Offer {
    return vmKernelOffer(spec, a);
  }

  async stop(): Promise<void> {
    this.halt.stop();
  }

  async run(request: GroupRequest): Promise<GroupOutcome> {
    await this.prepare();
    const req = this.halt.watch(request);
    if (!req.vmlinuz) throw new Error(`virtme runtime needs a kernel image for ${req.kernel}`);
    const emulator = this.vngEmulator;
    const script = req.scenarios.map((s, k) => toScript(s, req.uids[k])).join('');
    await writeFile(join(req.logDir, 'script.ops'), script);
    const share = await tmpDir({ unsafeCleanup: true, prefix: 'lockstep-vng-' });
    try {
      await writeFile(join(share.path, 'script.ops'), script);
      const resultsFile = join(share.path, 'results.jsonl');
      await writeFile(resultsFile, '');
      const argv = vngArgs({ kimg: req.vmlinuz, cpus: req.cpus, memMb: GUEST_MEM_MB, shareDir: share.path, repro: REPRO_BINARY, opTimeoutS: req.opTimeoutS, extraCmdline: this.extraCmdline });
      const parser = new StreamParser();
      const started = Date.now();
      let bootMs: number | null = null;
      let results = '';
      let pos = 0;
      // Read what the guest appended since last time (9p writes land in the host file as they happen).
      const fh = await open(resultsFile, 'r');
      let reading = Promise.resolve();
      const readMore = (): Promise<void> => {
        reading = reading.then(async () => {
          for (;;) {
            const buf = Buffer.alloc(65536);
            const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
            if (!bytesRead) return;
            pos += bytesRead;
            const d = buf.subarray(0, bytesRead).toString('utf8');
            if (bootMs === null) bootMs = Date.now() - started;
            results += d;
            for (const ev of parser.push(d)) req.onEvent?.(ev);
          }
        });
        return reading;
      };
      const watcher = watch(share.path, () => { void readMore(); });
      // vng wants stdout/stderr it can reopen through /proc/self/fd (node's pipes are sockets): plain files.
      // stderr is the console (see the header), written to the run's console.log as it comes.
      const consoleLog = join(req.logDir, 'console.log');
      const guestOut = join(share.path, 'vng.stdout');
      const outFh = await open(guestOut, 'w+');
      const errFh = await open(consoleLog, 'w');
      const r = await new Promise<{ code: number | null; sig: string | null; why: 'exited' | 'timeout' | 'aborted' | 'spawn-failed'; out: string; err: string }>((resolve) => {
        // its own process group: vng runs QEMU as a child, and a kill must reach both
        const child = spawn(VNG, argv, { cwd: share.path, stdio: ['ignore', outFh.fd, errFh.fd], detached: true });
        let err = '';
        let why: 'exited' | 'timeout' | 'aborted' | 'spawn-failed' = 'exited';
        const kill = (w: typeof why): void => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          why = w;
          try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
        };
        const hard = setTimeout(() => kill('timeout'), req.timeoutMs);
        const onAbort = (): void => kill('aborted');
        req.signal?.addEventListener('abort', onAbort, { once: true });
        if (req.signal?.aborted) onAbort();
        child.on('error', (e) => { err += `${e.message}\n`; why = 'spawn-failed'; });
        child.on('close', (code, sig) => {
          clearTimeout(hard);
          req.signal?.removeEventListener('abort', onAbort);
          // QEMU may outlive a vng that died: end the group either way
          try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
          void (async () => {
            const out = await readFile(guestOut, 'utf8');
            err += (await readFile(consoleLog, 'utf8')).replace(/\r\n/g, '\n');
            resolve({ code, sig, why, out, err });
          })();
        });
      });
      await outFh.close();
      await errFh.close();
      watcher.close();
      await readMore();
      await fh.close();
      // a line cut by the guest's death has no newline: hand it over so it counts as garbage
      const stream = parser.end();
      const consoleText = `${r.err}${r.out ? `\n--- vng stdout (the guest command's output) ---\n${r.out}` : ''}`;
      const resultsLog = join(req.logDir, 'results.jsonl');
      await writeFile(consoleLog, consoleText);
      await writeFile(resultsLog, results);
      const faults = consoleFaults(consoleText);
      // vng's own complaints land on its stderr too, after the console
      const { status, detail } = groupStatus({ why: r.why, who: 'vng', exitCode: r.code, exitSignal: r.sig, stderr: r.err.trim() ? r.err : r.out, timeoutMs: req.timeoutMs }, stream, req.signal?.aborted === true);
      return {
        status, detail, stream, faults, consoleTail: tail(r.err.trim() ? r.err : r.out, 40), consoleLog, resultsLog,
        accel: 'tcg', accelWhy: 'vng --disable-kvm (TCG)', bootMs, wallMs: Date.now() - started, argv: [VNG, ...argv], emulator,
      };
    } finally {
      await share.cleanup();
    }
  }
}
