// What a kernel is, as a spec names it: the types every spec kind shares.
// Pure declarations; src/kernels/spec.ts parses them, src/kernels/obtain/
// makes them bootable.

import type { Accounting, Counter } from '../model/accounting.ts';

/** The tree a "source" kernel is built from (src/kernels/source-spec.ts reads it). */
export type SourceTree =
  /** suite: a Debian suite (lockstep's own apt lists, src/kernels/obtain/apt-suite.ts); absent = the machine's installed package */
  | { type: 'debian'; package: string; suite?: string }
  | { type: 'path'; path: string }
  | { type: 'git'; url: string; ref: string }
  | { type: 'tarball'; url: string; sha256: string };

export type KernelKind = 'host' | 'debian-image' | 'image' | 'source';

// The arch facts (ARCHES, Arch, page sizes) live in ./arch.ts, re-exported here for the spec types.
export { ARCHES, type Arch, PAGE_SIZES_KB } from './arch.ts';
import type { Arch } from './arch.ts';

/**
 * What the spec says about the logic the kernel implements.
 * - auto:    derived from the version (src/kernels/expect.ts table)
 * - unknown: classify only, no expectation
 * - label:   an explicit accounting (V0..V4); counter null = take it from the table
 */
export type ExpectSpec =
  | { mode: 'auto' }
  | { mode: 'unknown' }
  | { mode: 'label'; accounting: Accounting; counter: Counter | null };

export interface SpecCommon {
  id: string;
  kind: KernelKind;
  expect: ExpectSpec;
  /** "debian", "upstream", ...; `debian-image` implies (and forces) "debian". */
  distro?: string;
  description?: string;
  /** VM kinds: "virtme" boots the kernel through virtme-ng (src/runner/virtme.ts); absent or "qemu" = lockstep's own QEMU boot */
  runtime?: 'container' | 'qemu' | 'virtme';
  /** VM kinds: the guest's architecture (absent = x86_64); arm64 boots qemu-system-aarch64 -machine virt under TCG (src/runner/qemu.ts) */
  arch?: Arch;
  /** Where the spec came from (file path, "command line", ...): not a JSON field, set by the parser. */
  origin: string;
  /** Field path prefix inside `origin` ("" for a single object, "[2]." for the third of an array). */
  at: string;
}

export interface HostSpec extends SpecCommon {
  kind: 'host';
  /** "container": the host kernel reached through a Docker container (src/runner/container.ts); absent = natively */
  runtime?: 'container';
}

export interface DebianImageSpec extends SpecCommon {
  kind: 'debian-image';
  /**
   * e.g. "linux-image-6.1.0-54-cloud-amd64-unsigned" or (Debian 14)
   * "linux-binary-unsigned-7.2.13+deb14-cloud-amd64"; absent only with
   * version "latest" (then: the newest cloud-amd64 kernel of the suite)
   */
  package?: string;
  /** upstream version the package carries, e.g. "6.1.190"; or "latest", resolved when the run fetches it */
  version: string;
  /** Debian package version to pin, e.g. "6.1.190-1"; absent = apt's candidate */
  package_version?: string;
  /** Debian suite whose lists lockstep keeps under its cache (bullseye .. experimental); absent = the machine's apt sources */
  suite?: string;
  /** with version "latest": only this upstream series, "6.12" or "7" */
  series?: string;
}

export interface ImageSpec extends SpecCommon {
  kind: 'image';
  version: string;
  /** absolute path of a bzImage (exactly one of path / url) */
  path?: string;
  url?: string;
  /** lower-case hex; required with url, checked when given with path */
  sha256?: string;
}

/** A kernel built from a tree (src/kernels/source-spec.ts reads the fields, obtain/source/ builds it). */
export interface SourceSpec extends SpecCommon {
  kind: 'source';
  version: string;
  source: SourceTree;
  /** absolute path of the kconfig fragment */
  config: string;
  /** absolute paths, applied in order with patch -p1 */
  patches: string[];
  /** the build's page size in kB (absent = 4); 16 and 64 only with "arch": "arm64" */
  page_size_kb?: number;
  /** the kernel differs from others only on AUX unmapping: its cells are SKIP without an AUX-capable PMU */
  aux_only?: boolean;
}

export type KernelSpec = HostSpec | DebianImageSpec | ImageSpec | SourceSpec;
