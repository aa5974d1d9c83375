// The container image: a rootfs of busybox-static and the static reproducer,
// made here as a tar archive and handed to `docker import` (the engine's
// POST /images/create?fromSrc=-). No registry is involved. The tag is a hash
// of the archive, so an image is built once per reproducer/busybox pair and
// found again by inspect afterwards.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { BUSYBOX, reproducerBinary } from '../image/initramfs.ts';
import { MissingDependencyError } from '../util/errors.ts';
import { type TarEntry, tarArchive } from './tar.ts';

export const IMAGE_REPO = 'lockstep-repro';
/** Where the reproducer sits inside the image. */
export const REPRO_IN_IMAGE = '/bin/lockstep-repro';

/** The rootfs entries (pure): the two binaries and the mount points the runtime fills. */
export function rootfsEntries(busybox: Uint8Array, repro: Uint8Array): TarEntry[] {
  const dirs = ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'lockstep'];
  return [
    ...dirs.map((name): TarEntry => ({ type: 'dir', name, mode: name === 'tmp' ? 0o1777 : 0o755 })),
    { type: 'file', name: 'bin/busybox', mode: 0o755, data: busybox },
    { type: 'symlink', name: 'bin/sh', target: 'busybox' },
    { type: 'file', name: 'bin/lockstep-repro', mode: 0o755, data: repro },
    // The reproducer switches to numeric uids; these only make `ps`/`id` in the image readable.
    { type: 'file', name: 'etc/passwd', mode: 0o644, data: Buffer.from('root:x:0:0:root:/:/bin/sh\n') },
    { type: 'file', name: 'etc/group', mode: 0o644, data: Buffer.from('root:x:0:\n') },
  ];
}

async function staticBusybox(path: string): Promise<Buffer> {
  const fix = 'apt-get install busybox-static (it provides a static /bin/busybox), or set LOCKSTEP_BUSYBOX';
  if (!existsSync(path)) throw new MissingDependencyError(`busybox-static (${path})`, fix);
  const b = await readFile(path);
  if (b.subarray(0, 4).toString('latin1') !== '\x7fELF' || b.includes(Buffer.from('/lib64/ld-linux'))) {
    throw new MissingDependencyError(`a static busybox (${path} is not a static ELF binary)`, fix);
  }
  return b;
}

export interface ReproImage {
  /** "lockstep-repro:<16 hex>" */
  ref: string;
  id: string;
  /** true when this call imported it */
  built: boolean;
  reproSha256: string;
}

/** Find the image for the current reproducer, or import it. */
export async function ensureReproImage(docker: Docker, log: (m: string) => void = () => {}): Promise<ReproImage> {
  const repro = await reproducerBinary();
  const busybox = await staticBusybox(BUSYBOX);
  const tar = await tarArchive(rootfsEntries(busybox, repro));
  const tag = createHash('sha256').update(tar).digest('hex').slice(0, 16);
  const ref = `${IMAGE_REPO}:${tag}`;
  const reproSha256 = createHash('sha256').update(repro).digest('hex');
  try {
    const info = (await docker.getImage(ref).inspect()) as { Id: string };
    return { ref, id: info.Id, built: false, reproSha256 };
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 404) throw e;
  }
  log(`importing container image ${ref} (${(tar.length / 1e6).toFixed(1)} MB rootfs: busybox + reproducer)`);
  const stream = await docker.importImage(tar as unknown as NodeJS.ReadableStream, { repo: IMAGE_REPO, tag });
  const progress = await new Promise<unknown[]>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: unknown[]) => (err ? reject(err) : resolve(out)));
  });
  const failed = progress.find((p) => typeof p === 'object' && p !== null && 'error' in p) as { error?: string } | undefined;
  if (failed) throw new Error(`docker import of ${ref} failed: ${failed.error}`);
  const info = (await docker.getImage(ref).inspect()) as { Id: string };
  return { ref, id: info.Id, built: true, reproSha256 };
}
