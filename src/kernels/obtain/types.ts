// What obtaining a kernel gives back, and what it needs. Declarations only.

import type { KernelKind } from '../types.ts';

export interface KernelArtifact {
  id: string;
  kind: KernelKind;
  /** the bzImage to boot; null for host */
  vmlinuz: string | null;
  /** upstream version (MAJOR.MINOR.PATCH[-suffix] as the spec gives it; coerced for host) */
  version: string;
  /** uname -r style release, when known */
  release?: string;
  /** sha256 of vmlinuz; null for host */
  sha256: string | null;
  /** true when the artifact came from the cache (or from another process's fetch) without a download */
  cached: boolean;
  /**
   * a newc cpio appended to the guest's initramfs, or absent: the kernel
   * modules its init loads before the reproducer (a Debian arm64 kernel's
   * virtio console, src/kernels/obtain/guest-modules.ts)
   */
  initrdExtra?: string;
  /** kind-specific facts: package, package_version, deb_sha256, config path, url, ... */
  meta: Record<string, unknown>;
}

export interface EnsureOptions {
  /** the cache root (defaultCacheDir()) */
  cacheDir: string;
  log: (msg: string) => void;
  /** Give up waiting for another process's lock after this long, ms (default 30 min; 3 h for builds). */
  lockTimeoutMs?: number;
  /**
   * Stop fetching/building when this aborts: every child (apt-get, git,
   * make, tar) gets SIGTERM (SIGKILL 5 s later), nothing is published, and
   * the call rejects.
   */
  signal?: AbortSignal;
  /**
   * The run has AUX scenarios: a kernel lockstep cannot rebuild (a Debian
   * image) gets the lockstep_aux module built against its own headers
   * (src/kernels/obtain/debian-auxpmu.ts), or meta.aux_pmu saying why not.
   */
  auxPmu?: boolean;
}

/** Where apt looks for packages: extra `-o` options given to apt-cache and apt-get. */
export interface AptSource {
  /** shown in messages ("the machine's apt sources", "Debian sid (lockstep's own apt lists)") */
  label: string;
  /** e.g. ['-o', 'Dir::State::Lists=/cache/apt/sid/lists'] */
  options: string[];
  /** the Debian suite, for lockstep's own lists; absent = the machine's apt sources */
  suite?: string;
}
