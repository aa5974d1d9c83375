// Facts read from files of a kernel artifact: content hash, the x86 boot
// header (Documentation/arch/x86/boot.rst: "HdrS" at 0x202, kernel_version
// at 0x20e) and the arm64 Image header (Documentation/arm64/booting.rst:
// magic "ARM\x64" at 0x38). No writes.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import type { Arch } from '../types.ts';

/** Does `p` exist (any type)? */
export const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

/** sha256 of a file's content, lower-case hex; streams (constant memory). Throws on a read error. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

const memoHashes = new Map<string, Promise<string>>();

/**
 * sha256File(path), hashed once per process while the file keeps its path,
 * size and mtime: a run asks again for the same kernel image (each boot
 * group's snapshot key) and the same source tarball (each variant's key).
 * Throws when the file cannot be stat'ed or read.
 */
export async function sha256FileOnce(path: string): Promise<string> {
  const st = await stat(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  let p = memoHashes.get(key);
  if (!p) memoHashes.set(key, (p = sha256File(path)));
  return p;
}

/** The 4 bytes at `offset` of a file, as latin1 ('' when the file is shorter). */
async function bytesAt(path: string, offset: number): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, offset);
    return bytesRead === 4 ? b.toString('latin1') : '';
  } finally {
    await fh.close();
  }
}

/** x86 boot protocol: "HdrS" at 0x202 marks a bzImage. */
export const isBzImage = async (path: string): Promise<boolean> => (await bytesAt(path, 0x202)) === 'HdrS';

/** arm64 boot protocol: the Image header's magic "ARM\x64" (0x644d5241 LE) at 0x38. */
export const isArm64Image = async (path: string): Promise<boolean> => (await bytesAt(path, 0x38)) === 'ARM\x64';

/** The same check on a file's bytes, which may be gzipped (Debian ships the arm64 Image as a gzipped vmlinuz). */
export function isArm64ImageData(b: Buffer): boolean {
  let img = b;
  if (b[0] === 0x1f && b[1] === 0x8b) {
    try { img = gunzipSync(b); } catch { return false; }
  }
  return img.length >= 0x3c && img.toString('latin1', 0x38, 0x3c) === 'ARM\x64';
}

/** Is `path` a bootable kernel image of `arch` (x86_64: a bzImage, arm64: an Image)? Throws when it cannot be read. */
export const isKernelImage = (path: string, arch: Arch): Promise<boolean> => (arch === 'arm64' ? isArm64Image(path) : isBzImage(path));

/**
 * The kernel's banner from an uncompressed arm64 Image: the text after the
 * first "Linux version " followed by a digit, to the end of its line
 * (init/version.c linux_banner), e.g. "6.1.192-ls12345678 (lockstep@lockstep)
 * (aarch64-linux-gnu-gcc ...) #1 SMP ...". Reads the file in 1 MiB chunks.
 * Null when absent.
 */
export async function imageBanner(path: string): Promise<string | null> {
  const needle = Buffer.from('Linux version ', 'latin1');
  const fh = await open(path, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    let carry = Buffer.alloc(0);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
      pos += bytesRead;
      const eof = bytesRead < chunk.length;
      const buf = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      // keep the tail a needle may start in; or, when a match's line runs past the buffer, the match itself
      let keepFrom = Math.max(0, buf.length - needle.length);
      for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + 1)) {
        const rest = buf.subarray(i + needle.length, i + needle.length + 512);
        const end = rest.findIndex((c) => c === 0x0a || c === 0);
        if (end < 0 && rest.length < 512 && !eof) {
          keepFrom = i;
          break;
        }
        const line = rest.toString('latin1', 0, end >= 0 ? end : rest.length).trim();
        if (/^[0-9][\x20-\x7e]*$/.test(line)) return line;
      }
      if (eof) return null;
      carry = Buffer.from(buf.subarray(keepFrom));
    }
  } finally {
    await fh.close();
  }
}

/**
 * The kernel's own version string from a bzImage header (setup header field
 * kernel_version at 0x20e: offset - 0x200 of a NUL-terminated string), e.g.
 * "6.1.0-54-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...". Null when absent.
 */
export async function bzImageVersionString(path: string): Promise<string | null> {
  const fh = await open(path, 'r');
  try {
    const hdr = Buffer.alloc(0x210);
    const { bytesRead } = await fh.read(hdr, 0, hdr.length, 0);
    if (bytesRead < hdr.length || hdr.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
    const off = hdr.readUInt16LE(0x20e);
    if (off === 0) return null;
    const s = Buffer.alloc(256);
    const r = await fh.read(s, 0, s.length, off + 0x200);
    const text = s.toString('latin1', 0, r.bytesRead);
    const end = text.indexOf('\0');
    const v = (end >= 0 ? text.slice(0, end) : text).trim();
    return /^[0-9][\x20-\x7e]*$/.test(v) ? v : null;
  } finally {
    await fh.close();
  }
}
