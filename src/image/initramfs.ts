// The guest image: a cached base initramfs (busybox + reproducer + init) and
// a tiny per-boot archive carrying the op script, appended to it.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { MissingDependencyError } from '../util/errors.ts';
import { cpioArchive, type CpioEntry } from './cpio.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const INIT_SCRIPT = join(ROOT, 'vm-images', 'init.sh');
export const REPRO_BINARY = join(ROOT, 'harness', 'build', 'lockstep-repro');
export const BUSYBOX = process.env.LOCKSTEP_BUSYBOX ?? '/bin/busybox';

export interface BaseImage {
  path: string;
  sha256: string;
  reproSha256: string;
  bytes: number;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Check a binary exists and is statically linked (no PT_INTERP), since the guest has no libc. */
async function readStaticBinary(path: string, what: string, fix: string): Promise<Buffer> {
  if (!existsSync(path)) throw new MissingDependencyError(`${what} (${path})`, fix);
  const b = await readFile(path);
  if (b.subarray(0, 4).toString('latin1') !== '\x7fELF') throw new MissingDependencyError(`${what} (${path} is not an ELF binary)`, fix);
  if (b.includes(Buffer.from('/lib64/ld-linux'))) throw new MissingDependencyError(`a static ${what} (${path} is dynamically linked)`, fix);
  return b;
}

export async function reproducerBinary(): Promise<Buffer> {
  return readStaticBinary(REPRO_BINARY, 'the reproducer binary', 'run `make -C harness` (needs gcc and libc6-dev), or `npm run setup`');
}

export async function ensureBaseImage(cacheDir: string): Promise<BaseImage> {
  const busyboxFix = process.env.LOCKSTEP_BUSYBOX
    ? `LOCKSTEP_BUSYBOX=${process.env.LOCKSTEP_BUSYBOX} must name a static busybox binary; unset it to use /bin/busybox`
    : 'apt-get install busybox-static (it provides a static /bin/busybox)';
  const busybox = await readStaticBinary(BUSYBOX, 'busybox-static', busyboxFix);
  const repro = await reproducerBinary();
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

/** Base image followed by the script archive, as one file QEMU's -initrd can take. */
export async function writeBootInitrd(base: BaseImage, script: string, args: readonly string[], out: string): Promise<void> {
  const b = await readFile(base.path);
  // The kernel only looks for an uncompressed archive at a 4-byte aligned
  // offset after a compressed one, and skips zero padding in between.
  const pad = Buffer.alloc((4 - (b.length % 4)) % 4);
  await writeFile(out, Buffer.concat([b, pad, scriptArchive(script, args)]));
}
