// The guest's busybox, per arch. x86_64 guests use the host's static
// /bin/busybox (busybox-static); an arm64 guest needs Debian's
// busybox-static:arm64, fetched once with lockstep's own apt lists of the
// host's suite (src/kernels/obtain/apt-suite.ts: the machine's apt
// configuration is never touched) and kept in the cache:
//   <cacheDir>/guest/busybox-static-arm64/{busybox,meta.json}
// $LOCKSTEP_BUSYBOX / $LOCKSTEP_BUSYBOX_ARM64 name a binary of one's own.

import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Arch } from '../kernels/types.ts';
import { checkEntry, ensureEntry, scratchDir, writeMeta } from '../kernels/obtain/cache.ts';
import { debArch } from '../kernels/obtain/apt-suite.ts';
import { debianPackage, extractDeb } from '../kernels/obtain/debian.ts';
import { sha256File } from '../kernels/obtain/files.ts';

/** The host's busybox for x86_64 guests: $LOCKSTEP_BUSYBOX or /bin/busybox. */
export const BUSYBOX = process.env.LOCKSTEP_BUSYBOX ?? '/bin/busybox';

/** The environment variable that overrides the busybox of `arch`. */
export const busyboxEnv = (arch: Arch): string => (arch === 'x86_64' ? 'LOCKSTEP_BUSYBOX' : `LOCKSTEP_BUSYBOX_${arch.toUpperCase()}`);

interface BusyboxMeta { package: string; package_version: string; deb_sha256: string; busybox_sha256: string; fetched_at: string }

export interface BusyboxOptions {
  cacheDir: string;
  log: (m: string) => void;
  signal?: AbortSignal;
}

/**
 * Path of a static busybox for `arch`: the override from busyboxEnv(arch),
 * /bin/busybox on x86_64, else the cached (fetched once) Debian
 * busybox-static of that arch. The caller checks it is static and of the
 * arch (src/image/initramfs.ts). Throws ConfigError when the package cannot
 * be fetched (no network, unknown suite).
 */
export async function guestBusybox(arch: Arch, o: BusyboxOptions): Promise<{ path: string; fix: string }> {
  const env = busyboxEnv(arch);
  const own = arch === 'x86_64' ? BUSYBOX : process.env[env];
  if (own !== undefined) {
    return { path: own, fix: process.env[env] !== undefined ? `${env}=${own} must name a static ${arch === 'x86_64' ? '' : `${arch} `}busybox binary; unset it to use ${arch === 'x86_64' ? '/bin/busybox' : "Debian's busybox-static:arm64"}` : 'apt-get install busybox-static (it provides a static /bin/busybox)' };
  }
  const parent = join(o.cacheDir, 'guest');
  await mkdir(parent, { recursive: true });
  const key = `busybox-static-${arch}`;
  const { entry } = await ensureEntry<BusyboxMeta>({
    parent, key, label: `busybox-static:${arch}`, verb: 'fetching', log: o.log, signal: o.signal,
    check: (e) => checkEntry<BusyboxMeta>(e, (m) => (typeof m.busybox_sha256 === 'string' ? { busybox: m.busybox_sha256 } : null)),
    fill: async (staging) => {
      const work = await scratchDir(parent, key);
      try {
        o.log(`fetching busybox-static:${debArch(arch)} for the ${arch} guest's userland`);
        const got = await debianPackage('busybox-static', null, null, work, { cacheDir: o.cacheDir, log: o.log, signal: o.signal }, { file: 'busybox-static', field: arch }, debArch(arch));
        await extractDeb(got.deb, work, ['./bin/busybox'], o.signal);
        await copyFile(join(work, 'bin', 'busybox'), join(staging, 'busybox'));
        const meta: BusyboxMeta = { package: 'busybox-static', package_version: got.version, deb_sha256: got.sha256, busybox_sha256: await sha256File(join(staging, 'busybox')), fetched_at: new Date().toISOString() };
        await writeMeta(staging, meta);
        return meta;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  });
  return { path: join(entry, 'busybox'), fix: `delete ${entry} and run again (it is fetched anew), or set ${env} to a static ${arch} busybox` };
}
