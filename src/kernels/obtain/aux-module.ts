// The lockstep_aux module (harness/auxpmu) for a Debian image, the pure
// part: which headers packages a kernel package needs, which compiler its
// kbuild names, why a build failed (the compiler's first error line), why
// the guest could not load the module (its console), and the SKIP reason
// an AUX scenario gets on such a kernel. No I/O: src/kernels/obtain/debian-auxpmu.ts
// downloads, builds and caches.

import type { KernelPackage } from './deb-kernels.ts';

/** The module's name: its .ko, its line in /lockstep/modules, its sysfs PMU (/sys/bus/event_source/devices/lockstep_aux). */
export const AUX_MODULE = 'lockstep_aux';

/**
 * How every AUX SKIP reason begins, the guest's own included
 * (harness/aux.c: "needs the lockstep_aux PMU (harness/auxpmu): <sysfs path>: ENOENT").
 */
export const AUX_NEEDS = `needs the ${AUX_MODULE} PMU (harness/auxpmu)`;

/**
 * What a kernel artifact says about lockstep_aux (KernelArtifact.meta.aux_pmu):
 * the module travels in its initrdExtra, or why it does not.
 */
export type AuxPmuState =
  | { module: typeof AUX_MODULE; headers: string[]; compiler: string; ko_sha256: string }
  | { skip: string };

/**
 * The headers package of a Debian kernel package, same ABI and flavour, and
 * (Debian's packaging, bookworm to sid, checked November 2026) the version
 * to ask for is the kernel's own: linux-image-6.1.0-54-cloud-amd64-unsigned
 * -> linux-headers-6.1.0-54-cloud-amd64; linux-binary-unsigned-7.2.13+deb14-cloud-amd64
 * -> linux-headers-7.2.13+deb14-cloud-amd64. Its Depends name the rest
 * (linux-headers-<abi>-common, linux-kbuild-<series> or linux-kbuild-<abi>).
 */
export const headersPackage = (k: KernelPackage): string => `linux-headers-${k.abi}`;

/** One dependency of a headers package that the build needs: a headers or kbuild package, with its version constraint. */
export interface HeadersDep {
  package: string;
  /** "=" or ">=" with a Debian version; null = any */
  constraint: { op: '=' | '>='; version: string } | null;
}

/**
 * The linux-headers-* and linux-kbuild-* packages of a Depends field (the
 * first alternative of each), e.g. "linux-headers-6.1.0-54-common (= 6.1.190-1),
 * linux-kbuild-6.1 (>= 6.1.190-1), linux-compiler-gcc-12-x86" -> the first two.
 * Other dependencies (the compiler, linux-base, the image) are not needed to
 * build an external module here. Pure.
 */
export function headersDeps(depends: string): HeadersDep[] {
  const out: HeadersDep[] = [];
  for (const part of depends.split(',')) {
    const first = part.split('|')[0]!.trim();
    const m = /^([a-z0-9][a-z0-9.+-]*)(?::\w+)?\s*(?:\(\s*(=|>=)\s*([^)\s]+)\s*\))?$/.exec(first);
    if (!m || !/^linux-(headers|kbuild)-/.test(m[1]!)) continue;
    out.push({ package: m[1]!, constraint: m[2] ? { op: m[2] as '=' | '>=', version: m[3]! } : null });
  }
  return out;
}

/**
 * The compiler a Debian headers tree's .kernelvariables names for CC
 * ("CC = $(if ...) $(CROSS_COMPILE)gcc-12" -> "gcc-12"), or null when it
 * names none. Pure.
 */
export function kbuildCompiler(kernelvariables: string): string | null {
  const line = kernelvariables.split('\n').find((l) => /^\s*CC\s*[:?]?=/.test(l));
  return line ? /\b(gcc-\d+|clang-\d+)\s*$/.exec(line.trim())?.[1] ?? null : null;
}

/** CONFIG_CC_VERSION_TEXT of a .config ("gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"), or null. Pure. */
export const configCompiler = (config: string): string | null => /^CONFIG_CC_VERSION_TEXT="(.*)"$/m.exec(config)?.[1] ?? null;

/**
 * Why an unsigned external module cannot load in this kernel, from its
 * config alone, or null: CONFIG_MODULE_SIG_FORCE=y refuses it
 * (kernel/module/signing.c, module_sig_check), CONFIG_MODULES unset has no
 * loader. Pure.
 */
export function moduleLoadBlocker(config: string): string | null {
  if (/^CONFIG_MODULE_SIG_FORCE=y$/m.test(config)) return 'the kernel enforces module signatures (CONFIG_MODULE_SIG_FORCE=y) and lockstep_aux is unsigned';
  if (!/^CONFIG_MODULES=y$/m.test(config)) return 'the kernel is built without CONFIG_MODULES';
  return null;
}

/**
 * The first line of a failed kbuild's output that says what went wrong (a
 * compiler "error:", a missing program, a fatal message), else its first
 * non-empty line; cut to 300 characters. Pure.
 */
export function firstBuildError(output: string): string {
  const lines = output.replace(/[\u2018\u2019]/g, "'").split('\n').map((l) => l.trim()).filter(Boolean);
  const pick = lines.find((l) => /\berror:|fatal:|not found|No such file|cannot execute|GLIBC_\d/i.test(l) && !/^make(\[\d+\])?: \*\*\*/.test(l))
    ?? lines.find((l) => !/^make(\[\d+\])?: (Entering|Leaving)/.test(l)) ?? '(no output)';
  return pick.length > 300 ? `${pick.slice(0, 297)}...` : pick;
}

/** The vermagic string of a .ko ("6.1.0-54-cloud-amd64 SMP preempt mod_unload modversions "), or null. Pure. */
export function vermagicOf(ko: Buffer): string | null {
  const i = ko.indexOf('vermagic=');
  if (i < 0) return null;
  const end = ko.indexOf(0, i);
  return ko.toString('latin1', i + 'vermagic='.length, end < 0 ? undefined : end);
}

/**
 * Why the guest did not load lockstep_aux, from its console, or null when
 * the console shows no failure: vm-images/init.sh prints
 * "lockstep-init: insmod lockstep_aux failed" after busybox insmod's own
 * line ("insmod: can't insert '/lib/modules/lockstep_aux.ko': ..."), and
 * the kernel may say why in its log ("lockstep_aux: disagrees about version
 * of symbol ..."). Returns those lines joined with " | ". Pure.
 */
export function auxLoadFailure(consoleText: string): string | null {
  const lines = consoleText.split(/\r?\n/);
  const at = lines.findIndex((l) => l.includes(`lockstep-init: insmod ${AUX_MODULE} failed`));
  if (at < 0) return null;
  const strip = (l: string): string => l.replace(/^\[\s*\d+\.\d+\]\s*/, '').trim();
  const why = lines.slice(0, at)
    .filter((l) => l.includes(`${AUX_MODULE}.ko`) || new RegExp(`\\b${AUX_MODULE}: `).test(l))
    .map(strip)
    .filter((l) => !/module verification failed|tainting kernel/.test(l));
  // the kernel may say the same line twice (load_module checks a symbol's version more than once)
  const uniq = [...new Set(why)];
  return uniq.length ? uniq.slice(-3).join(' | ') : 'insmod failed (no reason on the console)';
}

/**
 * The SKIP reason of an AUX scenario on a kernel whose artifact says
 * `state` (KernelArtifact.meta.aux_pmu), or null when the module travels
 * with the kernel (or the kernel needs none: no state). Pure.
 */
export function auxPmuSkip(state: unknown): string | null {
  if (state && typeof state === 'object' && 'skip' in state && typeof state.skip === 'string') return state.skip;
  return null;
}

/**
 * The SKIP reason of an AUX scenario whose guest found no lockstep_aux PMU
 * although the module was in its initramfs: what the console says of the
 * insmod, then what the guest measured (`guestReason`, its AUX_NEEDS prefix dropped). Null when the
 * artifact carried no module or the console shows no load failure. Pure.
 */
export function auxLoadSkip(state: unknown, consoleText: string, guestReason: string): string | null {
  if (!state || typeof state !== 'object' || !('module' in state)) return null;
  const why = auxLoadFailure(consoleText);
  if (why === null) return null;
  const list = (state as { headers?: unknown }).headers;
  const headers = Array.isArray(list) && typeof list[0] === 'string' ? list[0] : undefined;
  const measured = guestReason.startsWith(`${AUX_NEEDS}: `) ? guestReason.slice(AUX_NEEDS.length + 2) : guestReason;
  return `${AUX_NEEDS}: ${AUX_MODULE}${headers ? ` (built against ${headers})` : ''} did not load in the guest: ${why}; then ${measured}`;
}

/**
 * The suites a Debian root with a kbuild's compiler comes from, oldest
 * first: the oldest that carries gcc-N is taken (trixie's gcc-14 built
 * Debian 13's kernels and trixie-backports' 7.x; unstable's 7.2.13 headers
 * name gcc-16, which forky carries too: measured 2026-12-07, forky's
 * gcc-16 16.2.0-3 built lockstep_aux for sid's 7.2.13 and it loaded).
 */
export const SYSROOT_SUITES = ['trixie', 'forky', 'sid'] as const;

/**
 * What a Debian root needs to run a kbuild of an external module with `cc`:
 * the compiler, make, the shells and text tools kbuild's recipes and scripts
 * call (sh, bash, sed, grep, awk, find, cmp), and libelf for the headers
 * package's objtool. Pure.
 */
export const sysrootPackages = (cc: string): string[] =>
  [cc, 'make', 'dash', 'bash', 'coreutils', 'sed', 'grep', 'mawk', 'findutils', 'diffutils', 'libelf1t64'];

/** The packages `apt-get -s install` would install: its "Inst NAME (VERSION ...)" lines, in order. Pure. */
export function parseSimulatedInstalls(out: string): { package: string; version: string }[] {
  const rows: { package: string; version: string }[] = [];
  for (const m of out.matchAll(/^Inst (\S+?)(?::\w+)? (?:\[[^\]]*\] )?\((\S+) /gm)) rows.push({ package: m[1]!, version: m[2]! });
  return rows;
}

/**
 * Where the module's kbuild gets its compiler, by the gcc-N the headers'
 * .kernelvariables name (`want`) and the gcc-N on $PATH (`have`, with any
 * x86_64-linux-gnu- prefixed ones): the host's own gcc-N when installed;
 * else, for a native build naming a gcc newer than any here, a Debian root
 * with that gcc-N (ensureDebianSysroot); else (a cross build, an older gcc,
 * or headers naming no gcc-N) the host's `gcc`. Pure.
 */
export function compilerPlan(want: string | null, have: readonly string[], cross: string): { where: 'host'; cc: string } | { where: 'sysroot'; cc: string } {
  if (want && have.includes(`${cross}${want}`)) return { where: 'host', cc: `${cross}${want}` };
  if (want && !cross && have.includes(`x86_64-linux-gnu-${want}`)) return { where: 'host', cc: want };
  // only a newer gcc than any here: an older one's flags the host's gcc takes (bullseye's gcc-10 headers build with gcc 12)
  const newestHere = Math.max(0, ...have.map((h) => Number(/(?:^|-)gcc-(\d+)$/.exec(h)?.[1] ?? 0)));
  if (want && !cross && /^gcc-\d+$/.test(want) && Number(want.slice(4)) > newestHere) return { where: 'sysroot', cc: want };
  return { where: 'host', cc: `${cross}gcc` };
}
