// The kernel modules an arm64 guest needs before its reproducer can report:
// results leave an arm64 guest on a virtio console (hvc0, src/runner/qemu.ts),
// and Debian's arm64 kernels build virtio, its MMIO transport and the
// console as modules (bookworm cloud-arm64: CONFIG_VIRTIO=m,
// CONFIG_VIRTIO_MMIO=m, CONFIG_VIRTIO_CONSOLE=m). They travel in a small cpio
// appended to the initramfs; vm-images/init.sh insmods them in the order of
// /lockstep/modules. Pure: no I/O (src/kernels/obtain/debian.ts extracts them).

import { cpioArchive, type CpioEntry } from '../../util/cpio.ts';

/** A module file of the kernel package: its name and where it sits under lib/modules/<release>/kernel/. */
export interface GuestModule {
  /** module name, e.g. "virtio_console" */
  name: string;
  /** path under lib/modules/<release>/kernel/, without the .ko[.xz|.zst] suffix */
  path: string;
}

/**
 * The results channel's modules, in load order (each after what it needs:
 * virtio_mmio and virtio_console need virtio and virtio_ring, from their
 * modinfo "depends"), with the config symbol that builds each.
 */
const CHAIN: readonly (GuestModule & { symbol: string })[] = [
  { name: 'virtio', path: 'drivers/virtio/virtio', symbol: 'CONFIG_VIRTIO' },
  { name: 'virtio_ring', path: 'drivers/virtio/virtio_ring', symbol: 'CONFIG_VIRTIO' },
  { name: 'virtio_mmio', path: 'drivers/virtio/virtio_mmio', symbol: 'CONFIG_VIRTIO_MMIO' },
  { name: 'virtio_console', path: 'drivers/char/virtio_console', symbol: 'CONFIG_VIRTIO_CONSOLE' },
];

/**
 * The modules an arm64 guest of this kernel config must load, in order
 * ([] when the results channel is built in). Throws Error naming the symbol
 * when the config has it neither built in nor as a module (such a kernel
 * cannot report results on hvc0).
 */
export function hvcModules(configText: string): GuestModule[] {
  const value = (sym: string): string | null => new RegExp(`^${sym}=(\\S+)$`, 'm').exec(configText)?.[1] ?? null;
  const out: GuestModule[] = [];
  for (const m of CHAIN) {
    const v = value(m.symbol);
    if (v === 'm') out.push({ name: m.name, path: m.path });
    else if (v !== 'y') throw new Error(`${m.symbol} is ${v === null ? 'not set' : v} in the kernel config: an arm64 guest reports its results on a virtio console (hvc0), which needs it =y or =m`);
  }
  return out;
}

/**
 * The cpio (newc, uncompressed) carrying `mods` (name and the uncompressed
 * .ko bytes) as lib/modules/<name>.ko and their load order as
 * lockstep/modules, one name a line.
 */
export function modulesArchive(mods: readonly { name: string; data: Buffer }[]): Buffer {
  const entries: CpioEntry[] = [
    { name: 'lib', kind: 'dir', perm: 0o755 },
    { name: 'lib/modules', kind: 'dir', perm: 0o755 },
    { name: 'lockstep', kind: 'dir', perm: 0o755 },
    ...mods.map((m): CpioEntry => ({ name: `lib/modules/${m.name}.ko`, kind: 'file', perm: 0o644, data: m.data })),
    { name: 'lockstep/modules', kind: 'file', perm: 0o644, data: Buffer.from(mods.map((m) => `${m.name}\n`).join('')) },
  ];
  return cpioArchive(entries);
}
