// What this machine's KVM did the last time a guest was booted on it. On some
// nested hosts /dev/kvm opens, a paused VM starts (the probe passes), and yet
// every real guest hangs in the kernel's decompressor: only a boot tells. The
// first KVM boot that shows no sign of life records it here, so every later
// lockstep process on this machine (until reboot) starts on TCG at once
// instead of paying the first-result deadline again.

import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';

/** The file: /run (a tmpfs cleared at reboot) when writable, else the temp dir; $LOCKSTEP_KVM_VERDICT overrides. */
export function kvmVerdictFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LOCKSTEP_KVM_VERDICT) return env.LOCKSTEP_KVM_VERDICT;
  let dir = tmpdir();
  try { accessSync('/run', constants.W_OK); dir = '/run'; } catch { /* not writable: temp dir */ }
  return join(dir, `lockstep-kvm-verdict-${process.getuid?.() ?? 0}.json`);
}

/** Host kernel, its boot, the CPU model and the emulator: a verdict holds only for the same four. */
export function machineKey(emulator: string): string {
  let bootId = '';
  try { bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); } catch { /* not Linux */ }
  return createHash('sha256').update([release(), bootId, cpus()[0]?.model ?? '', emulator].join('\n')).digest('hex').slice(0, 16);
}

export interface KvmVerdict { key: string; kvm: 'broken'; why: string; at: string }

/** The recorded verdict for this machine key, or null (none, another machine/boot, unreadable). */
export function readKvmVerdict(key: string, file = kvmVerdictFile()): KvmVerdict | null {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as KvmVerdict;
    return v && v.key === key && v.kvm === 'broken' ? v : null;
  } catch { return null; }
}

/** Record that a KVM boot gave no result here (best effort: a read-only place only loses the memory). */
export function recordKvmBroken(key: string, why: string, file = kvmVerdictFile()): void {
  try { writeFileSync(file, JSON.stringify({ key, kvm: 'broken', why, at: new Date().toISOString() } satisfies KvmVerdict) + '\n'); } catch { /* keep going on TCG */ }
}
