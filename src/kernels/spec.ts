// Kernel specs: which kernels a run covers and which accounting logic each one
// is expected to implement. A spec is a small JSON object; a spec file holds
// one object or an array of them. The parser is strict: unknown fields, wrong
// types, relative paths, `..`, control characters and shell metacharacters are
// all refused with a ConfigError naming the file, the field and the fix.
// (No spec string ever reaches a shell — every tool runs through
// execFile/spawn with an argument array — the check is defence in depth and
// catches paste accidents early.)
//
// Documented form:
//   {"id": "my-5.3", "kind": "image", "path": "/abs/bzImage", "version": "5.3.1", "expect": "auto"}
//
// Adding a kind = adding one entry to KIND_VALIDATORS (see `source`, reserved).

import { readFile, readdir } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { ACCOUNTINGS, COUNTERS, type Accounting, type Counter } from '../model/accounting.ts';
import { ConfigError } from '../util/errors.ts';
import { checkString, FieldReader, readSuite, show, typeName } from './fields.ts';
import { readSourceSpec } from './source-spec.ts';
import type { DebianImageSpec, ExpectSpec, ImageSpec, KernelKind, KernelSpec, SpecCommon } from './types.ts';

export type { DebianImageSpec, ExpectSpec, HostSpec, ImageSpec, KernelKind, KernelSpec, SourceSpec, SourceTree } from './types.ts';

export const KERNEL_KINDS: readonly KernelKind[] = ['host', 'debian-image', 'image', 'source'];

// ───────────────────────────── patterns ─────────────────────────────

export const ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SHA256_RE = /^[0-9a-fA-F]{64}$/;
/** Debian policy package name. */
const DEB_PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]+$/;
/** Debian policy version: [epoch:]upstream[-revision]. */
const DEB_VERSION_RE = /^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$/;
/** Kernel versions as people write them: 5.3.1, 6.1.190, 6.18.44-fc-v509, 6.12.117+deb12. */
const KERNEL_VERSION_RE = /^[0-9][A-Za-z0-9.+~_-]{0,63}$/;
const DISTRO_RE = /^[a-z][a-z0-9-]{0,31}$/;
/** An upstream series for "version": "latest": "6.12", "7". */
const SERIES_RE = /^[0-9]+(?:\.[0-9]+)?$/;


// ───────────────────────────── shared field validators ─────────────────────────────

function readVersion(r: FieldReader): string {
  const v = r.string('version', {
    required: true,
    pattern: KERNEL_VERSION_RE,
    what: 'the upstream kernel version, e.g. "5.3.1", "6.1.190" or "6.18.44-fc-v509"',
    max: 64,
  });
  if (semver.coerce(v) === null) {
    throw r.error('version', `cannot read a kernel version from ${show(v)}`, 'write it as MAJOR.MINOR[.PATCH][-suffix], e.g. "6.1.190"');
  }
  return v;
}

function readAbsPath(r: FieldReader, field: string, required: boolean): string | undefined {
  const what = 'an absolute path, e.g. "/srv/kernels/bzImage-5.3.1"';
  const p = required ? r.string(field, { required: true, what }) : r.string(field, { what });
  if (p === undefined) return undefined;
  if (!isAbsolute(p)) throw r.error(field, `${show(p)} is a relative path`, `use ${what}`);
  if (p.split('/').includes('..')) throw r.error(field, `${show(p)} contains ".."`, 'write the path without ".." components');
  return p;
}

function readSha256(r: FieldReader, required: boolean): string | undefined {
  const what = '64 hex digits (sha256sum FILE)';
  const s = required ? r.string('sha256', { required: true, what }) : r.string('sha256', { what });
  if (s === undefined) return undefined;
  if (!SHA256_RE.test(s)) throw r.error('sha256', `${show(s)} is not a sha256 (64 hex digits)`, `use ${what}`);
  return s.toLowerCase();
}

function readUrl(r: FieldReader): string | undefined {
  const u = r.string('url', { what: 'an http(s) URL', max: 2048 });
  if (u === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw r.error('url', `${show(u)} is not a URL`, 'use an absolute http:// or https:// URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw r.error('url', `unsupported scheme ${show(parsed.protocol)}`, 'use an http:// or https:// URL (for a local file use "path")');
  }
  if (parsed.username || parsed.password) {
    throw r.error('url', 'contains credentials', 'remove user:password from the URL');
  }
  return u;
}

/** Parse the `expect` field value (also used for command-line overrides). */
export function parseExpect(v: unknown, err: (problem: string, fix: string) => ConfigError): ExpectSpec {
  const fix = 'use "auto", "unknown", "V0".."V4" (or "V1a", "V1b"), a label like "V3/perf", or {"accounting": "V3", "counter": "perf"}';
  if (v === undefined) return { mode: 'auto' };
  if (typeof v === 'string') {
    checkString(v, err, 32);
    if (v === 'auto') return { mode: 'auto' };
    if (v === 'unknown') return { mode: 'unknown' };
    const m = /^(V[0-4]|V1[ab])(?:\/(shared|perf))?$/.exec(v);
    if (!m) throw err(`invalid value ${show(v)}`, fix);
    return { mode: 'label', accounting: m[1] as Accounting, counter: (m[2] as Counter | undefined) ?? null };
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k !== 'accounting' && k !== 'counter') throw err(`unknown key ${show(k)} in the expect object`, fix);
    }
    if (typeof o.accounting !== 'string' || !(ACCOUNTINGS as readonly string[]).includes(o.accounting)) {
      throw err(`expect.accounting must be one of ${ACCOUNTINGS.join(', ')}, got ${show(o.accounting)}`, fix);
    }
    if (o.counter !== undefined && (typeof o.counter !== 'string' || !(COUNTERS as readonly string[]).includes(o.counter))) {
      throw err(`expect.counter must be one of ${COUNTERS.join(', ')}, got ${show(o.counter)}`, fix);
    }
    return { mode: 'label', accounting: o.accounting as Accounting, counter: (o.counter as Counter | undefined) ?? null };
  }
  throw err(`must be a string or an object, got ${typeName(v)}`, fix);
}

/** The label form of an ExpectSpec ("auto", "unknown", "V3", "V3/perf"). */
export const expectLabel = (e: ExpectSpec): string =>
  e.mode === 'label' ? (e.counter ? `${e.accounting}/${e.counter}` : e.accounting) : e.mode;

// ───────────────────────────── kind validators ─────────────────────────────

type Common = Omit<SpecCommon, 'kind'>;

/** One validator per kind: reads the kind's own fields from `r` and returns the spec. */
export type KindValidator = (r: FieldReader, common: Common) => KernelSpec;

export const KIND_VALIDATORS: Record<KernelKind, KindValidator> = {
  host: (r, c) => {
    const rt = r.string('runtime', { what: '"container" (the host kernel through a Docker container), or leave it out', max: 32 });
    if (rt === undefined) return { ...c, kind: 'host' };
    if (rt !== 'container') throw r.error('runtime', `unknown runtime ${show(rt)}`, 'use "container", or leave "runtime" out to run on the host natively');
    return { ...c, kind: 'host', runtime: 'container' };
  },

  'debian-image': (r, c) => {
    if (c.distro !== undefined && c.distro !== 'debian') {
      throw r.error('distro', `a debian-image kernel is a Debian kernel, not ${show(c.distro)}`, 'remove "distro" or set it to "debian"');
    }
    const suite = readSuite(r);
    const latest = r.raw('version') === 'latest';
    const pkgOpts = {
      pattern: DEB_PACKAGE_RE,
      what: 'a Debian kernel package, e.g. "linux-image-6.1.0-54-cloud-amd64-unsigned" or "linux-binary-unsigned-7.2.13+deb14-cloud-amd64"',
      max: 128,
    };
    const pkg = latest ? r.string('package', pkgOpts) : r.string('package', { ...pkgOpts, required: true });
    if (pkg !== undefined && !pkg.startsWith('linux-image-') && !pkg.startsWith('linux-binary-')) {
      throw r.error('package', `${show(pkg)} is not a linux-image-* or linux-binary-* package`, 'name a kernel image package (apt-cache pkgnames linux- | grep cloud-amd64)');
    }
    const version = latest ? (r.string('version'), 'latest') : readVersion(r);
    const series = r.string('series', { pattern: SERIES_RE, what: 'an upstream series such as "6.12" or "7"', max: 16 });
    if (series !== undefined && !latest) throw r.error('series', 'only means something with "version": "latest"', 'remove "series", or set "version": "latest"');
    const pv = r.string('package_version', { pattern: DEB_VERSION_RE, what: 'a Debian package version, e.g. "6.1.190-1"', max: 64 });
    const spec: DebianImageSpec = { ...c, kind: 'debian-image', distro: 'debian', version };
    if (pkg !== undefined) spec.package = pkg;
    if (suite !== undefined) spec.suite = suite;
    if (series !== undefined) spec.series = series;
    if (pv !== undefined) {
      if (latest) throw r.error('package_version', 'contradicts "version": "latest"', 'remove "package_version" (latest is resolved at run start), or pin "version" too');
      const a = semver.coerce(pv);
      const b = semver.coerce(version);
      if (a && b && a.version !== b.version) {
        throw r.error('package_version', `${show(pv)} carries upstream ${a.version}, but "version" says ${show(version)}`, 'make "version" the upstream part of "package_version" (check with apt-cache policy PACKAGE)');
      }
      spec.package_version = pv;
    }
    return spec;
  },

  image: (r, c) => {
    const version = readVersion(r);
    const path = readAbsPath(r, 'path', false);
    const url = readUrl(r);
    if (path !== undefined && url !== undefined) throw r.error('url', 'both "path" and "url" are given', 'keep exactly one of "path" and "url"');
    if (path === undefined && url === undefined) throw r.error('path', 'missing (an image needs "path" or "url" + "sha256")', 'add "path": "/abs/bzImage", or "url" and "sha256"');
    const sha256 = readSha256(r, url !== undefined);
    const spec: ImageSpec = { ...c, kind: 'image', version };
    if (path !== undefined) spec.path = path;
    if (url !== undefined) spec.url = url;
    if (sha256 !== undefined) spec.sha256 = sha256;
    return spec;
  },

  source: (r, c) => readSourceSpec(r, c, readVersion(r), (o, at) => new FieldReader(o, r.file, at), builtinSpecsDir()),
};

// ───────────────────────────── parse / load ─────────────────────────────

/**
 * Parse one spec object. `file` names where it came from; `at` is the field
 * prefix inside that file ("[2]." for the third element of an array).
 */
export function parseSpec(obj: unknown, file: string, at = ''): KernelSpec {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new ConfigError(file, at.replace(/\.$/, ''), `a kernel spec must be a JSON object, got ${typeName(obj)}`, 'write {"id": "...", "kind": "...", ...}');
  }
  const r = new FieldReader(obj as Record<string, unknown>, file, at);
  const id = r.string('id', { required: true, pattern: ID_RE, what: 'an id of [a-z0-9][a-z0-9._-]{0,63}, e.g. "debian-6.1.190"', max: 64 });
  const kindRaw = r.string('kind', { required: true, what: `one of ${KERNEL_KINDS.join(', ')}` });
  if (!(KERNEL_KINDS as readonly string[]).includes(kindRaw)) {
    throw r.error('kind', `unknown kind ${show(kindRaw)}`, `use one of ${KERNEL_KINDS.join(', ')}`);
  }
  const kind = kindRaw as KernelKind;
  const expect = parseExpect(r.raw('expect'), (problem, fix) => r.error('expect', problem, fix));
  const distro = r.string('distro', { pattern: DISTRO_RE, what: 'a lower-case distro name such as "debian" or "upstream"', max: 32 });
  const description = r.string('description', { what: 'one line of text', max: 200 });
  const common: Common = { id, expect, origin: file, at };
  if (distro !== undefined) common.distro = distro;
  if (description !== undefined) common.description = description;
  const spec = KIND_VALIDATORS[kind](r, common);
  r.finish(`kind "${kind}"`);
  return spec;
}

/** Parse a JSON text holding one spec object or an array of them. */
export function parseSpecText(text: string, file: string): KernelSpec[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, '', `not valid JSON (${(e as Error).message})`, 'fix the JSON syntax (jq . FILE shows where)');
  }
  let specs: KernelSpec[];
  if (Array.isArray(data)) {
    if (data.length === 0) throw new ConfigError(file, '', 'the array holds no kernel spec', 'add at least one spec object, or remove the file');
    specs = data.map((o, i) => parseSpec(o, file, `[${i}].`));
  } else {
    specs = [parseSpec(data, file)];
  }
  return checkUniqueIds(specs);
}

/** Read and parse a spec file (one spec object or an array of them). */
export async function loadSpecFile(path: string): Promise<KernelSpec[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(path, '', `cannot read the kernel spec file (${code ?? (e as Error).message})`, 'check the path and its permissions');
  }
  return parseSpecText(text, path);
}

/** Throw a ConfigError on the first id seen twice; returns the list unchanged. */
export function checkUniqueIds(specs: readonly KernelSpec[]): KernelSpec[] {
  const first = new Map<string, KernelSpec>();
  for (const s of specs) {
    const prev = first.get(s.id);
    if (prev) {
      throw new ConfigError(
        s.origin,
        `${s.at}id`,
        `duplicate kernel id ${show(s.id)} (also defined in ${prev.origin}${prev.at ? ` at ${prev.at.replace(/\.$/, '')}` : ''})`,
        'give every kernel spec a unique id',
      );
    }
    first.set(s.id, s);
  }
  return [...specs];
}

/** The directory of the built-in specs: <repo>/kernels/. */
export const builtinSpecsDir = (): string => fileURLToPath(new URL('../../kernels/', import.meta.url));

/** Load every built-in spec (<repo>/kernels/*.json, sorted by file name). */
export async function builtinSpecs(dir = builtinSpecsDir()): Promise<KernelSpec[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  const all: KernelSpec[] = [];
  for (const n of names) all.push(...(await loadSpecFile(join(dir, n))));
  return checkUniqueIds(all);
}

/** Load several spec files (and optionally the built-ins first); ids must be unique across all. */
export async function loadSpecs(files: readonly string[], opts: { builtins?: boolean } = {}): Promise<KernelSpec[]> {
  const all: KernelSpec[] = opts.builtins ? await builtinSpecs() : [];
  for (const f of files) all.push(...(await loadSpecFile(f)));
  return checkUniqueIds(all);
}

/** The spec as JSON again (origin/at dropped, expect as its label). */
export function specToJson(s: KernelSpec): Record<string, unknown> {
  const { origin: _o, at: _a, expect, ...rest } = s;
  return { ...rest, expect: expectLabel(expect) };
}
