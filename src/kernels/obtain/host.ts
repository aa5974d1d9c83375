// The host kernel: nothing to fetch, its facts come from uname.

import { machine as osMachine, release as osRelease, version as osVersion } from 'node:os';
import { coerceKernelVersion } from '../expect.ts';
import type { HostSpec } from '../types.ts';
import type { KernelArtifact } from './types.ts';

/** The running kernel as an artifact (vmlinuz null). Throws when uname -r holds no version. */
export function hostArtifact(spec: HostSpec): KernelArtifact {
  const release = osRelease();
  const version = coerceKernelVersion(release);
  if (version === null) throw new Error(`cannot read a kernel version from os.release() = ${JSON.stringify(release)}`);
  return { id: spec.id, kind: 'host', vmlinuz: null, version, release, sha256: null, cached: false, meta: { uname_version: osVersion(), machine: osMachine() } };
}
