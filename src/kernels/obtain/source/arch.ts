// What a source build does differently per guest architecture: kbuild's
// ARCH=, the make target and the image it leaves, and the page-size line
// an arm64 build adds after the fragment. Pure: no I/O.
//   x86_64: make bzImage -> arch/x86/boot/bzImage  (Documentation/arch/x86/boot.rst)
//   arm64:  make Image   -> arch/arm64/boot/Image  (Documentation/arm64/booting.rst;
//           QEMU's -kernel boots the uncompressed Image directly)

import type { Arch } from '../../arch.ts';

// kbuild's targets per arch are arch facts (src/kernels/arch.ts), re-exported for the build code.
export { KBUILD_TARGETS, type KbuildTarget } from '../../arch.ts';

/** The page-size choice options of arch/arm64/Kconfig ("Page size" choice, since v3.7). */
export const ARM64_PAGE_OPTIONS: Readonly<Record<number, string>> = { 4: 'CONFIG_ARM64_4K_PAGES', 16: 'CONFIG_ARM64_16K_PAGES', 64: 'CONFIG_ARM64_64K_PAGES' };

/**
 * The kconfig line(s) a build of `arch` with `pageSizeKb` pages (kB) adds
 * after the fragment: "CONFIG_ARM64_64K_PAGES=y" for arm64 64; nothing for
 * x86_64 (4 kB only). Throws RangeError for a size the arch does not have
 * (the spec schema refuses those first).
 */
export function pageSizeLines(arch: Arch, pageSizeKb: number): string[] {
  if (arch === 'x86_64') {
    if (pageSizeKb !== 4) throw new RangeError(`x86_64 has 4 kB pages only, not ${pageSizeKb} kB`);
    return [];
  }
  const opt = ARM64_PAGE_OPTIONS[pageSizeKb];
  if (!opt) throw new RangeError(`arm64 has 4, 16 or 64 kB pages, not ${pageSizeKb} kB`);
  return [`${opt}=y`];
}

/**
 * The fragment a build configures with: `fragment` followed by the page-size
 * line(s), under a comment naming the spec field. Unchanged for x86_64 (so
 * its keys stay as they were). Pure.
 */
export function withPageSize(fragment: string, arch: Arch, pageSizeKb: number): string {
  const lines = pageSizeLines(arch, pageSizeKb);
  if (!lines.length) return fragment;
  const sep = fragment === '' || fragment.endsWith('\n') ? '' : '\n';
  return `${fragment}${sep}# lockstep: spec "page_size_kb": ${pageSizeKb}\n${lines.join('\n')}\n`;
}

/**
 * The page-size options a fragment sets itself (they would fight the spec's
 * "page_size_kb"): the names among `options`, in order. Pure.
 */
export const pageSizeOptionsIn = (options: readonly string[]): string[] => options.filter((o) => Object.values(ARM64_PAGE_OPTIONS).includes(o));
