// Everything lockstep knows about a guest architecture, in one table: the
// QEMU board, CPU, console and results device; kbuild's ARCH=, target and
// image; the cross compiler; Debian's name, flavour and ELF machine; the
// page sizes. Every place that differs per arch reads it. Pure: no I/O.
// Sources: Documentation/arch/x86/boot.rst and Documentation/arm64/booting.rst
// (the images), arch/arm64/Kconfig ("Page size" choice, since v3.7), elf.h
// (EM_X86_64 62, EM_AARCH64 183), QEMU's docs for -machine pc / virt.

/** The guest architectures lockstep boots (`"arch"` of a VM kernel spec; absent = x86_64). */
export const ARCHES = ['x86_64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];

/** What kbuild does for an arch: `make ARCH=<kbuildArch> <target>` leaves `image` (relative to O=). */
export interface KbuildTarget {
  arch: Arch;
  /** make's ARCH= */
  kbuildArch: string;
  /** the make target that builds the bootable image */
  target: 'bzImage' | 'Image';
  /** where the image is, relative to the object dir (O=) */
  image: string;
  /** the image's file name inside a cache entry */
  file: 'bzImage' | 'Image';
}

export interface ArchFacts {
  arch: Arch;
  /** dpkg's architecture name (Debian packages, apt lists) */
  deb: 'amd64' | 'arm64';
  /** the Debian kernel flavour a spec without "package" means */
  debianFlavour: 'cloud-amd64' | 'cloud-arm64';
  /** ELF e_machine of the guest's static binaries */
  elfMachine: number;
  /** gcc's cross prefix on an x86_64 host ('' = native) */
  crossPrefix: '' | 'aarch64-linux-gnu-';
  kbuild: KbuildTarget;
  /** page sizes a build can pick, kB (x86_64: 4 only; arm64: CONFIG_ARM64_{4K,16K,64K}_PAGES) */
  pageSizesKb: readonly number[];
  /** the emulator, the variable that overrides it, and its Debian package */
  qemu: { binary: string; env: string; pkg: string };
  /** QEMU's -machine */
  board: string;
  /** QEMU's -cpu under each accelerator */
  cpu: (accel: 'kvm' | 'tcg') => string;
  /** the console's kernel parameters (and the results port's, where init.sh must be told) */
  cmdline: readonly string[];
  /** QEMU options that put the results channel on unix socket `sock` */
  resultsDevice: (sock: string) => string[];
  /** the reproducer binary's name under harness/build/ (harness/Makefile) */
  reproBinary: string;
}

export const ARCH_FACTS: Readonly<Record<Arch, ArchFacts>> = {
  x86_64: {
    arch: 'x86_64', deb: 'amd64', debianFlavour: 'cloud-amd64', elfMachine: 62, crossPrefix: '',
    kbuild: { arch: 'x86_64', kbuildArch: 'x86_64', target: 'bzImage', image: 'arch/x86/boot/bzImage', file: 'bzImage' },
    pageSizesKb: [4],
    qemu: { binary: 'qemu-system-x86_64', env: 'LOCKSTEP_QEMU', pkg: 'qemu-system-x86' },
    board: 'pc',
    cpu: (accel) => (accel === 'kvm' ? 'host' : 'max'),
    // earlyprintk: a kernel that dies while decompressing or early in boot still says why on the console
    // no_timer_check: under TCG on a loaded host the IO-APIC timer check can
    // miss its ticks and panic ("IO-APIC + timer doesn't work!"); seen here at load 30.
    cmdline: ['console=ttyS0', 'earlyprintk=serial,ttyS0,115200', 'panic=-1', 'loglevel=5', 'printk.devkmsg=on', 'no_timer_check'],
    // ttyS1: the second 16550
    resultsDevice: (sock) => ['-chardev', `socket,id=res,path=${sock}`, '-serial', 'chardev:res'],
    reproBinary: 'lockstep-repro',
  },
  arm64: {
    arch: 'arm64', deb: 'arm64', debianFlavour: 'cloud-arm64', elfMachine: 183, crossPrefix: 'aarch64-linux-gnu-',
    // QEMU's -kernel boots the uncompressed Image directly
    kbuild: { arch: 'arm64', kbuildArch: 'arm64', target: 'Image', image: 'arch/arm64/boot/Image', file: 'Image' },
    pageSizesKb: [4, 16, 64],
    qemu: { binary: 'qemu-system-aarch64', env: 'LOCKSTEP_QEMU_AARCH64', pkg: 'qemu-system-arm' },
    // GICv3: GICv2 stops at 8 CPUs
    board: 'virt,gic-version=3',
    // pauth-impdef: QEMU's own pointer-authentication hash, much cheaper under TCG than the architected QARMA
    cpu: () => 'max,pauth-impdef=on',
    cmdline: ['console=ttyAMA0', 'earlycon', 'panic=-1', 'loglevel=5', 'printk.devkmsg=on', 'lockstep.out=hvc0'],
    // virt has one PL011 (the console): results on a virtio console, hvc0 in the guest
    resultsDevice: (sock) => ['-device', 'virtio-serial-device', '-chardev', `socket,id=res,path=${sock}`, '-device', 'virtconsole,chardev=res'],
    reproBinary: 'lockstep-repro-arm64',
  },
};

/** The facts of `arch` (absent = x86_64). */
export const archFacts = (arch: Arch | undefined): ArchFacts => ARCH_FACTS[arch ?? 'x86_64'];

/** Page sizes a source build can pick per arch, kB (ARCH_FACTS' pageSizesKb). */
export const PAGE_SIZES_KB: Readonly<Record<Arch, readonly number[]>> = { x86_64: ARCH_FACTS.x86_64.pageSizesKb, arm64: ARCH_FACTS.arm64.pageSizesKb };

/** kbuild per arch (ARCH_FACTS' kbuild). */
export const KBUILD_TARGETS: Readonly<Record<Arch, KbuildTarget>> = { x86_64: ARCH_FACTS.x86_64.kbuild, arm64: ARCH_FACTS.arm64.kbuild };
