// A minimal ustar writer: what `docker import` needs to turn a handful of
// files into an image (directories, regular files, symlinks). Pure and
// deterministic: the same entries give the same bytes (mtime fixed, owner
// root), so the image tag can be a hash of the archive.

export type TarEntry =
  | { type: 'dir'; name: string; mode: number }
  | { type: 'file'; name: string; mode: number; data: Uint8Array }
  | { type: 'symlink'; name: string; target: string };

const BLOCK = 512;

function octal(n: number, width: number): string {
  // width - 1 digits and a NUL, as ustar readers expect
  const s = n.toString(8);
  if (s.length > width - 1) throw new RangeError(`tar: ${n} does not fit in ${width - 1} octal digits`);
  return s.padStart(width - 1, '0') + '\0';
}

function put(h: Buffer, off: number, width: number, s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > width) throw new RangeError(`tar: field ${JSON.stringify(s)} longer than ${width} bytes`);
  b.copy(h, off);
}

function header(e: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const name = e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
  if (name.startsWith('/') || name.split('/').includes('..')) throw new RangeError(`tar: unsafe entry name ${JSON.stringify(name)}`);
  put(h, 0, 100, name);
  put(h, 100, 8, octal(e.type === 'symlink' ? 0o777 : e.mode, 8));
  put(h, 108, 8, octal(0, 8)); // uid
  put(h, 116, 8, octal(0, 8)); // gid
  put(h, 124, 12, octal(size, 12));
  put(h, 136, 12, octal(0, 12)); // mtime: fixed, for a reproducible archive
  put(h, 148, 8, '        '); // checksum placeholder: spaces while summing
  put(h, 156, 1, e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0');
  if (e.type === 'symlink') put(h, 157, 100, e.target);
  put(h, 257, 6, 'ustar\0');
  put(h, 263, 2, '00');
  put(h, 265, 32, 'root');
  put(h, 297, 32, 'root');
  let sum = 0;
  for (const b of h) sum += b;
  put(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** The archive: one header (+ data padded to 512) per entry, then two zero blocks. */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) : Buffer.alloc(0);
    parts.push(header(e, data.length));
    if (data.length) {
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** Read back the entry names and sizes (for tests and for checking an archive). */
export function tarList(buf: Buffer): { name: string; type: string; size: number; target: string }[] {
  const out: { name: string; type: string; size: number; target: string }[] = [];
  let off = 0;
  const str = (o: number, w: number): string => buf.subarray(o, o + w).toString('utf8').replace(/\0.*$/s, '');
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let k = 0; k < BLOCK; k++) sum += k >= 148 && k < 156 ? 32 : h[k]!;
    if (parseInt(str(off + 148, 8).trim(), 8) !== sum) throw new Error(`tar: bad checksum at offset ${off}`);
    const size = parseInt(str(off + 124, 12), 8);
    out.push({ name: str(off, 100), type: str(off + 156, 1), size, target: str(off + 157, 100) });
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}
