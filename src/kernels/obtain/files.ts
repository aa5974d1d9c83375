// Facts read from files of a kernel artifact: content hash and the x86 boot
// header (Documentation/arch/x86/boot.rst: "HdrS" at 0x202, kernel_version
// at 0x20e). No writes.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

/** Does `p` exist (any type)? */
export const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

/** sha256 of a file's content, lower-case hex; streams (constant memory). Throws on a read error. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** x86 boot protocol: "HdrS" at 0x202 marks a bzImage. */
export async function isBzImage(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0x202);
    return bytesRead === 4 && b.toString('latin1') === 'HdrS';
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
