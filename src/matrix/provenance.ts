// What results record about where a kernel came from, from the artifact's
// kind-specific metadata. The metadata arrives untyped
// (KernelArtifact.meta: Record<string, unknown>); this is the one place that
// reads it, into a union typed by kernel kind. Pure.

import type { KernelArtifact } from '../kernels/artifact.ts';
import type { DebianMeta, DebianResolution } from '../kernels/obtain/debian.ts';
import type { SourceMeta } from '../kernels/obtain/source/build.ts';

/** The facts each kind of artifact provides (src/kernels writes them). */
export type ArtifactMeta =
  | { kind: 'host'; meta: { uname_version?: string; machine?: string } }
  | { kind: 'debian-image'; meta: Partial<DebianMeta> & { resolution?: DebianResolution } }
  | { kind: 'source'; meta: Partial<SourceMeta> }
  | { kind: 'image'; meta: { url?: string; path?: string; sha256?: string; banner?: string } };

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The artifact's metadata as its kind's type, keeping only fields of the right JS type. */
export function artifactMeta(a: Pick<KernelArtifact, 'kind' | 'meta'>): ArtifactMeta {
  const m = a.meta;
  switch (a.kind) {
    case 'host': return { kind: 'host', meta: { uname_version: str(m.uname_version), machine: str(m.machine) } };
    case 'debian-image': return {
      kind: 'debian-image',
      meta: {
        package: str(m.package), package_version: str(m.package_version), config_sha256: str(m.config_sha256),
        resolution: typeof m.resolution === 'object' && m.resolution !== null ? (m.resolution as DebianResolution) : undefined,
      },
    };
    case 'source': return {
      kind: 'source',
      meta: { source: str(m.source), key: str(m.key), config_sha256: str(m.config_sha256), patches: Array.isArray(m.patches) ? (m.patches as SourceMeta['patches']) : [] },
    };
    default: return { kind: 'image', meta: { url: str(m.url), path: str(m.path) } };
  }
}

/**
 * Where the kernel came from, one line: "host: <uname -v>",
 * "debian:<package>=<version>", "<source> + N patch(es), artifact <key>",
 * a URL or a path; and the sha256 of its .config when known.
 */
export function kernelProvenance(a: Pick<KernelArtifact, 'kind' | 'meta'>): { source: string; config_sha256: string | null } {
  const t = artifactMeta(a);
  switch (t.kind) {
    case 'host': return { source: `host: ${t.meta.uname_version ?? ''}`.trim(), config_sha256: null };
    case 'debian-image': {
      const suite = t.meta.resolution?.suite;
      return { source: `debian:${t.meta.package ?? '?'}=${t.meta.package_version ?? ''}${suite ? `@${suite}` : ''}`, config_sha256: t.meta.config_sha256 ?? null };
    }
    case 'source': return {
      source: `${t.meta.source ?? 'source'} + ${t.meta.patches?.length ?? 0} patch(es), artifact ${(t.meta.key ?? '').slice(0, 12)}`,
      config_sha256: t.meta.config_sha256 ?? null,
    };
    case 'image': return { source: t.meta.url ?? t.meta.path ?? 'image', config_sha256: null };
  }
}

/** How a Debian kernel was resolved (package, version, suite, .deb sha256), or undefined for other kinds. */
export function kernelResolution(a: Pick<KernelArtifact, 'kind' | 'meta'>): DebianResolution | undefined {
  const t = artifactMeta(a);
  return t.kind === 'debian-image' ? t.meta.resolution : undefined;
}

/**
 * Whether a kernel is a real release or a stand-in: Debian packages and the
 * host are real; a "source" kernel built here from a release's tree with no
 * patches is real too (lockstep's config fragment only selects options: an
 * option the tree lacks SKIPs the scenarios that need it, it changes no
 * accounting; the build-fix backports touch tools/ only), one with patches
 * stands in for a logic; images are what the user gave. A source artifact
 * whose metadata lists no patches field at all is a stand-in (not known).
 */
export function releaseKind(a: Pick<KernelArtifact, 'kind' | 'meta'>): 'real' | 'stand-in' | 'image' {
  if (a.kind === 'image') return 'image';
  if (a.kind !== 'source') return 'real';
  return Array.isArray(a.meta.patches) && a.meta.patches.length === 0 ? 'real' : 'stand-in';
}
