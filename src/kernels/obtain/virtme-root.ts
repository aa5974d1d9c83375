// What vng needs to boot a kernel lockstep obtained: its root filesystem
// comes from the host over virtio-9p, so the kernel needs 9p and virtio
// (built in, or as modules vng finds beside the image). A Debian package's
// modules are unpacked from the very .deb the kernel came from (same ABI)
// into a private tree of the cache, never into the host's /lib/modules:
//   <cacheDir>/kernels/virtme-roots/<package>_<package_version>/{boot/vmlinuz-<release>,lib/modules/<release>/,meta.json}
// vng --run <tree>/boot/vmlinuz-<release> finds <tree>/lib/modules/<release>
// (virtme's get_rootfs_from_kernel_path) and puts the modules it needs into
// its initramfs.

import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { debianPackage, extractDeb } from './debian.ts';
import { checkEntry, ensureEntry, writeMeta } from './cache.ts';
import { sha256File } from './files.ts';
import type { EnsureOptions, KernelArtifact } from './types.ts';
import type { SourceSpec } from '../types.ts';
import { KBUILD_TARGETS } from './source/arch.ts';

/**
 * Options vng's guest needs (virtme-ng 1.35, virtme/commands/configkernel.py
 * _GENERIC_CONFIG, the part that matters to boot the host's root over 9p;
 * inotify for the udevd its guest init starts).
 * Source kernels get these added to their fragment for the virtme runtime.
 */
export const VNG_FRAGMENT = [
  'CONFIG_VIRTIO_MENU=y', 'CONFIG_VIRTIO=y', 'CONFIG_VIRTIO_PCI=y', 'CONFIG_VIRTIO_MMIO=y', 'CONFIG_VIRTIO_CONSOLE=y',
  'CONFIG_NET=y', 'CONFIG_NETWORK_FILESYSTEMS=y', 'CONFIG_INET=y', 'CONFIG_NET_9P=y', 'CONFIG_NET_9P_VIRTIO=y', 'CONFIG_9P_FS=y',
  'CONFIG_INOTIFY_USER=y', 'CONFIG_OVERLAY_FS=y', 'CONFIG_TMPFS=y', 'CONFIG_DEVTMPFS=y', 'CONFIG_UNIX98_PTYS=y', 'CONFIG_BINFMT_SCRIPT=y',
];

/** The options (as `CONFIG_X`) vng's 9p root needs that a kernel config neither builds in nor as a module. */
const NEEDED = ['CONFIG_VIRTIO_PCI', 'CONFIG_NET_9P', 'CONFIG_NET_9P_VIRTIO', 'CONFIG_9P_FS', 'CONFIG_OVERLAY_FS', 'CONFIG_VIRTIO_CONSOLE'];

/**
 * Why vng cannot boot a kernel with this .config text (its 9p root needs
 * the options of NEEDED, =y or =m), or null when it can. `modules`: whether
 * =m counts (a Debian package's modules are unpacked beside it; a source
 * build without CONFIG_MODULES has none). Pure.
 */
export function vngBootReason(config: string, modules: boolean): string | null {
  const val = (k: string): string | undefined => new RegExp(`^${k}=(\\w+)$`, 'm').exec(config)?.[1];
  const missing = NEEDED.filter((k) => { const v = val(k); return !(v === 'y' || (modules && v === 'm')); });
  if (!missing.length) return null;
  return `vng mounts the host's root over virtio-9p, and this kernel lacks ${missing.join(', ')}${modules ? '' : ' (built in)'}; ` +
    'vng would stop at "Failed to mount real root" (a Debian cloud kernel has no 9p: use the generic linux-image-*-amd64 flavour)';
}

interface VirtmeRootMeta { package: string; package_version: string; release: string; deb_sha256: string; vmlinuz_sha256: string }

/**
 * For a "debian-image" artifact: the tree vng boots (see the header), its
 * kernel image path, built once per package version. Throws when the .deb
 * fetched again is not the one the artifact came from (sha256 differs).
 */
export async function virtmeDebianTree(a: KernelArtifact, suite: string | null, opts: EnsureOptions): Promise<string> {
  const pkg = String(a.meta.package);
  const pv = String(a.meta.package_version);
  const release = String(a.meta.release);
  const parent = join(opts.cacheDir, 'kernels', 'virtme-roots');
  const { entry } = await ensureEntry<VirtmeRootMeta>({
    parent, key: `${pkg}_${pv}`, label: `${pkg}=${pv} modules for vng`, verb: 'fetching', log: opts.log, signal: opts.signal,
    check: (e) => checkEntry<VirtmeRootMeta>(e, (m) => ({ [`boot/vmlinuz-${m.release}`]: m.vmlinuz_sha256 })),
    fill: async (staging) => {
      const dl = join(staging, '.deb');
      await mkdir(dl);
      opts.log(`fetching ${pkg}=${pv} again for its modules (vng loads 9p/virtio from them)`);
      const got = await debianPackage(pkg, pv, suite, dl, opts);
      if (a.meta.deb_sha256 && got.sha256 !== a.meta.deb_sha256) throw new Error(`${pkg}=${pv}: the .deb fetched for its modules has sha256 ${got.sha256}, the kernel's was ${String(a.meta.deb_sha256)}`);
      await extractDeb(got.deb, staging, a.meta.layout === 'modules' ? ['./usr/lib/modules/*'] : ['./boot/vmlinuz-*', './lib/modules/*'], opts.signal);
      // Debian 14 (usr/lib/modules/<abi>/vmlinuz): vng looks for <root>/lib/modules and <root>/boot
      const names = await readdir(staging);
      if (!names.includes('lib') && names.includes('usr')) await symlink('usr/lib', join(staging, 'lib'));
      if (!names.includes('boot')) {
        await mkdir(join(staging, 'boot'));
        const files = await readdir(join(staging, 'lib/modules', release));
        const vm = files.find((n) => n === 'vmlinuz' || n === 'vmlinuz.unsigned');
        if (!vm) throw new Error(`${pkg}=${pv}: no vmlinuz under usr/lib/modules/${release}`);
        await symlink(`../lib/modules/${release}/${vm}`, join(staging, 'boot', `vmlinuz-${release}`));
      }
      await rm(dl, { recursive: true, force: true });
      const meta: VirtmeRootMeta = { package: pkg, package_version: pv, release, deb_sha256: got.sha256, vmlinuz_sha256: await sha256File(join(staging, 'boot', `vmlinuz-${release}`)) };
      await writeMeta(staging, meta);
      return meta;
    },
  });
  return join(entry, 'boot', `vmlinuz-${release}`);
}

/**
 * The built tree (or O= build directory) a kernel image lies in, when it is
 * that tree's <dir>/arch/x86/boot/bzImage (what `--kernel /path/to/linux`
 * resolves to, and how vng recognises a tree); else null. Pure.
 */
export function treeOfImage(vmlinuz: string | null): string | null {
  const rel = `/${KBUILD_TARGETS.x86_64.image}`;
  return vmlinuz?.endsWith(rel) ? vmlinuz.slice(0, -rel.length) || '/' : null;
}

/**
 * The config text of a kernel for vngBootReason, or null: meta.config (a
 * Debian image's <tree>/boot/config-*), the .config of the built tree an
 * image lies in (<tree>/arch/x86/boot/bzImage, as `--kernel /path/to/linux`
 * gives), else the file "config" beside the image (a source build's artifact).
 */
export async function readArtifactConfig(a: KernelArtifact): Promise<string | null> {
  const tree = treeOfImage(a.vmlinuz);
  const inTree = tree !== null ? join(tree, '.config') : null;
  const p = typeof a.meta.config === 'string' ? a.meta.config : inTree ?? (a.vmlinuz ? join(a.vmlinuz, '..', 'config') : null);
  return p ? readFile(p, 'utf8').catch(() => null) : null;
}

/**
 * A source spec for the virtme runtime: the same kernel with VNG_FRAGMENT
 * appended to its fragment (a file of the cache, named by its content), so
 * it builds once per fragment beside the QEMU runtime's build.
 */
export async function virtmeSourceSpec(spec: SourceSpec, cacheDir: string): Promise<SourceSpec> {
  const base = await readFile(spec.config, 'utf8');
  // options the fragment already sets keep its value (a fragment sets each option once)
  const set = new Set([...base.matchAll(/^(?:# )?(CONFIG_\w+)[= ]/gm)].map((m) => m[1]));
  const add = VNG_FRAGMENT.filter((l) => !set.has(l.split('=')[0]!));
  const text = `${base.replace(/\n*$/, '\n')}# added by lockstep for the virtme runtime: what vng's 9p root needs (virtme-configkernel)\n${add.join('\n')}\n`;
  const dir = join(cacheDir, 'virtme-fragments');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${createHash('sha256').update(text).digest('hex').slice(0, 16)}.config`);
  await writeFile(file, text);
  return { ...spec, config: file };
}
