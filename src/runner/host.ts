// The host runtime: the reproducer runs directly on the running kernel, as
// root, each scenario under a fresh uid chosen so that no process of that uid
// exists (the per-user counter lives as long as any process of the uid).

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus as osCpus } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { type Offer, ROOT_UID_WHY } from '../scenario/skip.ts';
import { hasFaultInjection, toScript } from '../scenario/ops.ts';
import { REPRO_BINARY } from '../image/initramfs.ts';
import { type GroupOutcome, type GroupRequest, type Runtime, StopSwitch } from './runtime.ts';
import { describeCut, StreamParser, tail } from './stream.ts';

/** Uids of every live process (from /proc), to pick ones nobody uses. */
function liveUids(): Set<number> {
  const out = new Set<number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'));
      if (m) for (const u of m.slice(1)) out.add(Number(u));
    } catch { /* raced with exit */ }
  }
  return out;
}

/** n consecutive unused uids from a random base well above any real account. */
export function freshHostUids(n: number): number[] {
  const used = liveUids();
  for (;;) {
    const base = randomInt(3_000_000, 2_000_000_000);
    const uids = Array.from({ length: n }, (_, k) => base + k);
    if (!uids.some((u) => used.has(u))) return uids;
  }
}

export function hostOnlineCpus(): number {
  try {
    const s = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
    return s.split(',').reduce((n, r) => { const [a, b] = r.split('-').map(Number); return n + (b === undefined ? 1 : b - a + 1); }, 0);
  } catch { return osCpus().length; }
}

/** Hard RLIMIT_MEMLOCK of this process in kB (null = unlimited); root without CAP_SYS_RESOURCE cannot raise it. */
export function hostMemlockHardKb(): number | null {
  const m = /^Max locked memory\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  if (!m || m[1] === 'unlimited') return null;
  return Math.floor(Number(m[1]) / 1024);
}

/**
 * What the host offers a scenario run natively (src/scenario/skip.ts): its
 * online CPUs (never hotplugged to fit), its hard RLIMIT_MEMLOCK, root, no
 * CPU hotplug and no fault injection (sysrq would crash the machine that
 * runs lockstep). Reads /proc and /sys.
 */
export function hostOffer(): Offer {
  return {
    where: 'the host',
    onlineCpus: hostOnlineCpus(),
    cpusWhy: '(lockstep never hotplugs host CPUs to fit)',
    memlockHardKb: hostMemlockHardKb(),
    cpuHotplug: 'lockstep never hotplugs host CPUs',
    faultInjection: 'VM only, never on the host',
    sysctls: 'writable',
    root: process.getuid?.() === 0 ? true : 'the host runtime needs root (it sets sysctls and switches uids)',
    rootUid: ROOT_UID_WHY,
  };
}

/** The reproducer on the running kernel: nothing to prepare; stop() ends a reproducer still running (SIGTERM: it restores the sysctls). */
export class HostRuntime implements Runtime {
  readonly name = 'host' as const;
  private readonly halt = new StopSwitch();

  /** Nothing to acquire: the reproducer binary is checked where a group runs it. */
  async prepare(): Promise<void> {}

  offer(): Offer {
    return hostOffer();
  }

  async stop(): Promise<void> {
    this.halt.stop();
  }

  async run(request: GroupRequest): Promise<GroupOutcome> {
    const req = this.halt.watch(request);
    // Last line of defence: the matrix SKIPs these, but sysrq here would crash the machine.
    const fault = req.scenarios.find(hasFaultInjection);
    if (fault) throw new Error(`refusing to run fault-injection scenario ${fault.id} on the host kernel`);
    const script = req.scenarios.map((s, k) => toScript(s, req.uids[k])).join('');
    const scriptPath = join(req.logDir, 'script.ops');
    const resultsLog = join(req.logDir, 'results.jsonl');
    await writeFile(scriptPath, script);
    const started = Date.now();
    const parser = new StreamParser();
    let raw = '';
    let stderr = '';
    let bootMs: number | null = null;
    let status: GroupOutcome['status'] = 'ok';
    let detail = '';
    const argv = [REPRO_BINARY, '--script', scriptPath, '--op-timeout', String(req.opTimeoutS)];
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      if (bootMs === null) bootMs = Date.now() - started;
      raw += d;
      for (const ev of parser.push(d)) req.onEvent?.(ev);
    });
    child.stderr.on('data', (d) => { stderr += d; });
    // SIGTERM first: the reproducer restores the host's sysctls on it.
    const stop = (why: GroupOutcome['status'], msg: string): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      status = why; detail = msg;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    };
    const timer = setTimeout(() => stop('timeout', `reproducer still running after ${req.timeoutMs / 1000}s`), req.timeoutMs);
    const onAbort = (): void => stop('aborted', 'interrupted');
    req.signal?.addEventListener('abort', onAbort, { once: true });
    if (req.signal?.aborted) onAbort();
    const code = await new Promise<number | null>((resolve) => {
      child.on('error', (e) => { status = 'error'; detail = `cannot run ${argv[0]}: ${e.message}`; resolve(null); });
      child.on('close', (c) => resolve(c));
    });
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
    // on Ctrl-C the reproducer gets the SIGINT too and may stop before we ask it to
    if (req.signal?.aborted && status === 'ok') { status = 'aborted'; detail = 'interrupted'; }
    await writeFile(resultsLog, raw);
    const stream = parser.end();
    if (status === 'ok' && !stream.done) {
      status = 'error';
      detail = `reproducer exited (code ${code}) and ${describeCut(stream)}${stderr ? `: ${tail(stderr, 3)}` : ''}`;
    }
    return {
      status, detail, stream, faults: [], consoleTail: tail(stderr, 20), consoleLog: null, resultsLog,
      accel: 'none', accelWhy: 'host kernel, no VM', bootMs, wallMs: Date.now() - started, argv,
    };
  }
}
