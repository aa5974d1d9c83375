// Kernel versions: the one type and the one parser every part of lockstep
// reads them with (specs, flags, uname -r, Debian upstream versions, the
// facts table). Pure: no I/O.

import { ConfigError } from '../util/errors.ts';

/**
 * A kernel release: MAJOR.MINOR.PATCH, and the -rc number of a mainline
 * prerelease (null for a release). "7.3.0-rc7" is before 7.3.0 and after
 * every 7.2.y.
 */
export interface KernelVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** N of "-rcN" (also "~rcN", Debian's spelling), or null for a release */
  readonly rc: number | null;
}

/** The largest major any real kernel could have (Linux is at 7 in 2026). */
export const MAX_KERNEL_MAJOR = 99;

/** A string that holds a version no kernel has (major > 99, a part beyond 2^53 - 1). */
export class KernelVersionError extends RangeError {
  constructor(
    readonly text: string,
    why: string,
  ) {
    // name stays "RangeError": callers and tests that expect a RangeError keep matching
    super(`${JSON.stringify(text)} is not a kernel version: ${why}`);
  }
}

// MAJOR.MINOR[.PATCH][-rcN | ~rcN], not preceded by a digit or dot (so a
// longer run of digits is read whole, never its tail).
const VERSION_RE = /(?<![\d.])(\d+)\.(\d+)(?:\.(\d+))?(?:[-~.]?rc(\d+))?/;

/**
 * The kernel version in `text` ("5.3", "6.18.44-fc-v509", "7.3~rc7-1~exp1",
 * "linux-6.1.192"), or null when it holds none (no MAJOR.MINOR). A missing
 * patch level is 0. Throws KernelVersionError when it holds one beyond any
 * real kernel: major > MAX_KERNEL_MAJOR, or any part beyond
 * Number.MAX_SAFE_INTEGER.
 */
export function readKernelVersion(text: string): KernelVersion | null {
  const m = VERSION_RE.exec(text);
  if (m === null) return null;
  const parts = [m[1], m[2], m[3] ?? '0', m[4]].map((p) => (p === undefined ? null : Number(p)));
  for (const p of parts) {
    if (p !== null && !Number.isSafeInteger(p)) throw new KernelVersionError(text, `a part is beyond ${Number.MAX_SAFE_INTEGER}`);
  }
  const [major, minor, patch, rc] = parts as [number, number, number, number | null];
  if (major > MAX_KERNEL_MAJOR) throw new KernelVersionError(text, `major ${major} is beyond any real kernel (at most ${MAX_KERNEL_MAJOR})`);
  return { major, minor, patch, rc };
}

/** readKernelVersion, but a string with no version in it throws KernelVersionError too. */
export function parseKernelVersion(text: string): KernelVersion {
  const v = readKernelVersion(text);
  if (v === null) throw new KernelVersionError(text, 'no MAJOR.MINOR[.PATCH] in it');
  return v;
}

/** "7.3.0-rc7", "6.1.191"; with rc false the release it leads to ("7.3.0"). */
export const formatKernelVersion = (v: KernelVersion, rc = true): string =>
  `${v.major}.${v.minor}.${v.patch}${rc && v.rc !== null ? `-rc${v.rc}` : ''}`;

/** "6.1": the stable line a version belongs to. */
export const kernelLine = (v: KernelVersion): string => `${v.major}.${v.minor}`;

/** Negative, 0 or positive as a is before, the same as, or after b; an -rc is before its release. */
export function compareKernelVersions(a: KernelVersion, b: KernelVersion): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  if (a.rc === b.rc) return 0;
  if (a.rc === null) return 1;
  if (b.rc === null) return -1;
  return a.rc - b.rc;
}

/**
 * The kernel version a user wrote in `file` at `field` (a spec's "version",
 * `--kernel-version`): parseKernelVersion, with every refusal as a one-line
 * ConfigError naming the file, the field, the value and `fix`.
 */
export function userKernelVersion(text: string, file: string, field: string, fix: string): KernelVersion {
  try {
    return parseKernelVersion(text);
  } catch (e) {
    if (e instanceof KernelVersionError) throw new ConfigError(file, field, e.message, fix);
    throw e;
  }
}
