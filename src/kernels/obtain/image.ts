// "image" kernels: a bzImage on disk ("path"), or downloaded once from a
// URL into the cache and verified against the spec's sha256.
//   <cacheDir>/kernels/image/<sha256>/{vmlinuz,meta.json}

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../util/errors.ts';
import { coerceKernelVersion } from '../expect.ts';
import type { ImageSpec } from '../types.ts';
import { checkEntry, ensureEntry, writeMeta } from './cache.ts';
import { download, DownloadError } from './download.ts';
import { bzImageVersionString, imageBanner, isKernelImage, sha256File } from './files.ts';
import type { EnsureOptions, KernelArtifact } from './types.ts';

interface ImageMeta {
  url: string;
  sha256: string;
  size: number;
  fetched_at: string;
}

/** "X is not an x86 bzImage (...)" / "... not an arm64 Image (...)". */
const notImage = (spec: ImageSpec, what: string): string => ((spec.arch ?? 'x86_64') === 'arm64'
  ? `${what} is not an uncompressed arm64 Image (no "ARM\\x64" at offset 0x38)`
  : `${what} is not an x86 bzImage (no "HdrS" at offset 0x202)`);
const imageFix = (spec: ImageSpec): string => ((spec.arch ?? 'x86_64') === 'arm64'
  ? 'use arch/arm64/boot/Image (gunzip a Debian vmlinuz first), or set "arch" to the image\'s arch'
  : 'use arch/x86/boot/bzImage (or /boot/vmlinuz-*), not vmlinux; an arm64 Image needs "arch": "arm64"');

/** The release and banner the image itself carries; a disagreement with the spec's version is logged. */
async function imageVersionInfo(spec: ImageSpec, file: string, log: (m: string) => void): Promise<{ release?: string; banner?: string }> {
  const banner = (spec.arch ?? 'x86_64') === 'arm64' ? await imageBanner(file) : await bzImageVersionString(file);
  if (banner === null) return {};
  const release = banner.split(/\s+/)[0]!;
  const inImage = coerceKernelVersion(release);
  if (inImage !== null && inImage !== coerceKernelVersion(spec.version)) {
    log(`warning: ${spec.id}: the image says it is ${release}, the spec says version ${spec.version}; the expectation follows the spec`);
  }
  return { release, banner };
}

/** An "image" spec's kernel: by path (checked in place) or by url (cached). Throws ConfigError on bad input or no network. */
export function ensureImage(spec: ImageSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  return spec.path !== undefined ? localImage(spec, spec.path, opts) : imageFromUrl(spec, opts);
}

async function localImage(spec: ImageSpec, path: string, opts: EnsureOptions): Promise<KernelArtifact> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError(spec.origin, `${spec.at}path`, `${path} does not exist (${e.code})`, 'point "path" at an existing bzImage');
  });
  if (!st.isFile()) throw new ConfigError(spec.origin, `${spec.at}path`, `${path} is not a regular file`, 'point "path" at the bzImage file itself');
  if (!(await isKernelImage(path, spec.arch ?? 'x86_64'))) throw new ConfigError(spec.origin, `${spec.at}path`, notImage(spec, path), imageFix(spec));
  const sha = await sha256File(path);
  if (spec.sha256 !== undefined && spec.sha256 !== sha) {
    throw new ConfigError(spec.origin, `${spec.at}sha256`, `${path} has sha256 ${sha}, the spec says ${spec.sha256}`, 'use the right file, or update "sha256" if the file was rebuilt on purpose');
  }
  const info = await imageVersionInfo(spec, path, opts.log);
  const a: KernelArtifact = { id: spec.id, kind: 'image', vmlinuz: path, version: spec.version, sha256: sha, cached: false, meta: { path, size: st.size, ...(info.banner ? { banner: info.banner } : {}) } };
  if (info.release) a.release = info.release;
  return a;
}

async function imageFromUrl(spec: ImageSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  const url = spec.url!;
  const sha = spec.sha256!;
  const { entry, meta, cached } = await ensureEntry<ImageMeta>({
    parent: join(opts.cacheDir, 'kernels', 'image'),
    key: sha,
    label: url,
    verb: 'fetching',
    log: opts.log,
    lockTimeoutMs: opts.lockTimeoutMs,
    signal: opts.signal,
    check: (e) => checkEntry<ImageMeta>(e, () => ({ vmlinuz: sha })),
    fill: async (staging) => {
      opts.log(`downloading ${url}`);
      const file = join(staging, 'vmlinuz');
      let got: { sha256: string; size: number };
      try {
        got = await download(url, file, { log: opts.log, signal: opts.signal });
      } catch (e) {
        if (!(e instanceof DownloadError)) throw e;
        throw new ConfigError(spec.origin, `${spec.at}url`, `cannot download ${url} (${e.message})`, 'download it on a machine that can reach it, then use "path": "/abs/file" with the same "sha256"');
      }
      if (got.sha256 !== sha) {
        throw new ConfigError(spec.origin, `${spec.at}sha256`, `${url} has sha256 ${got.sha256}, the spec says ${sha}`, 'check the URL and the expected hash (sha256sum FILE)');
      }
      if (!(await isKernelImage(file, spec.arch ?? 'x86_64'))) throw new ConfigError(spec.origin, `${spec.at}url`, notImage(spec, url), imageFix(spec));
      const m: ImageMeta = { url, sha256: sha, size: got.size, fetched_at: new Date().toISOString() };
      await writeMeta(staging, m);
      return m;
    },
  });
  const vm = join(entry, 'vmlinuz');
  const info = await imageVersionInfo(spec, vm, opts.log);
  const a: KernelArtifact = { id: spec.id, kind: 'image', vmlinuz: vm, version: spec.version, sha256: sha, cached, meta: { ...meta, cache_entry: entry, ...(info.banner ? { banner: info.banner } : {}) } };
  if (info.release) a.release = info.release;
  return a;
}
