// The rootfs archive `docker import` turns into an image: directories,
// regular files and symlinks, written by tar-stream (a maintained library).
// Deterministic: the same entries give the same bytes (mtime 0, owner
// root), so the image tag can be a hash of the archive.

import { pack, extract } from 'tar-stream';

export type TarEntry =
  | { type: 'dir'; name: string; mode: number }
  | { type: 'file'; name: string; mode: number; data: Uint8Array }
  | { type: 'symlink'; name: string; target: string };

const checkName = (name: string): void => {
  if (name.startsWith('/') || name.split('/').includes('..')) throw new RangeError(`tar: unsafe entry name ${JSON.stringify(name)}`);
};

/** The ustar archive of `entries`, in order. Throws RangeError for an absolute name or one with "..". */
export async function tarArchive(entries: readonly TarEntry[]): Promise<Buffer> {
  for (const e of entries) checkName(e.name);
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const ended = new Promise<void>((resolve, reject) => { p.on('end', resolve); p.on('error', reject); });
  const common = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: new Date(0) };
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.type === 'dir') p.entry({ ...common, name: e.name.endsWith('/') ? e.name : `${e.name}/`, type: 'directory', mode: e.mode }, cb);
      else if (e.type === 'symlink') p.entry({ ...common, name: e.name, type: 'symlink', linkname: e.target, mode: 0o777 }, cb);
      else p.entry({ ...common, name: e.name, type: 'file', mode: e.mode }, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength), cb);
    });
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** Read back the entries' names, types, sizes and link targets (for tests and for checking an archive). */
export async function tarList(buf: Buffer): Promise<{ name: string; type: string; size: number; target: string }[]> {
  const out: { name: string; type: string; size: number; target: string }[] = [];
  const x = extract();
  x.on('entry', (h, stream, next) => {
    out.push({ name: h.name, type: h.type ?? 'file', size: h.size ?? 0, target: h.linkname ?? '' });
    stream.on('end', next);
    stream.resume();
  });
  const done = new Promise<void>((resolve, reject) => { x.on('finish', resolve); x.on('error', reject); });
  x.end(buf);
  await done;
  return out;
}
