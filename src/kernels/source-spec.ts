// The spec fields of kind "source": which tree, which fragment, which
// patches (checked by src/kernels/spec-schema.ts). Pure: no I/O;
// src/kernels/obtain/source/ builds the kernel.
//
// Documented form:
//   {"id": "fix-4", "kind": "source", "version": "6.1.192",
//    "source": {"debian_package": "linux-source-6.1"},     (+ "suite": "bullseye": from lockstep's own lists; or {"path": "/abs/tree"},
//                                                           {"git": URL, "ref": "v5.3"},
//                                                           {"tarball": URL, "sha256": HEX})
//    "config": "config/lockstep-guest.config",              (default: that fragment)
//    "patches": ["patches/fix-4-v2-c4b75479741c.patch"],   (applied in order)
//    "arch": "arm64", "page_size_kb": 64,                  (cross-built; default x86_64, 4)
//    "aux_only": true,                                      (cells SKIP: needs an AUX-capable PMU)
//    "expect": "V2/shared"}
// Relative config/patch paths are resolved against the directory of the spec
// file (kernels/ for the built-ins).

import type { Arch } from './types.ts';

/** The fragment used when a spec names none (kernels/config/...). */
export const DEFAULT_FRAGMENT = 'config/lockstep-guest.config';

/** The default fragment of an arch: x86_64 DEFAULT_FRAGMENT, arm64 config/lockstep-guest-arm64.config. */
export const defaultFragment = (arch: Arch): string => (arch === 'x86_64' ? DEFAULT_FRAGMENT : `config/lockstep-guest-${arch}.config`);

/** Why aux_only cells are skipped. */
export const AUX_SKIP_REASON = 'needs an AUX-capable PMU (Intel PT, CoreSight); QEMU\'s emulated CPUs have none';
