// Checking a kernel source tarball before it is unpacked: every entry must
// land inside the tree. Pure: a streaming scanner of tar headers (ustar,
// GNU long names, pax path/linkpath) fed with the decompressed bytes, and a
// per-entry check. GNU tar refuses ".." members and strips leading "/" by
// itself, but then fails half-way with its own message and leaves symlinks
// pointing out of the tree; checking first gives one clear error instead.

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo' | 'other';

export interface TarEntry {
  name: string;
  type: TarEntryType;
  /** symlink / hardlink target ('' otherwise) */
  link: string;
  size: number;
}

const BLOCK = 512;

const TYPES: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'chardev', '4': 'blockdev', '5': 'dir', '6': 'fifo',
};

/** A NUL-terminated header field. */
const field = (b: Buffer, off: number, len: number): string => {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul < 0 ? s : s.subarray(0, nul)).toString('utf8');
};

/** Octal (possibly space/NUL padded) or GNU base-256 number; NaN when neither. */
function tarNumber(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    let n = b[off] & 0x7f;
    for (let k = 1; k < len; k++) n = n * 256 + b[off + k];
    return n;
  }
  const s = field(b, off, len).trim();
  return /^[0-7]*$/.test(s) ? (s === '' ? 0 : parseInt(s, 8)) : NaN;
}

/** Records of a pax extended header ("LEN key=value\n" ...). */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const sp = data.indexOf(0x20, at);
    if (sp < 0) break;
    const len = Number(data.subarray(at, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || at + len > data.length) break;
    const rec = data.subarray(sp + 1, at + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at += len;
  }
  return out;
}

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

/**
 * Feed decompressed tar bytes in any chunking; `onEntry` sees each entry
 * (with long names and pax overrides applied) as soon as its header is read.
 * Entry data is skipped without being kept, so memory stays small.
 */
export class TarScanner {
  private buf: Buffer = Buffer.alloc(0);
  /** bytes of entry data (plus padding) still to skip */
  private skip = 0;
  /** a pending GNU long name/link or pax header whose data we collect */
  private collecting: { kind: 'L' | 'K' | 'x' | 'g'; left: number; pad: number; parts: Buffer[] } | null = null;
  private next: { name?: string; link?: string } = {};
  private zeroBlocks = 0;
  ended = false;
  entries = 0;

  constructor(private readonly onEntry: (e: TarEntry) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    while (!this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.buf.length - at);
        this.skip -= n; at += n;
        if (this.skip > 0) break;
        continue;
      }
      if (this.collecting) {
        const c = this.collecting;
        const n = Math.min(c.left, this.buf.length - at);
        c.parts.push(this.buf.subarray(at, at + n));
        c.left -= n; at += n;
        if (c.left > 0) break;
        this.finishCollect(Buffer.concat(c.parts));
        this.skip = c.pad;
        this.collecting = null;
        continue;
      }
      if (this.buf.length - at < BLOCK) break;
      this.header(this.buf.subarray(at, at + BLOCK));
      at += BLOCK;
    }
    // keep only the unread tail (copied, so the caller's chunk can go)
    this.buf = Buffer.from(this.buf.subarray(at));
  }

  /** After the last chunk: a tar must end with its zero blocks (or at least not mid-entry). */
  end(): void {
    if (this.ended) return;
    if (this.skip > 0 || this.collecting || this.buf.length) throw new TarFormatError('the tar data ends in the middle of an entry (truncated archive)');
  }

  private finishCollect(data: Buffer): void {
    const kind = this.collecting!.kind;
    const text = (): string => { const nul = data.indexOf(0); return (nul < 0 ? data : data.subarray(0, nul)).toString('utf8'); };
    if (kind === 'L') this.next.name = text();
    else if (kind === 'K') this.next.link = text();
    else if (kind === 'x') {
      const r = paxRecords(data);
      if (r.has('path')) this.next.name = r.get('path');
      if (r.has('linkpath')) this.next.link = r.get('linkpath');
    }
    // 'g' (global pax header): applies to all later entries; kernel tarballs
    // carry only a comment there (the git commit), so it is not applied.
  }

  private header(h: Buffer): void {
    if (h.every((x) => x === 0)) {
      if (++this.zeroBlocks === 2) this.ended = true;
      return;
    }
    this.zeroBlocks = 0;
    let sum = 0;
    for (let k = 0; k < BLOCK; k++) sum += k >= 148 && k < 156 ? 0x20 : h[k];
    const stored = tarNumber(h, 148, 8);
    if (stored !== sum) throw new TarFormatError(`header ${this.entries + 1}: bad checksum (not a tar archive, or damaged)`);
    const size = tarNumber(h, 124, 12);
    if (!Number.isFinite(size) || size < 0) throw new TarFormatError(`header ${this.entries + 1}: bad size field`);
    const flag = String.fromCharCode(h[156]);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g') {
      if (size > 1 << 20) throw new TarFormatError(`header ${this.entries + 1}: a ${size}-byte ${flag} header is not a name`);
      this.collecting = { kind: flag, left: size, pad, parts: [] };
      return;
    }
    const magic = field(h, 257, 6);
    // POSIX ustar keeps a name prefix at 345; GNU tar ("ustar  ") keeps times there
    const prefix = magic === 'ustar' && h[345] !== 0 ? field(h, 345, 155) : '';
    const base = field(h, 0, 100);
    const name = this.next.name ?? (prefix ? `${prefix}/${base}` : base);
    const link = this.next.link ?? field(h, 157, 100);
    this.next = {};
    this.entries++;
    const type = TYPES[flag] ?? 'other';
    this.onEntry({ name, type, link: type === 'symlink' || type === 'hardlink' ? link : '', size });
    // hard links, symlinks, dirs and devices carry no data whatever size says (ustar)
    this.skip = type === 'file' || type === 'other' ? size + pad : 0;
  }
}

/** Path components of a tar member name ("./" and empty components dropped). */
const parts = (p: string): string[] => p.split('/').filter((x) => x !== '' && x !== '.');

/**
 * Why `e` would land outside the tree when unpacked with
 * `--strip-components=strip`, or null when it is safe. Symlinks may point
 * anywhere inside the tree (the kernel has many relative ones), never out.
 */
export function tarEntryProblem(e: TarEntry, strip = 0): string | null {
  const show = JSON.stringify(e.name.length > 120 ? `${e.name.slice(0, 117)}...` : e.name);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(e.name) || /[\u0000-\u001f\u007f]/.test(e.link)) return `entry ${show} has a control character in its name or link`;
  if (e.name.startsWith('/')) return `entry ${show} is an absolute path`;
  const p = parts(e.name);
  if (p.includes('..')) return `entry ${show} has a ".." component`;
  if (e.type === 'chardev' || e.type === 'blockdev' || e.type === 'fifo') return `entry ${show} is a device or fifo (a source tree has none)`;
  if (e.type === 'hardlink') {
    if (e.link.startsWith('/') || parts(e.link).includes('..')) return `hard link ${show} points at ${JSON.stringify(e.link)}, outside the tree`;
  }
  if (e.type === 'symlink') {
    if (e.link.startsWith('/')) return `symlink ${show} points at the absolute path ${JSON.stringify(e.link)}`;
    // resolve the target from the link's own directory, after stripping
    const at = p.slice(strip, -1);
    for (const c of parts(e.link)) {
      if (c === '..') {
        if (at.length === 0) return `symlink ${show} -> ${JSON.stringify(e.link)} leads out of the tree`;
        at.pop();
      } else at.push(c);
    }
  }
  return null;
}

/** Every problem of a whole archive (first `max` of them), for tests and small archives. */
export function tarProblems(data: Buffer, strip = 0, max = 20): string[] {
  const out: string[] = [];
  const s = new TarScanner((e) => { const p = tarEntryProblem(e, strip); if (p && out.length < max) out.push(p); });
  s.push(data);
  s.end();
  return out;
}

/**
 * Scan a (possibly compressed) tarball on disk, entry by entry, without
 * unpacking it: the problems of its first `max` bad entries, [] when every
 * entry stays inside the tree. The decompressor is chosen from the magic
 * bytes and run with an argument array (never a shell).
 */
export async function tarFileProblems(path: string, strip = 0, max = 20): Promise<string[]> {
  const { open } = await import('node:fs/promises');
  const { spawn } = await import('node:child_process');
  const fh = await open(path, 'r');
  const magic = Buffer.alloc(6);
  await fh.read(magic, 0, 6, 0);
  await fh.close();
  const tool =
    magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) ? ['xz', '-dc', path]
    : magic[0] === 0x1f && magic[1] === 0x8b ? ['gzip', '-dc', path]
    : magic.subarray(0, 3).toString('latin1') === 'BZh' ? ['bzip2', '-dc', path]
    : magic.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])) ? ['zstd', '-dc', path]
    : ['cat', path];
  const out: string[] = [];
  const scanner = new TarScanner((e) => { const p = tarEntryProblem(e, strip); if (p && out.length < max) out.push(p); });
  await new Promise<void>((resolve, reject) => {
    const child = spawn(tool[0], tool.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d: Buffer) => {
      try { scanner.push(d); } catch (e) { child.kill(); reject(e); }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0 && !out.length) return reject(new TarFormatError(`${tool[0]} could not read ${path}: ${err.trim() || `exit ${code}`}`));
      try { scanner.end(); } catch (e) { return reject(e); }
      resolve();
    });
  });
  return out;
}
