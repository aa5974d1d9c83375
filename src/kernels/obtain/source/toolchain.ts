// What an old tree needs to build on this machine, by kernel version: the
// compiler, and our own small backports of upstream build fixes (applied to
// lockstep's copy of a tree only, never to the user's). Pure: no I/O. The two
// tables below ARE the rules; keep them readable so they can be audited row
// by row. syzkaller's bisection keeps per-range compilers and fix backports
// the same way (the idea, not its code).

import type { Feature } from '../../../scenario/ops.ts';
import type { Offer } from '../../../scenario/skip.ts';
import type { Arch } from '../../types.ts';
import semver from 'semver';
import { formatKernelVersion, parseKernelVersion } from '../../../kernel-facts/index.ts';

export interface CompilerRow {
  /** semver range over the coerced kernel version (MAJOR.MINOR.PATCH) */
  range: string;
  /** the gcc to run for CC (through ccache), and for HOSTCC unless `hostcc` says otherwise */
  cc: string;
  /** the Debian package that provides it */
  apt: string;
  /** a cross build: the host's compiler for kbuild's host tools (HOSTCC) */
  hostcc?: string;
  /** a cross build: make's CROSS_COMPILE= prefix (binutils: aarch64-linux-gnu-ld, ...) */
  cross?: string;
  why: string;
}

/**
 * The compiler by kernel version; the first match wins, the last row
 * catches everything. Debian 12's gcc 12 added -Werror cases that old host
 * tools trip on (objtool's libsubcmd: "pointer may be used after 'realloc'
 * [-Werror=use-after-free]" in subcmd-util.h, fixed upstream by 52a9dab6d892
 * "libsubcmd: Fix use-after-free for realloc(..., 0)", v6.0); Debian 12's
 * gcc-11 builds those releases as they are.
 */
export const COMPILER_TABLE: readonly CompilerRow[] = [
  { range: '<5.15.0', cc: 'gcc-11', apt: 'gcc-11', why: 'before v5.15: gcc 12 breaks old host tools (-Werror=use-after-free in tools/lib/subcmd, fixed by 52a9dab6d892 in v6.0)' },
  { range: '*', cc: 'gcc', apt: 'gcc', why: 'v5.15 and later build with Debian 12\'s default gcc 12' },
];

/**
 * arm64 guests are cross-built on the x86_64 host with Debian 12's
 * aarch64-linux-gnu-gcc 12 (package gcc-aarch64-linux-gnu, binutils from
 * binutils-aarch64-linux-gnu); host tools with the native gcc. Built:
 * 6.1.192. 6.1's arch/arm64/Kconfig selects no HAVE_OBJTOOL, so objtool
 * and its libsubcmd (why old x86 trees need gcc-11) are not built; older
 * arm64 trees are untried.
 */
export const ARM64_COMPILER_TABLE: readonly CompilerRow[] = [
  { range: '*', cc: 'aarch64-linux-gnu-gcc', apt: 'gcc-aarch64-linux-gnu', hostcc: 'gcc', cross: 'aarch64-linux-gnu-', why: 'arm64 is cross-built with Debian 12\'s aarch64-linux-gnu-gcc 12 (built 6.1.192)' },
];

const COMPILER_TABLES: Readonly<Record<Arch, readonly CompilerRow[]>> = { x86_64: COMPILER_TABLE, arm64: ARM64_COMPILER_TABLE };

export interface BackportRow {
  /** short name, also the patch file's stem in kernels/backports/ */
  id: string;
  /** kernels/backports/<file> (a patch -p1 diff we wrote from the upstream fix) */
  file: string;
  /** upstream commit id (12 hex digits) and subject */
  commit: string;
  subject: string;
  /** semver range over the coerced kernel version where the fix may be missing */
  range: string;
  /** the unfixed code: a tree whose `file` lacks `text` carries the fix already (in its own wording, e.g. a stable backport) */
  symptom: { file: string; text: string };
  /** the guest architectures whose build trips on it */
  arches: readonly Arch[];
  why: string;
}

/**
 * Build fixes by kernel version. A row is applied when the version is in
 * its range and the tree still has the unfixed code (`symptom`): stable
 * lines took some of these fixes (5.10.223 has this one), and then the tree
 * is built as it is.
 */
export const BACKPORT_TABLE: readonly BackportRow[] = [
  {
    id: 'objtool-missing-symtab',
    file: 'objtool-missing-symtab-1d489151e9f9.patch',
    commit: '1d489151e9f9',
    subject: 'objtool: Don\'t fail on missing symbol table',
    range: '>=4.6.0 <5.11.0',
    symptom: { file: 'tools/objtool/elf.c', text: 'WARN("missing symbol table");' },
    arches: ['x86_64'],
    why: 'current binutils leave an empty arch/x86/entry/thunk_64.o without .symtab, and objtool before v5.11 stops the build on it',
  },
];

/**
 * MAJOR.MINOR.PATCH of a kernel version string ("5.5-rc5" -> "5.5.0": an -rc
 * builds like its release), for the semver ranges below. Throws RangeError
 * when it holds no version, KernelVersionError when one beyond any real
 * kernel (src/kernel-facts parseKernelVersion).
 */
const releaseOf = (version: string): string => formatKernelVersion(parseKernelVersion(version), false);

/** The compiler row for `version` built for `arch` (default x86_64); throws RangeError for a version that is not one. */
export function compilerFor(version: string, arch: Arch = 'x86_64'): CompilerRow {
  const v = releaseOf(version);
  return COMPILER_TABLES[arch].find((r) => r.range === '*' || semver.satisfies(v, r.range))!;
}

/** The backport rows of `arch` (default x86_64) whose range holds `version` (in table order); throws RangeError for a version that is not one. */
export function backportsFor(version: string, arch: Arch = 'x86_64'): BackportRow[] {
  const v = releaseOf(version);
  return BACKPORT_TABLE.filter((r) => r.arches.includes(arch) && semver.satisfies(v, r.range));
}

export interface KconfigNeed {
  option: string;
  /** the release that introduced it, for the reason line */
  since: string;
  /** the upstream commit that added it */
  commit: string;
}

/**
 * Fragment options that some scenario ops need and that old releases lack.
 * A kernel built without one SKIPs the scenarios that use it. The list is
 * for the reason line only: whether an option exists is read from the
 * tree's own Kconfig files.
 */
export const KCONFIG_INTRODUCED: readonly KconfigNeed[] = [
  { option: 'CONFIG_IO_URING', since: '5.1', commit: '2b188cc1bb85 ("Add io_uring IO interface")' },
  { option: 'CONFIG_BPF_SYSCALL', since: '3.18', commit: '99c55f7d47c0 ("bpf: introduce BPF syscall and maps")' },
];

/** "CONFIG_IO_URING (added in v5.1 by 2b188cc1bb85 ...)" or the bare option. */
export function absentOptionText(option: string): string {
  const k = KCONFIG_INTRODUCED.find((x) => x.option === option);
  return k ? `${option} (added in v${k.since} by ${k.commit})` : option;
}

/**
 * Which of a fragment's options the tree does not define (`defined`: the
 * symbols, without CONFIG_, of the tree's Kconfig files). `leftOut`: known
 * to come with a later release (KCONFIG_INTRODUCED), so the build goes on
 * without them and says so; `unknown`: any other undefined name (a typo, or
 * an option of some other tree): those stay in and fail the build, named.
 * Pure.
 */
export function splitByTree(options: readonly string[], defined: ReadonlySet<string>): { leftOut: string[]; unknown: string[] } {
  const leftOut: string[] = [];
  const unknown: string[] = [];
  for (const o of options) {
    if (defined.has(o.replace(/^CONFIG_/, ''))) continue;
    (KCONFIG_INTRODUCED.some((k) => k.option === o) ? leftOut : unknown).push(o);
  }
  return { leftOut, unknown };
}

/** The symbols a Kconfig file defines ("config FOO" / "menuconfig FOO" lines). Pure. */
export function kconfigSymbols(text: string): string[] {
  return [...text.matchAll(/^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$/gm)].map((m) => m[1]!);
}

/** The kernel option each feature a scenario may use needs. */
const FEATURE_OPTION: Readonly<Record<Feature, string>> = { io_uring: 'CONFIG_IO_URING', bpf: 'CONFIG_BPF_SYSCALL', memfd_secret: 'CONFIG_SECRETMEM' };

/**
 * What a VM booting a kernel built without `absent` options (the artifact's
 * meta.absent_options) offers a scenario (src/scenario/skip.ts): it boots
 * with the scenario's CPU count (at most `nrCpus`, the build's
 * CONFIG_NR_CPUS, when known), root, writable sysctls, CPU hotplug, fault
 * injection; a feature whose option the build lacks is refused with the
 * option and the commit that added it. Pure.
 */
export function vmOffer(absent: readonly string[], nrCpus: number | null = null): Offer {
  const features: Partial<Record<Feature, string>> = {};
  for (const [f, option] of Object.entries(FEATURE_OPTION) as [Feature, string][]) {
    if (absent.includes(option)) features[f] = `the kernel's build lacks ${absentOptionText(option)}`;
  }
  return { where: 'the VM', onlineCpus: null, nrCpus, memlockHardKb: null, cpuHotplug: true, faultInjection: true, features, sysctls: 'writable', root: true };
}

/** CONFIG_NR_CPUS a kconfig fragment or .config sets, or null. Pure. */
export const nrCpusOf = (config: string): number | null => {
  const m = /^CONFIG_NR_CPUS=([0-9]+)$/m.exec(config);
  return m ? Number(m[1]) : null;
};
