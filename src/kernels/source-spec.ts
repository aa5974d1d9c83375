// The spec fields of kind "source": which tree, which fragment, which
// patches. Pure: no I/O; src/kernels/obtain/source/ builds the kernel.
//
// Documented form:
//   {"id": "fix-4", "kind": "source", "version": "6.1.192",
//    "source": {"debian_package": "linux-source-6.1"},     (+ "suite": "bullseye": from lockstep's own lists; or {"path": "/abs/tree"},
//                                                           {"git": URL, "ref": "v5.3"},
//                                                           {"tarball": URL, "sha256": HEX})
//    "config": "config/lockstep-guest.config",              (default: that fragment)
//    "patches": ["patches/fix-4-v2-c4b75479741c.patch"],   (applied in order)
//    "aux_only": true,                                      (cells SKIP: needs an AUX-capable PMU)
//    "expect": "V2/shared"}
// Relative config/patch paths are resolved against the directory of the spec
// file (kernels/ for the built-ins).

import { dirname, isAbsolute, join } from 'node:path';
import { type FieldReader, readSuite } from './fields.ts';
import type { SourceSpec, SourceTree } from './types.ts';

/** The fragment used when a spec names none (kernels/config/...). */
export const DEFAULT_FRAGMENT = 'config/lockstep-guest.config';

/** Why aux_only cells are skipped. */
export const AUX_SKIP_REASON = 'needs an AUX-capable PMU (Intel PT, CoreSight); QEMU\'s emulated CPUs have none';

const DEB_SOURCE_RE = /^linux-source-[0-9]+\.[0-9]+$/;
const GIT_REF_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

type Common = Omit<SourceSpec, 'kind' | 'version' | 'source' | 'config' | 'patches'>;

/** Resolve a spec-relative file name against the spec file's directory. */
function specRelative(r: FieldReader, field: string, p: string, origin: string): string {
  if (p.split('/').includes('..')) throw r.error(field, `${JSON.stringify(p)} contains ".."`, 'write the path without ".." components');
  if (isAbsolute(p)) return p;
  if (!isAbsolute(origin)) {
    throw r.error(field, `${JSON.stringify(p)} is relative, and ${origin} is not a file to resolve it against`, 'use an absolute path');
  }
  return join(dirname(origin), p);
}

/**
 * Reads the kind-specific fields of a "source" spec. `sub` makes a reader for
 * the nested "source" object (field paths "source.x").
 */
export function readSourceSpec(
  r: FieldReader,
  c: Common,
  version: string,
  sub: (obj: Record<string, unknown>, at: string) => FieldReader,
  builtinDir: string,
): SourceSpec {
  const raw = r.raw('source');
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw r.error(
      'source',
      raw === undefined ? 'missing' : `must be an object, got ${Array.isArray(raw) ? 'array' : raw === null ? 'null' : typeof raw}`,
      'add "source": {"debian_package": "linux-source-6.1"} (or {"path": "/abs/tree"}, {"git": URL, "ref": REF}, {"tarball": URL, "sha256": HEX})',
    );
  }
  const s = sub(raw as Record<string, unknown>, `${r.at}source.`);
  const kinds = ['debian_package', 'path', 'git', 'tarball'].filter((k) => s.has(k));
  const oneOf = 'give exactly one of "debian_package", "path", "git" (+ "ref"), "tarball" (+ "sha256")';
  if (kinds.length !== 1) {
    throw r.error('source', kinds.length ? `names several trees (${kinds.join(', ')})` : 'names no tree', oneOf);
  }
  let tree: SourceTree;
  switch (kinds[0]) {
    case 'debian_package': {
      const pkg = s.string('debian_package', { required: true, pattern: DEB_SOURCE_RE, what: 'a Debian kernel source package such as "linux-source-6.1"', max: 64 });
      const suite = readSuite(s);
      tree = suite === undefined ? { type: 'debian', package: pkg } : { type: 'debian', package: pkg, suite };
      break;
    }
    case 'path': {
      const p = s.string('path', { required: true, what: 'the absolute path of a kernel tree' });
      if (!isAbsolute(p)) throw s.error('path', `${JSON.stringify(p)} is a relative path`, 'use the absolute path of the kernel tree');
      if (p.split('/').includes('..')) throw s.error('path', `${JSON.stringify(p)} contains ".."`, 'write the path without ".." components');
      tree = { type: 'path', path: p.replace(/\/+$/, '') || '/' };
      break;
    }
    case 'git': {
      const url = s.string('git', { required: true, what: 'a git URL', max: 2048 });
      const ref = s.string('ref', { required: true, pattern: GIT_REF_RE, what: 'a tag, branch or commit, e.g. "v5.3"', max: 128 });
      tree = { type: 'git', url, ref };
      break;
    }
    default: {
      const url = s.string('tarball', { required: true, what: 'an http(s) URL of a .tar.xz/.tar.gz kernel tarball', max: 2048 });
      if (!/^https?:\/\//.test(url)) throw s.error('tarball', `${JSON.stringify(url)} is not an http(s) URL`, 'use an http:// or https:// URL (a local tree goes in "path")');
      const sha = s.string('sha256', { required: true, what: '64 hex digits (sha256sum FILE)' });
      if (!/^[0-9a-fA-F]{64}$/.test(sha)) throw s.error('sha256', `${JSON.stringify(sha)} is not a sha256`, 'use 64 hex digits (sha256sum FILE)');
      tree = { type: 'tarball', url, sha256: sha.toLowerCase() };
    }
  }
  s.finish('"source"');

  // Built-in specs resolve against kernels/; user files against their own directory.
  const origin = c.origin;
  const cfgRaw = r.string('config', { what: 'a kconfig fragment file, e.g. "config/lockstep-guest.config"', max: 1024 });
  const config = cfgRaw === undefined ? join(builtinDir, DEFAULT_FRAGMENT) : specRelative(r, 'config', cfgRaw, origin);

  const pr = r.raw('patches');
  const patches: string[] = [];
  if (pr !== undefined) {
    if (!Array.isArray(pr)) throw r.error('patches', 'must be an array of file names', 'write "patches": ["patches/x.patch", ...] (applied in order with patch -p1)');
    pr.forEach((p, i) => {
      const field = `patches[${i}]`;
      if (typeof p !== 'string' || p.length === 0) throw r.error(field, 'must be a non-empty string', 'name a patch file');
      if (/[\u0000-\u001f\u007f`$;&|<>\\*?!"'(){}[\]]/.test(p)) throw r.error(field, `${JSON.stringify(p)} contains a control or shell metacharacter`, 'rename the patch file');
      patches.push(specRelative(r, field, p, origin));
    });
  }
  if (tree.type === 'path' && patches.length) {
    throw r.error('patches', 'a "path" tree is built as it is (lockstep never edits a tree it does not own)', 'apply the patches to a copy of the tree yourself and point "path" at it, or remove "patches"');
  }

  const aux = r.raw('aux_only');
  if (aux !== undefined && typeof aux !== 'boolean') throw r.error('aux_only', `must be true or false, got ${JSON.stringify(aux)}`, 'write "aux_only": true');

  const spec: SourceSpec = { ...c, kind: 'source', version, source: tree, config, patches };
  if (aux === true) spec.aux_only = true;
  return spec;
}
