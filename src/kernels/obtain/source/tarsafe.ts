// Checking a kernel source tarball before it is unpacked: every entry must
// land inside the tree. The archive is read by node-tar's Parser (the
// maintained, security-hardened tar reader npm itself uses: ustar, GNU long
// names, pax and global pax headers), strictly: any damage is an error. The
// per-entry rule is ours (tarEntryProblem). GNU tar refuses ".." members and
// strips leading "/" by itself, but then fails half-way with its own message
// and leaves symlinks pointing out of the tree; checking first gives one
// clear error instead.

import { open } from 'node:fs/promises';
import { Parser, type ReadEntry } from 'tar';
import { spawnTool, ToolError } from '../../../util/exec.ts';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo' | 'other';

export interface TarEntry {
  name: string;
  type: TarEntryType;
  /** symlink / hardlink target ('' otherwise) */
  link: string;
  size: number;
}

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

const TYPES: Record<string, TarEntryType> = {
  File: 'file', OldFile: 'file', ContiguousFile: 'file', Directory: 'dir', SymbolicLink: 'symlink', Link: 'hardlink',
  CharacterDevice: 'chardev', BlockDevice: 'blockdev', FIFO: 'fifo',
};

const toEntry = (e: ReadEntry): TarEntry => {
  const type = TYPES[e.type] ?? 'other';
  return { name: e.path, type, link: type === 'symlink' || type === 'hardlink' ? (e.linkpath ?? '') : '', size: e.size ?? 0 };
};

/**
 * A streaming scan of (uncompressed or gzip'd) tar bytes: write chunks with
 * `push`, then `end()` resolves once every entry was seen. `onEntry` sees
 * each entry (long names and pax overrides applied, ignored and unknown
 * entries included), entry data is skipped. Damage (bad checksum, truncated
 * archive, not a tar) rejects `end()` with a TarFormatError.
 */
export class TarScanner {
  private readonly parser: Parser;
  private failure: TarFormatError | null = null;
  private readonly done: Promise<void>;
  private bytes = 0;
  entries = 0;

  constructor(onEntry: (e: TarEntry) => void) {
    this.parser = new Parser({ strict: true });
    const see = (e: ReadEntry): void => {
      this.entries++;
      onEntry(toEntry(e));
      e.resume();
    };
    this.parser.on('entry', see);
    this.parser.on('ignoredEntry', (e: ReadEntry) => { if (!e.meta) see(e); });
    this.done = new Promise((resolve) => {
      this.parser.on('error', (e: Error) => { this.failure ??= new TarFormatError(e.message); resolve(); });
      this.parser.on('close', () => resolve());
    });
  }

  /** Feed the next chunk (any size). */
  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.failure) this.parser.write(chunk);
  }

  /** After the last chunk: resolves when the archive was whole, rejects with TarFormatError otherwise. */
  async end(): Promise<void> {
    if (!this.failure) this.parser.end();
    await this.done;
    if (this.failure) throw this.failure;
    // node-tar lets a partial last header block pass; a tar is whole 512-byte blocks
    if (this.bytes % 512 !== 0) throw new TarFormatError(`the tar data ends in the middle of a 512-byte block after ${this.bytes} bytes (truncated archive)`);
    if (this.entries === 0) throw new TarFormatError('no tar entry found (not a tar archive, or empty)');
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

/** Every entry of a whole archive in memory, fed in chunks of `chunk` bytes (0 = at once). */
export async function tarEntries(data: Buffer, chunk = 0): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  const s = new TarScanner((e) => out.push(e));
  if (!chunk) s.push(data);
  else for (let at = 0; at < data.length; at += chunk) s.push(data.subarray(at, at + chunk));
  await s.end();
  return out;
}

/** Every problem of a whole archive (first `max` of them), for tests and small archives. */
export async function tarProblems(data: Buffer, strip = 0, max = 20): Promise<string[]> {
  return (await tarEntries(data)).map((e) => tarEntryProblem(e, strip)).filter((p): p is string => p !== null).slice(0, max);
}

/**
 * Scan a (possibly compressed) tarball on disk, entry by entry, without
 * unpacking it: the problems of its first `max` bad entries, [] when every
 * entry stays inside the tree. The decompressor is chosen from the magic
 * bytes (xz, gzip, bzip2, zstd) and stopped when `signal` aborts. Throws
 * TarFormatError for a damaged archive.
 */
export async function tarFileProblems(path: string, strip = 0, max = 20, signal?: AbortSignal): Promise<string[]> {
  const fh = await open(path, 'r');
  const magic = Buffer.alloc(6);
  await fh.read(magic, 0, 6, 0);
  await fh.close();
  const tool =
    magic.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) ? 'xz'
    : magic[0] === 0x1f && magic[1] === 0x8b ? 'gzip'
    : magic.subarray(0, 3).toString('latin1') === 'BZh' ? 'bzip2'
    : magic.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])) ? 'zstd'
    : 'cat';
  const out: string[] = [];
  const scanner = new TarScanner((e) => { const p = tarEntryProblem(e, strip); if (p && out.length < max) out.push(p); });
  const { child, done } = spawnTool(tool, tool === 'cat' ? [path] : ['-dc', path], { install: `apt-get install ${tool === 'xz' ? 'xz-utils' : tool}`, signal });
  child.stdout!.on('data', (d: Buffer) => scanner.push(d));
  try {
    await done;
  } catch (e) {
    if (e instanceof ToolError && !e.canceled) throw new TarFormatError(`${tool} could not read ${path}: ${e.message}`);
    throw e;
  }
  await scanner.end();
  return out;
}
