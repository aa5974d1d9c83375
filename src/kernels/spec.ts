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

import { readdir } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { ConfigError } from '../util/errors.ts';
import { readRegularFile } from '../util/input.ts';
import { parseJsonStrict } from '../util/json.ts';
import { parseOrThrow, show, toConfigError } from '../util/validate.ts';
import { defaultFragment } from './source-spec.ts';
import { expectSchema, kernelSpecSchema, type ParsedSpec } from './spec-schema.ts';
import type { ExpectSpec, KernelSpec, SourceSpec } from './types.ts';
import { repoPath } from '../util/repo-root.ts';

export type { DebianImageSpec, ExpectSpec, HostSpec, ImageSpec, KernelKind, KernelSpec, SourceSpec, SourceTree } from './types.ts';
export { ID_RE, KERNEL_KINDS } from './spec-schema.ts';

/**
 * Parse the `expect` field value (also used for command-line overrides):
 * "auto", "unknown", "V0".."V4", "V3/perf" or {"accounting", "counter"}.
 * Throws the ConfigError `err` makes of the problem and its fix.
 */
export function parseExpect(v: unknown, err: (problem: string, fix: string) => ConfigError): ExpectSpec {
  const r = expectSchema.safeParse(v);
  if (r.success) return r.data;
  const e = toConfigError(r.error, '');
  throw err(e.problem, e.fix);
}

/** The label form of an ExpectSpec ("auto", "unknown", "V3", "V3/perf"). */
export const expectLabel = (e: ExpectSpec): string =>
  e.mode === 'label' ? (e.counter ? `${e.accounting}/${e.counter}` : e.accounting) : e.mode;

// ───────────────────────────── parse / load ─────────────────────────────

/** A spec-relative file name resolved against the spec file's directory (built-ins: kernels/). */
function specRelative(file: string, field: string, p: string): string {
  if (isAbsolute(p)) return p;
  if (!isAbsolute(file)) throw new ConfigError(file, field, `${JSON.stringify(p)} is relative, and ${file} is not a file to resolve it against`, 'use an absolute path');
  return join(dirname(file), p);
}

/** The KernelSpec of a parsed spec object: origin and field prefix attached, a source kind's files resolved. */
function toKernelSpec(p: ParsedSpec, file: string, at: string): KernelSpec {
  const { distro, description, ...rest } = p;
  const common = { origin: file, at, ...(distro !== undefined ? { distro } : {}), ...(description !== undefined ? { description } : {}) };
  if (rest.kind === 'debian-image') return { ...rest, ...common, distro: 'debian' };
  if (rest.kind !== 'source') return { ...rest, ...common };
  const { config, patches, aux_only, ...src } = rest;
  const spec: SourceSpec = {
    ...src,
    ...common,
    config: config === undefined ? join(builtinSpecsDir(), defaultFragment(rest.arch ?? 'x86_64')) : specRelative(file, `${at}config`, config),
    patches: (patches ?? []).map((x, i) => specRelative(file, `${at}patches[${i}]`, x)),
  };
  if (aux_only === true) spec.aux_only = true;
  return spec;
}

/**
 * Parse one spec object (src/kernels/spec-schema.ts). `file` names where it
 * came from; `at` is the field prefix inside that file ("[2]." for the third
 * element of an array). Throws ConfigError naming file, field and fix.
 */
export function parseSpec(obj: unknown, file: string, at = ''): KernelSpec {
  return toKernelSpec(parseOrThrow(kernelSpecSchema, obj, file, at), file, at);
}

/** Parse a JSON text holding one spec object or an array of them. */
export function parseSpecText(text: string, file: string): KernelSpec[] {
  let data: unknown;
  try {
    data = parseJsonStrict(text);
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
    text = await readRegularFile(path);
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
export const builtinSpecsDir = (): string => repoPath('kernels') + '/';

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

/**
 * The page size a spec's kernel runs with, kB: a source build's
 * page_size_kb; a Debian arm64 package of a -16k/-64k flavour 16/64
 * (Debian's arm64-16k); else 4 (x86_64, Debian's cloud-arm64). The guest
 * reports the real one (the reproducer's hello page_kb) and cells are
 * simulated at that; this is what a run expects before booting.
 */
export function specPageKb(s: KernelSpec): number {
  if (s.kind === 'source') return s.page_size_kb ?? 4;
  if (s.kind === 'debian-image' && s.arch === 'arm64') {
    const m = /-(16|64)k(?:-unsigned)?$/.exec(s.package ?? '');
    if (m) return Number(m[1]);
  }
  return 4;
}

/** The spec as JSON again (origin/at dropped, expect as its label). */
export function specToJson(s: KernelSpec): Record<string, unknown> {
  const { origin: _o, at: _a, expect, ...rest } = s;
  return { ...rest, expect: expectLabel(expect) };
}
