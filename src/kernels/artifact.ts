// Obtaining a kernel: turn a spec into a bootable vmlinuz on this machine,
// by kind (src/kernels/obtain/: host, debian, image, source), through the
// verified, locked cache of src/kernels/obtain/cache.ts.
//
// Every external tool runs through src/util/exec.ts (argument arrays, never
// a shell; SIGTERM then SIGKILL when the caller's signal aborts).

import { ensureDebian } from './obtain/debian.ts';
import { withDebianAuxPmu } from './obtain/debian-auxpmu.ts';
import { hostArtifact } from './obtain/host.ts';
import { ensureImage } from './obtain/image.ts';
import { ensureSourceKernel } from './obtain/source/build.ts';
import type { EnsureOptions, KernelArtifact } from './obtain/types.ts';
import type { KernelSpec } from './types.ts';

export { defaultCacheDir } from './obtain/cache.ts';
export type { EnsureOptions, KernelArtifact } from './obtain/types.ts';

/**
 * Make `spec`'s kernel available locally (fetching, building and verifying
 * as needed); with `opts.auxPmu`, a Debian image with the lockstep_aux
 * module beside it (or meta.aux_pmu saying why not). Throws ConfigError for input the user can fix (exit 2),
 * BuildError for a failed build, and rejects once `opts.signal` aborts
 * (every child stopped, nothing half-published).
 */
export async function ensureKernel(spec: KernelSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  switch (spec.kind) {
    case 'host':
      return hostArtifact(spec);
    case 'debian-image': {
      const a = await ensureDebian(spec, opts);
      return opts.auxPmu ? withDebianAuxPmu(a, spec, opts) : a;
    }
    case 'image':
      return ensureImage(spec, opts);
    case 'source':
      return ensureSourceKernel(spec, opts);
  }
}
