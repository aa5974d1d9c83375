// Run static programs (generated reproducers, kselftest binaries) as root in
// one QEMU guest of a kernel lockstep obtained, with lockstep's own boot
// pieces: the base initramfs's busybox (src/image/initramfs.ts), the
// kernel's module archive (the lockstep_aux PMU of a Debian image), a cpio
// written by src/util/cpio.ts and QEMU's argv and results socket
// (src/runner/qemu.ts). The guest boots with as many vCPUs as the largest
// program needs; before each program its init sets the online CPUs to
// exactly that program's count through CPU hotplug (sysfs), runs it under a
// timeout, and frames its stdout on the results channel (ttyS1):
//   @@BEGIN <name>
//   ...the program's stdout...
//   @@END <name> <exit code>
// One boot, programs in the order given.

import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ensureBaseImage } from '../../src/image/initramfs.ts';
import { boot, kvmUsable, type BootResult } from '../../src/runner/qemu.ts';
import { GUEST_MEM_MB } from '../../src/runner/vm.ts';
import { cpioArchive, type CpioEntry } from '../../src/util/cpio.ts';

export interface GuestProgram {
  /** file name in the guest and the frame's name: [A-Za-z0-9_-] */
  name: string;
  /** a static x86_64 ELF */
  binary: Buffer;
  /** online CPUs the program runs with (CPU 0 .. cpus-1 online, the rest offline) */
  cpus: number;
}

export interface ProgramOutcome {
  name: string;
  /** its stdout, CRs of the serial line removed */
  stdout: string;
  /** exit code; 124 or more: killed by the guest's timeout; null: no @@END frame (the guest died first) */
  rc: number | null;
}

export interface GuestRun {
  programs: ProgramOutcome[];
  boot: BootResult;
}

/** The guest's init (busybox sh): modules as lockstep's init.sh loads them, then each program of /guest/list. */
export function guestInit(perProgramTimeoutS: number): string {
  return `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
if [ -f /lockstep/modules ]; then
	for m in $(/bin/busybox cat /lockstep/modules); do
		/bin/busybox insmod "/lib/modules/$m.ko" || /bin/busybox echo "guest-run: insmod $m failed"
	done
fi
out=/dev/ttyS1
# one open of the results port for the whole run: closing a serial tty
# between writes can drop what it has not sent yet
exec 3>$out
/bin/busybox stty raw -echo <&3 2>/dev/null
set_cpus() {
	for c in /sys/devices/system/cpu/cpu[0-9]*; do
		n=\${c##*/cpu}
		[ -f $c/online ] || continue
		if [ $n -lt $1 ]; then v=1; else v=0; fi
		[ "$(/bin/busybox cat $c/online)" = $v ] || /bin/busybox echo $v >$c/online
	done
}
cd /tmp
while read name cpus; do
	set_cpus $cpus
	/bin/busybox echo "@@BEGIN $name" >&3
	/bin/busybox timeout ${perProgramTimeoutS} /guest/$name </dev/null >&3
	/bin/busybox echo "@@END $name $?" >&3
done </guest/list
/bin/busybox echo "@@DONE" >&3
/bin/busybox sync
/bin/busybox sleep 1
/bin/busybox poweroff -f
`;
}

/** Split the results channel's text into the programs' frames (pure). */
export function splitFrames(results: string): ProgramOutcome[] {
  const out: ProgramOutcome[] = [];
  let cur: { name: string; lines: string[] } | null = null;
  for (const line of results.replace(/\r/g, '').split('\n')) {
    const b = /^@@BEGIN (\S+)$/.exec(line);
    const e = /^@@END (\S+) (\d+)$/.exec(line);
    if (b) {
      if (cur) out.push({ name: cur.name, stdout: cur.lines.join('\n'), rc: null });
      cur = { name: b[1]!, lines: [] };
    } else if (e && cur && e[1] === cur.name) {
      out.push({ name: cur.name, stdout: cur.lines.join('\n') + '\n', rc: Number(e[2]) });
      cur = null;
    } else if (cur) cur.lines.push(line);
  }
  if (cur) out.push({ name: cur.name, stdout: cur.lines.join('\n'), rc: null });
  return out;
}

export interface GuestRunOptions {
  vmlinuz: string;
  /** the kernel's module archive (KernelArtifact.initrdExtra) */
  initrdExtra?: string;
  programs: readonly GuestProgram[];
  cacheDir: string;
  /** a private directory for the boot (initrd, socket) */
  workDir: string;
  perProgramTimeoutS?: number;
  timeoutMs: number;
}

/**
 * Boot once and run every program as root, in order. Resolves with each
 * program's framed output (a program missing from the result did not
 * start: the boot's console says why) and the boot itself.
 */
export async function runInGuest(o: GuestRunOptions): Promise<GuestRun> {
  const bad = o.programs.find((p) => !/^[A-Za-z0-9_-]+$/.test(p.name));
  if (bad) throw new Error(`guest program name ${JSON.stringify(bad.name)}: use [A-Za-z0-9_-]`);
  const base = await ensureBaseImage(o.cacheDir);
  const entries: CpioEntry[] = [
    { name: 'guest', kind: 'dir', perm: 0o755 },
    { name: 'guest/init', kind: 'file', perm: 0o755, data: Buffer.from(guestInit(o.perProgramTimeoutS ?? 900)) },
    { name: 'guest/list', kind: 'file', perm: 0o644, data: Buffer.from(o.programs.map((p) => `${p.name} ${p.cpus}\n`).join('')) },
    ...o.programs.map((p): CpioEntry => ({ name: `guest/${p.name}`, kind: 'file', perm: 0o755, data: p.binary })),
  ];
  const parts = [await readFile(base.path), ...(o.initrdExtra ? [await readFile(o.initrdExtra)] : []), gzipSync(cpioArchive(entries), { level: 1 })];
  // each archive at a 4-byte aligned offset, as writeBootInitrd lays them out
  const out: Buffer[] = [];
  let len = 0;
  for (const p of parts) {
    const pad = Buffer.alloc((4 - (len % 4)) % 4);
    out.push(pad, p);
    len += pad.length + p.length;
  }
  const initrd = join(o.workDir, 'initrd');
  await writeFile(initrd, Buffer.concat(out));
  const accel = (await kvmUsable()).ok ? 'kvm' : 'tcg';
  const r = await boot({
    vmlinuz: o.vmlinuz, initrd, cpus: Math.max(...o.programs.map((p) => p.cpus)), memMb: GUEST_MEM_MB, accel,
    timeoutMs: o.timeoutMs, workDir: o.workDir, extraCmdline: 'rdinit=/guest/init',
  });
  // the initrd holds every program: tens of MB, not kept
  await rm(initrd, { force: true });
  return { programs: splitFrames(r.results), boot: r };
}
