// The kernel spec file format as a zod schema: what `parseSpec` checks and
// what `lockstep schema kernel-spec` publishes (schemas/kernel-spec.schema.json).
// The parsed form is close to the file: relative config/patch paths are
// resolved afterwards against the spec file (spec.ts), since the schema does
// not know where the file lies. Pure: no I/O.
//
// Adding a kind = one strict object in KIND_SCHEMAS (its own fields and the
// common ones) and its KernelSpec type in types.ts.

import semver from 'semver';
import { z } from 'zod';
import { readKernelVersion } from '../kernel-facts/index.ts';
import { ACCOUNTINGS, COUNTERS, type Accounting, type Counter } from '../model/accounting.ts';
import { GIT_URL_FIX, gitUrlProblem } from '../util/git-url.ts';
import { bool, explain, oneOf, prose, quotedList, show, strictObject, typeName, unsafeText } from '../util/validate.ts';
import { DEBIAN_SUITES, SUITE_NAME_RE } from './obtain/deb-kernels.ts';
import { ARCHES, PAGE_SIZES_KB, type ExpectSpec, type SourceTree } from './types.ts';

export const KERNEL_KINDS = ['host', 'debian-image', 'image', 'source'] as const;

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
const DEB_SOURCE_RE = /^linux-source-[0-9]+\.[0-9]+$/;
const GIT_REF_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const EXPECT_RE = /^(auto|unknown|(?:V[0-4]|V1[ab])(?:\/(?:shared|perf))?)$/;

/**
 * A spec string: not empty, at most `max` characters, no control or shell
 * metacharacter (src/util/validate.ts), no surrounding blanks, and matching
 * `re` when given (`what` is the fix then).
 */
function specString(what: string, max: number, re?: RegExp) {
  const s = z.string({
    error: (iss) => {
      const field = JSON.stringify(iss.path?.[iss.path.length - 1] ?? 'value');
      return iss.input === undefined ? explain('missing', `add ${field}: ${what}`) : explain(`must be a string, got ${typeName(iss.input)} ${show(iss.input)}`, `write ${field} as a JSON string: ${what}`);
    },
  }).superRefine((v, ctx) => {
    const add = (problem: string, fix: string): void => ctx.addIssue({ code: 'custom', message: explain(problem, fix) });
    const bad = v.length === 0 ? null : unsafeText(v, '');
    if (v.length === 0) add('is empty', 'give a non-empty value or leave the field out');
    else if (v.length > max) add(`is ${v.length} characters long (max ${max})`, 'shorten it');
    else if (bad !== null) ctx.addIssue({ code: 'custom', message: bad });
    else if (v !== v.trim()) add('has leading or trailing whitespace', 'remove the surrounding whitespace');
  });
  return re ? s.regex(re, { error: (iss) => explain(`invalid value ${show(iss.input)}`, `use ${what}`) }) : s;
}

const absPath = (what: string) =>
  specString(what, 4096).superRefine((p, ctx) => {
    if (!p.startsWith('/')) ctx.addIssue({ code: 'custom', message: explain(`${show(p)} is a relative path`, `use ${what}`) });
    else if (p.split('/').includes('..')) ctx.addIssue({ code: 'custom', message: explain(`${show(p)} contains ".."`, 'write the path without ".." components') });
  });

const sha256 = specString('64 hex digits (sha256sum FILE)', 64).superRefine((s, ctx) => {
  if (!SHA256_RE.test(s)) ctx.addIssue({ code: 'custom', message: explain(`${show(s)} is not a sha256 (64 hex digits)`, 'use 64 hex digits (sha256sum FILE)') });
}).transform((s) => s.toLowerCase());

const httpUrl = (what: string) =>
  specString(what, 2048).superRefine((u, ctx) => {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      ctx.addIssue({ code: 'custom', message: explain(`${show(u)} is not a URL`, 'use an absolute http:// or https:// URL') });
      return;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: explain(`unsupported scheme ${show(parsed.protocol)}`, 'use an http:// or https:// URL (for a local file use "path")') });
    else if (parsed.username || parsed.password) ctx.addIssue({ code: 'custom', message: explain('contains credentials', 'remove user:password from the URL') });
  });

const version = specString('the upstream kernel version, e.g. "5.3.1", "6.1.190" or "6.18.44-fc-v509"', 64, KERNEL_VERSION_RE).superRefine((v, ctx) => {
  let problem: string | null = null;
  try { if (readKernelVersion(v) === null) problem = `cannot read a kernel version from ${show(v)}`; } catch (e) { problem = (e as Error).message; }
  if (problem !== null) ctx.addIssue({ code: 'custom', message: explain(problem, 'write it as MAJOR.MINOR[.PATCH][-suffix] (major at most 99), e.g. "6.1.190"') });
});

/** A Debian suite lockstep keeps its own apt lists of (src/kernels/obtain/apt-suite.ts). */
// Any codename with an optional -updates/-backports/-security pocket; whether
// the mirror serves it is asked when the kernel is fetched (exit 2 naming the suites that answer).
const suite = z.string({ error: (iss) => explain(`a Debian suite is a string, got ${show(iss.input)}`, 'e.g. "trixie-backports"') })
  .regex(SUITE_NAME_RE, { error: (iss) => explain(`${show(iss.input)} is not a Debian suite name`,
    `write a codename, optionally with -updates, -backports or -security, e.g. ${DEBIAN_SUITES.filter((x) => x.startsWith('trixie')).join(', ')} (or leave "suite" out for the machine's apt sources)`) });

const EXPECT_FIX = 'use "auto", "unknown", "V0".."V4", a label like "V3/perf", or {"accounting": "V3", "counter": "perf"}';

function expectError(iss: { input?: unknown }): string {
  const v = iss.input;
  if (typeof v === 'string') return explain(CONTROL_OR(v) ?? `invalid value ${show(v)}`, EXPECT_FIX);
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).find((k) => k !== 'accounting' && k !== 'counter');
    if (extra !== undefined) return explain(`unknown key ${show(extra)} in the expect object`, EXPECT_FIX);
    if (!(ACCOUNTINGS as readonly unknown[]).includes(o.accounting)) return explain(`expect.accounting must be one of ${ACCOUNTINGS.join(', ')}, got ${show(o.accounting)}`, EXPECT_FIX);
    return explain(`expect.counter must be one of ${COUNTERS.join(', ')}, got ${show(o.counter)}`, EXPECT_FIX);
  }
  return explain(`must be a string or an object, got ${typeName(v)}`, EXPECT_FIX);
}

/** The `expect` field: a label string or {accounting, counter}; absent = "auto". */
export const expectSchema = z
  .union([
    z.string({ error: expectError }).regex(EXPECT_RE, { error: expectError }),
    z.strictObject({ accounting: z.enum(ACCOUNTINGS, { error: expectError }), counter: z.enum(COUNTERS, { error: expectError }).optional() }, { error: expectError }),
  ], { error: expectError })
  .optional()
  .transform((v): ExpectSpec => {
    if (v === undefined || v === 'auto') return { mode: 'auto' };
    if (v === 'unknown') return { mode: 'unknown' };
    if (typeof v === 'object') return { mode: 'label', accounting: v.accounting, counter: v.counter ?? null };
    const [a, c] = v.split('/');
    return { mode: 'label', accounting: a as Accounting, counter: (c as Counter | undefined) ?? null };
  });

const CONTROL_OR = (v: string): string | null => {
  const bad = unsafeText(v, '');
  return bad === null ? null : bad.split('\u0000')[0]!;
};

/** Fields every kind takes. */
const common = {
  id: specString('an id of [a-z0-9][a-z0-9._-]{0,63}, e.g. "debian-6.1.190"', 64, ID_RE),
  expect: expectSchema,
  distro: specString('a lower-case distro name such as "debian" or "upstream"', 32, DISTRO_RE).optional(),
  description: prose('description', 200, '"what this kernel is"').superRefine((v, ctx) => {
    if (v !== v.trim()) ctx.addIssue({ code: 'custom', message: explain('has leading or trailing whitespace', 'remove the surrounding whitespace') });
  }).optional(),
};

const kindLit = <K extends (typeof KERNEL_KINDS)[number]>(k: K) => z.literal(k);
const NOT_OBJECT = 'write {"id": "...", "kind": "...", ...}';

const sourceTreeSchema = z
  .strictObject({
    debian_package: specString('a Debian kernel source package such as "linux-source-6.1"', 64, DEB_SOURCE_RE).optional(),
    suite: suite.optional(),
    path: absPath('the absolute path of a kernel tree').optional(),
    git: specString('a git URL', 2048).superRefine((u, ctx) => {
      const bad = gitUrlProblem(u, true);
      if (bad !== null) ctx.addIssue({ code: 'custom', message: explain(`${show(u)} ${bad}`, `${GIT_URL_FIX}, or an absolute path of a local repository`) });
    }).optional(),
    ref: specString('a tag, branch or commit, e.g. "v5.3"', 128, GIT_REF_RE).optional(),
    tarball: httpUrl('an http(s) URL of a .tar.xz/.tar.gz kernel tarball').optional(),
    sha256: sha256.optional(),
  }, {
    error: (iss) => iss.code === 'unrecognized_keys'
      ? explain(`unknown field ${show(iss.keys[0])} in "source"`, 'give exactly one of "debian_package" (+ "suite"), "path", "git" (+ "ref"), "tarball" (+ "sha256")')
      : explain(iss.input === undefined ? 'missing' : `must be an object, got ${typeName(iss.input)}`, 'add "source": {"debian_package": "linux-source-6.1"} (or {"path": "/abs/tree"}, {"git": URL, "ref": REF}, {"tarball": URL, "sha256": HEX})'),
  })
  .transform((s, ctx): SourceTree => {
    const kinds = (['debian_package', 'path', 'git', 'tarball'] as const).filter((k) => s[k] !== undefined);
    const fail = (path: string[], problem: string, fix: string): never => {
      ctx.addIssue({ code: 'custom', path, message: explain(problem, fix) });
      return z.NEVER;
    };
    if (kinds.length !== 1) return fail([], kinds.length ? `names several trees (${kinds.join(', ')})` : 'names no tree', 'give exactly one of "debian_package", "path", "git" (+ "ref"), "tarball" (+ "sha256")');
    const allowed: Record<string, string[]> = { debian_package: ['suite'], path: [], git: ['ref'], tarball: ['sha256'] };
    const extra = Object.keys(s).find((k) => s[k as keyof typeof s] !== undefined && k !== kinds[0] && !allowed[kinds[0]!]!.includes(k));
    if (extra !== undefined) return fail([extra], `unknown field for a "${kinds[0]}" source`, `remove it (allowed: ${quotedList([kinds[0]!, ...allowed[kinds[0]!]!])})`);
    switch (kinds[0]) {
      case 'debian_package': return s.suite === undefined ? { type: 'debian', package: s.debian_package! } : { type: 'debian', package: s.debian_package!, suite: s.suite };
      case 'path': return { type: 'path', path: s.path!.replace(/\/+$/, '') || '/' };
      case 'git': return s.ref === undefined ? fail(['ref'], 'missing', 'add "ref": a tag, branch or commit, e.g. "v5.3"') : { type: 'git', url: s.git!, ref: s.ref };
      default: return s.sha256 === undefined ? fail(['sha256'], 'missing', 'add "sha256": 64 hex digits (sha256sum FILE)') : { type: 'tarball', url: s.tarball!, sha256: s.sha256 };
    }
  });

const patchName = specString('a patch file name', 1024).superRefine((p, ctx) => {
  if (p.split('/').includes('..')) ctx.addIssue({ code: 'custom', message: explain(`${show(p)} contains ".."`, 'write the path without ".." components') });
});

/** VM kinds: "virtme" boots through virtme-ng (src/runner/virtme.ts); "qemu" (the default) is lockstep's own boot */
const vmRuntime = z.enum(['qemu', 'virtme'], { error: (iss) => explain(`unknown runtime ${show(iss.input)}`, 'use "qemu" or "virtme", or leave "runtime" out') }).optional();

/** VM kinds: the guest architecture (src/kernels/types.ts ARCHES) */
const arch = z.enum(ARCHES, { error: (iss) => explain(`unknown arch ${show(iss.input)}`, `use ${quotedList([...ARCHES])}, or leave "arch" out for x86_64`) }).optional();

/** The refinement every VM kind shares: vng boots x86_64 guests only here. */
function vmRefine(s: { runtime?: 'qemu' | 'virtme'; arch?: (typeof ARCHES)[number] }, ctx: z.RefinementCtx): void {
  if (s.runtime === 'virtme' && s.arch !== undefined && s.arch !== 'x86_64') {
    ctx.addIssue({ code: 'custom', path: ['runtime'], message: explain(`the virtme runtime boots x86_64 guests only, and "arch" is ${show(s.arch)}`, 'leave "runtime" out (lockstep boots arm64 guests with its own qemu-system-aarch64)') });
  }
}

const KIND_SCHEMAS = {
  host: strictObject({ kind: kindLit('host'), ...common, runtime: z.literal('container', { error: (iss) => explain(`unknown runtime ${show(iss.input)}`, 'use "container", or leave "runtime" out to run on the host natively') }).optional() }, 'kind "host"', NOT_OBJECT),

  'debian-image': strictObject({
    kind: kindLit('debian-image'), runtime: vmRuntime, arch,
    ...common,
    package: specString('a Debian kernel package, e.g. "linux-image-6.1.0-54-cloud-amd64-unsigned" or "linux-binary-unsigned-7.2.13+deb14-cloud-amd64"', 128, DEB_PACKAGE_RE).superRefine((p, ctx) => {
      if (!p.startsWith('linux-image-') && !p.startsWith('linux-binary-')) ctx.addIssue({ code: 'custom', message: explain(`${show(p)} is not a linux-image-* or linux-binary-* package`, 'name a kernel image package (apt-cache pkgnames linux- | grep cloud-amd64)') });
    }).optional(),
    version: z.union([z.literal('latest'), version], { error: (iss) => (iss.code === 'invalid_union' ? iss.errors[1]?.[0]?.message : undefined) }),
    suite: suite.optional(),
    series: specString('an upstream series such as "6.12" or "7"', 16, SERIES_RE).optional(),
    package_version: specString('a Debian package version, e.g. "6.1.190-1"', 64, DEB_VERSION_RE).optional(),
  }, 'kind "debian-image"', NOT_OBJECT).superRefine((s, ctx) => {
    vmRefine(s, ctx);
    const fail = (field: string, problem: string, fix: string): void => ctx.addIssue({ code: 'custom', path: [field], message: explain(problem, fix) });
    const latest = s.version === 'latest';
    if (s.distro !== undefined && s.distro !== 'debian') fail('distro', `a debian-image kernel is a Debian kernel, not ${show(s.distro)}`, 'remove "distro" or set it to "debian"');
    else if (!latest && s.package === undefined) fail('package', 'missing', 'add "package": a Debian kernel package, e.g. "linux-image-6.1.0-54-cloud-amd64-unsigned"');
    else if (s.series !== undefined && !latest) fail('series', 'only means something with "version": "latest"', 'remove "series", or set "version": "latest"');
    else if (s.package_version !== undefined && latest) fail('package_version', 'contradicts "version": "latest"', 'remove "package_version" (latest is resolved at run start), or pin "version" too');
    else if (s.package_version !== undefined) {
      const a = semver.coerce(s.package_version);
      const b = semver.coerce(s.version);
      if (a && b && a.version !== b.version) fail('package_version', `${show(s.package_version)} carries upstream ${a.version}, but "version" says ${show(s.version)}`, 'make "version" the upstream part of "package_version" (check with apt-cache policy PACKAGE)');
    }
  }),

  image: strictObject({
    kind: kindLit('image'), runtime: vmRuntime, arch,
    ...common,
    version,
    path: absPath('an absolute path, e.g. "/srv/kernels/bzImage-5.3.1"').optional(),
    url: httpUrl('an http(s) URL').optional(),
    sha256: sha256.optional(),
  }, 'kind "image"', NOT_OBJECT).superRefine((s, ctx) => {
    vmRefine(s, ctx);
    const fail = (field: string, problem: string, fix: string): void => ctx.addIssue({ code: 'custom', path: [field], message: explain(problem, fix) });
    if (s.path !== undefined && s.url !== undefined) fail('url', 'both "path" and "url" are given', 'keep exactly one of "path" and "url"');
    else if (s.path === undefined && s.url === undefined) fail('path', 'missing (an image needs "path" or "url" + "sha256")', 'add "path": "/abs/bzImage", or "url" and "sha256"');
    else if (s.url !== undefined && s.sha256 === undefined) fail('sha256', 'missing', 'add "sha256": 64 hex digits (sha256sum FILE)');
  }),

  source: strictObject({
    kind: kindLit('source'), runtime: vmRuntime, arch,
    ...common,
    version,
    source: sourceTreeSchema,
    config: specString('a kconfig fragment file, e.g. "config/lockstep-guest.config"', 1024).optional(),
    patches: z.array(patchName, { error: () => explain('must be an array of file names', 'write "patches": ["patches/x.patch", ...] (applied in order with patch -p1)') }).optional(),
    aux_only: bool('aux_only', 'true').optional(),
    page_size_kb: z.number({ error: (iss) => explain(`must be a number of kB, got ${typeName(iss.input)} ${show(iss.input)}`, 'write 4, 16 or 64') }).optional(),
  }, 'kind "source"', NOT_OBJECT).superRefine((s, ctx) => {
    vmRefine(s, ctx);
    if (s.page_size_kb !== undefined) {
      const a = s.arch ?? 'x86_64';
      const ok = PAGE_SIZES_KB[a];
      if (!ok.includes(s.page_size_kb)) ctx.addIssue({ code: 'custom', path: ['page_size_kb'], message: explain(`${show(s.page_size_kb)} kB pages do not exist on ${a}`, a === 'x86_64' ? 'leave "page_size_kb" out (x86_64 has 4 kB pages), or set "arch": "arm64" for 16 or 64' : `use one of ${ok.join(', ')}`) });
    }
    if (s.source.type === 'path' && (s.patches?.length ?? 0) > 0) {
      ctx.addIssue({ code: 'custom', path: ['patches'], message: explain('a "path" tree is built as it is (lockstep never edits a tree it does not own)', 'apply the patches to a copy of the tree yourself and point "path" at it, or remove "patches"') });
    }
  }),
};

/** One kernel spec object (any kind). */
export const kernelSpecSchema = z.discriminatedUnion('kind', [KIND_SCHEMAS.host, KIND_SCHEMAS['debian-image'], KIND_SCHEMAS.image, KIND_SCHEMAS.source], {
  error: (iss) => {
    const v = iss.input;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return explain(`a kernel spec must be a JSON object, got ${typeName(v)}`, NOT_OBJECT);
    const k = (v as Record<string, unknown>).kind;
    if (k === undefined) return explain('missing', `add "kind": one of ${KERNEL_KINDS.join(', ')}`);
    if (typeof k !== 'string') return explain(`must be a string, got ${typeName(k)} ${show(k)}`, `write "kind" as a JSON string: one of ${KERNEL_KINDS.join(', ')}`);
    return explain(`unknown kind ${show(k)}`, `use one of ${KERNEL_KINDS.join(', ')}`);
  },
});

/** A spec file: one spec object or a non-empty array of them. */
export const kernelSpecFileSchema = z.union([kernelSpecSchema, z.array(kernelSpecSchema).min(1)]);

export type ParsedSpec = z.output<typeof kernelSpecSchema>;
