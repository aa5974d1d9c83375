// The guest image: a cached base initramfs (busybox + reproducer + init) and
// a tiny per-boot archive carrying the op script, appended to it.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ARCH_FACTS, type Arch } from '../kernels/arch.ts';
import { MissingDependencyError } from '../util/errors.ts';
import { guestBusybox } from './busybox.ts';
import { cpioArchive, type CpioEntry } from '../util/cpio.ts';
import { repoPath } from '../util/repo-root.ts';

export { BUSYBOX } from './busybox.ts';

export const INIT_SCRIPT = repoPath('vm-images', 'init.sh');
export const REPRO_BINARY = repoPath('harness', 'build', 'lockstep-repro');
/** The reproducer built for `arch` (harness/Makefile: lockstep-repro, lockstep-repro-arm64). */
export const reproBinaryOf = (arch: Arch): string => join(dirname(REPRO_BINARY), ARCH_FACTS[arch].reproBinary);


export interface BaseImage {
  path: string;
  sha256: string;
  reproSha256: string;
  bytes: number;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/**
 * Read a binary the guest runs: it must exist, be ELF for `arch` and be
 * statically linked (no program interpreter such as /lib64/ld-linux-x86-64.so.2
 * or /lib/ld-linux-aarch64.so.1), since the guest has no libc. Throws
 * MissingDependencyError naming the path, what is wrong and `fix`.
 */
async function readStaticBinary(path: string, what: string, fix: string, arch: Arch = 'x86_64'): Promise<Buffer> {
  if (!existsSync(path)) throw new MissingDependencyError(`${what} (${path})`, fix);
  const b = await readFile(path);
  if (b.subarray(0, 4).toString('latin1') !== '\x7fELF') throw new MissingDependencyError(`${what} (${path} is not an ELF binary)`, fix);
  if (b.length < 20 || b.readUInt16LE(18) !== ARCH_FACTS[arch].elfMachine) throw new MissingDependencyError(`${what} for ${arch} (${path} is ELF for machine ${b.length >= 20 ? b.readUInt16LE(18) : '?'}, not ${ARCH_FACTS[arch].elfMachine})`, fix);
  if (/\/ld-linux[-.a-z0-9_]*\.so/.test(b.subarray(0, 4096).toString('latin1'))) throw new MissingDependencyError(`a static ${what} (${path} is dynamically linked)`, fix);
  return b;
}

/** The reproducer binary of `arch` (static, checked). Throws MissingDependencyError with the make/apt command that provides it. */
export async function reproducerBinary(arch: Arch = 'x86_64'): Promise<Buffer> {
  const fix = arch === 'x86_64'
    ? 'run `make -C harness` (needs gcc and libc6-dev), or `npm run setup`'
    : 'apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross, then `make -C harness arm64` (or `npm run setup`)';
  return readStaticBinary(reproBinaryOf(arch), `the ${arch} reproducer binary`, fix, arch);
}

export interface BaseImageOptions {
  /** the guest's architecture (default x86_64) */
  arch?: Arch;
  log?: (m: string) => void;
  signal?: AbortSignal;
}

/**
 * The cached base initramfs of `arch` (busybox, reproducer, init), built
 * when missing or damaged; its sha256 names it. An arm64 image fetches
 * Debian's busybox-static:arm64 once (src/image/busybox.ts). Throws
 * MissingDependencyError naming a missing or unfit binary and its fix.
 */
export async function ensureBaseImage(cacheDir: string, o: BaseImageOptions = {}): Promise<BaseImage> {
  const arch = o.arch ?? 'x86_64';
  const bb = await guestBusybox(arch, { cacheDir, log: o.log ?? (() => {}), signal: o.signal });
  const busybox = await readStaticBinary(bb.path, `busybox-static`, bb.fix, arch);
  const repro = await reproducerBinary(arch);
  const init = await readFile(INIT_SCRIPT);
  const dir = (name: string): CpioEntry => ({ name, kind: 'dir', perm: 0o755 });
  const entries: CpioEntry[] = [
    dir('bin'), dir('dev'), dir('proc'), dir('sys'), dir('tmp'), dir('lockstep'),
    { name: 'dev/console', kind: 'chardev', perm: 0o600, rdev: { major: 5, minor: 1 } },
    { name: 'init', kind: 'file', perm: 0o755, data: init },
    { name: 'bin/busybox', kind: 'file', perm: 0o755, data: busybox },
    { name: 'bin/sh', kind: 'file', perm: 0o755, data: Buffer.from('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n') },
    { name: 'lockstep/repro', kind: 'file', perm: 0o755, data: repro },
  ];
  // The archive is byte-for-byte reproducible, so its hash names it and a
  // cached copy is checked against it: a damaged image must never boot
  // (a flipped byte in the reproducer could measure wrong and still MATCH).
  const cpio = cpioArchive(entries);
  const key = sha256(cpio);
  const path = join(cacheDir, 'initramfs', `${key}.cpio.gz`);
  const reproSha256 = sha256(repro);
  if (existsSync(path)) {
    const gz = await readFile(path);
    let ok = false;
    try { ok = sha256(gunzipSync(gz)) === key; } catch { /* truncated or corrupt gzip */ }
    if (ok) return { path, sha256: key, reproSha256, bytes: gz.length };
  }
  const gz = gzipSync(cpio, { level: 6 });
  await mkdir(dirname(path), { recursive: true });
  // Written atomically (temp name, fsync, rename): a crash never leaves a half image in the cache.
  await writeFileAtomic(path, gz);
  return { path, sha256: key, reproSha256, bytes: gz.length };
}

/** The per-boot archive: the op script and extra reproducer arguments. */
export function scriptArchive(script: string, args: readonly string[] = []): Buffer {
  for (const a of args) if (!/^[A-Za-z0-9=._-]+$/.test(a)) throw new Error(`bad reproducer argument ${JSON.stringify(a)}`);
  return cpioArchive([
    { name: 'lockstep', kind: 'dir', perm: 0o755 },
    { name: 'lockstep/script.ops', kind: 'file', perm: 0o644, data: Buffer.from(script) },
    { name: 'lockstep/args', kind: 'file', perm: 0o644, data: Buffer.from(args.join(' ') + '\n') },
  ]);
}

/**
 * Base image followed by `extra` (a kernel's modules cpio, when given) and
 * the script archive, as one file QEMU's -initrd can take.
 */
export async function writeBootInitrd(base: BaseImage, script: string, args: readonly string[], out: string, extra?: string): Promise<void> {
  const parts: Buffer[] = [await readFile(base.path)];
  if (extra !== undefined) parts.push(await readFile(extra));
  parts.push(scriptArchive(script, args));
  // The kernel only looks for an uncompressed archive at a 4-byte aligned
  // offset after a compressed one, and skips zero padding in between.
  const out4: Buffer[] = [];
  let len = 0;
  for (const p of parts) {
    const pad = Buffer.alloc((4 - (len % 4)) % 4);
    out4.push(pad, p);
    len += pad.length + p.length;
  }
  await writeFile(out, Buffer.concat(out4));
}
