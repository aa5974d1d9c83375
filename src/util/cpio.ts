// A minimal writer of "newc" cpio archives, the format the kernel unpacks
// as an initramfs. Pure: builds a Buffer, no I/O. Writing it ourselves means
// no cpio binary, no root (device nodes are just header fields) and a
// byte-for-byte reproducible archive (fixed mtime, inode numbers by order).

export interface CpioEntry {
  /** path inside the archive, without a leading slash: "bin/busybox" */
  name: string;
  kind: 'file' | 'dir' | 'chardev';
  /** permission bits, e.g. 0o755 */
  perm: number;
  data?: Buffer;
  /** chardev only */
  rdev?: { major: number; minor: number };
}

const TYPE_BITS = { file: 0o100000, dir: 0o040000, chardev: 0o020000 } as const;

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function header(ino: number, e: { mode: number; size: number; nlink: number; rdev?: { major: number; minor: number } }, nameLen: number): string {
  return '070701' + [
    ino, e.mode, 0 /* uid */, 0 /* gid */, e.nlink, 0 /* mtime: fixed for reproducibility */, e.size,
    0, 0, e.rdev?.major ?? 0, e.rdev?.minor ?? 0, nameLen, 0,
  ].map(hex8).join('');
}

export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer): void => { parts.push(b); offset += b.length; };
  const pad = (): void => { const p = pad4(offset); if (p) push(Buffer.alloc(p)); };
  const add = (ino: number, name: string, mode: number, data: Buffer, nlink: number, rdev?: CpioEntry['rdev']): void => {
    const nameBuf = Buffer.from(name + '\0');
    push(Buffer.from(header(ino, { mode, size: data.length, nlink, rdev }, nameBuf.length), 'ascii'));
    push(nameBuf);
    pad();
    if (data.length) { push(data); pad(); }
  };
  entries.forEach((e, i) => {
    if (!/^[A-Za-z0-9._/-]+$/.test(e.name) || e.name.startsWith('/') || e.name.split('/').includes('..')) {
      throw new Error(`cpio: bad entry name ${JSON.stringify(e.name)}`);
    }
    add(i + 1, e.name, TYPE_BITS[e.kind] | e.perm, e.kind === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0),
      e.kind === 'dir' ? 2 : 1, e.rdev);
  });
  add(0, 'TRAILER!!!', 0, Buffer.alloc(0), 1);
  return Buffer.concat(parts);
}

/** Parse a newc archive back into entries (tests and `lockstep image inspect`). */
export function cpioList(buf: Buffer): { name: string; mode: number; size: number; data: Buffer }[] {
  const out: { name: string; mode: number; size: number; data: Buffer }[] = [];
  let off = 0;
  for (;;) {
    if (off + 110 > buf.length) throw new Error(`cpio: truncated header at ${off}`);
    const magic = buf.toString('ascii', off, off + 6);
    if (magic !== '070701') throw new Error(`cpio: bad magic ${JSON.stringify(magic)} at ${off}`);
    const field = (k: number): number => parseInt(buf.toString('ascii', off + 6 + k * 8, off + 14 + k * 8), 16);
    const mode = field(1), size = field(6), nameLen = field(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + nameLen - 1);
    let p = nameStart + nameLen; p += pad4(p);
    const data = buf.subarray(p, p + size);
    p += size; p += pad4(p);
    off = p;
    if (name === 'TRAILER!!!') return out;
    out.push({ name, mode, size, data });
  }
}
