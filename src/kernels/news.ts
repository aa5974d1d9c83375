// `lockstep kernels news`, the pure part: every cloud kernel the Debian
// mirror serves across the suites (from apt-cache madison rows or a saved
// Packages index), which of them no published run has measured yet, and the
// expectation row (src/kernels/expect.ts) each one's upstream version falls
// in. No I/O: src/cli/commands/kernels-news.ts reads the suites and results.

import { logicLabel } from '../model/accounting.ts';
import { resolveExpect } from './expect.ts';
import { compareRows, DEFAULT_FLAVOUR, type DebRow, kernelPackage, upstreamOf } from './obtain/deb-kernels.ts';
import { parseSpec } from './spec.ts';

/** One kernel package on the mirror with what lockstep expects of it. */
export interface NewsRow {
  suite: string;
  package: string;
  /** the Debian version, e.g. "7.3.4-1~bpo13+1" */
  version: string;
  /** the upstream version the model reads, e.g. "7.3.4", "7.3-rc7" */
  upstream: string;
  /** e.g. "V4/unknown", "V3/perf"; "unknown" when the table has no logic */
  expected: string;
  /** the expectation's reason: the table rows it crossed */
  reason: string;
  /** true when no published run measured this package at this version */
  new: boolean;
}

/** Is `name` a kernel image package of `flavour` (signed, unsigned or Debian 14's meta linux-image-<abi>)? */
const isImage = (name: string, flavour: string): boolean => kernelPackage(name)?.flavour === flavour;

/**
 * Which package of one kernel lockstep boots first: the unsigned image (0),
 * Debian 14's signed linux-binary-* (1), a signed linux-image-* (2), a meta
 * package with no ABI number in its name (3). Pure.
 */
const imageRank = (p: string): number => (!/\d+\.\d+\.\d+/.test(p) ? 3 : p.includes('unsigned') ? 0 : p.startsWith('linux-binary-') ? 1 : 2);

/**
 * One row per ABI, Debian version and suite: the unsigned image where the
 * suite has it (what lockstep boots), else the signed one (trixie-backports
 * keeps only signed builds of its older kernels). Pure.
 */
export function oneImagePerKernel(rows: readonly DebRow[]): DebRow[] {
  const best = new Map<string, DebRow>();
  for (const r of rows) {
    const k = kernelPackage(r.package);
    if (!k) continue;
    const key = `${r.suite ?? '?'} ${k.abi}=${r.version}`;
    const had = best.get(key);
    if (!had || imageRank(r.package) < imageRank(had.package)) best.set(key, r);
  }
  return [...best.values()];
}

/**
 * The kernel image packages of `flavour` in a Debian Packages index
 * (the file apt keeps per suite: "Package:" / "Version:" stanzas separated by
 * blank lines), as rows of `suite`. Pure.
 */
export function parsePackagesIndex(text: string, suite: string, flavour = DEFAULT_FLAVOUR): DebRow[] {
  const rows: DebRow[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)\s*$/m.exec(stanza)?.[1];
    const version = /^Version:\s*(\S+)\s*$/m.exec(stanza)?.[1];
    if (name && version && isImage(name, flavour)) rows.push({ package: name, version, suite });
  }
  return rows;
}

/** "package=version" of every Debian kernel a results.json measured (kernels[].resolution). Pure. */
export function measuredPackages(results: readonly unknown[]): Set<string> {
  const out = new Set<string>();
  for (const r of results) {
    const kernels = (r as { kernels?: unknown }).kernels;
    if (!Array.isArray(kernels)) continue;
    for (const k of kernels) {
      const res = (k as { resolution?: { package?: unknown; package_version?: unknown } }).resolution;
      if (res && typeof res.package === 'string' && typeof res.package_version === 'string') out.add(`${res.package}=${res.package_version}`);
    }
  }
  return out;
}

/** The expectation of a Debian kernel at `upstream`, as `"expect": "auto"` derives it. Pure. */
export function expectationOf(pkg: string, upstream: string): { expected: string; reason: string } {
  try {
    const spec = parseSpec({ id: 'news', kind: 'debian-image', package: pkg, version: upstream, expect: 'auto' }, 'kernels news');
    const e = resolveExpect(spec, upstream);
    return { expected: e.logic ? logicLabel(e.logic) : 'unknown', reason: e.reason };
  } catch (err) {
    return { expected: 'unknown', reason: (err as Error).message };
  }
}

/**
 * One row per (suite, kernel ABI, version) of `rows` of `flavour`
 * (oneImagePerKernel), newest first, with its expectation and whether it is
 * new: `measured` ("package=version") has neither it nor another package of
 * the same flavour at the same Debian version. Pure.
 */
export function kernelNews(rows: readonly DebRow[], measured: ReadonlySet<string>, flavour = DEFAULT_FLAVOUR): NewsRow[] {
  // A Debian version of this flavour measured under another package name (the signed image, the meta package,
  // the same build in another suite) is the same kernel: not new.
  const flavoured = [...measured].filter((m) => kernelPackage(m.slice(0, m.indexOf('=')))?.flavour === flavour);
  const measuredVersions = new Set(flavoured.map((m) => m.slice(m.indexOf('=') + 1)));
  const seen = new Set<string>();
  const out: NewsRow[] = [];
  for (const r of oneImagePerKernel(rows.filter((x) => isImage(x.package, flavour))).sort(compareRows)) {
    const key = `${r.suite ?? '?'} ${r.package}=${r.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const upstream = upstreamOf(r.version);
    out.push({ suite: r.suite ?? '?', package: r.package, version: r.version, upstream, ...expectationOf(r.package, upstream), new: !measured.has(`${r.package}=${r.version}`) && !measuredVersions.has(r.version) });
  }
  return out;
}

/** The table and the "new" lines ("7.3.4 in trixie-backports: expected V4/unknown (...)"). Pure. */
export function renderNews(rows: readonly NewsRow[], measuredFrom: string): string {
  const w = (s: string, n: number): string => s.padEnd(n);
  const lines = [`${w('suite', 20)} ${w('upstream', 10)} ${w('expected', 11)} ${w('new', 4)} package=version`];
  for (const r of rows) lines.push(`${w(r.suite, 20)} ${w(r.upstream, 10)} ${w(r.expected, 11)} ${w(r.new ? 'new' : '', 4)} ${r.package}=${r.version}`);
  const fresh = rows.filter((r) => r.new);
  const suites = new Set(rows.map((r) => r.suite)).size;
  lines.push('', `${rows.length} cloud kernels in ${suites} suites; ${fresh.length} not measured by ${measuredFrom}:`);
  for (const r of fresh) lines.push(`- ${r.upstream} in ${r.suite}: expected ${r.expected} (${r.reason})`);
  return `${lines.join('\n')}\n`;
}

/** A pinned `debian-image` kernel spec (src/kernels/spec-schema.ts) for one Debian kernel package. */
export interface PinnedDebianSpec {
  id: string;
  kind: 'debian-image';
  suite: string;
  package: string;
  /** the upstream version the model reads, e.g. "7.3.4" */
  version: string;
  /** the Debian version, e.g. "7.3.4-1~bpo13+1" */
  package_version: string;
  expect: 'auto';
  description: string;
}

/** "debian-<suite>-<Debian version>" folded into a kernel id ([a-z0-9._-], at most 64). Pure. */
export const newsSpecId = (suite: string, version: string): string =>
  `debian-${suite}-${version.toLowerCase().replace(/[^a-z0-9._-]+/g, '-')}`.slice(0, 64);

/**
 * One pinned spec per Debian kernel version in `rows` (`"expect": "auto"`),
 * for `lockstep run --kernel-spec` to measure: the same Debian version served
 * by several suites (trixie and trixie-security, a meta package beside its
 * image) is measured once, under the first suite `rows` lists it in (newest
 * first) with the image package preferred over a meta one; the others are
 * named in its description. Pure.
 */
export function specsOfNews(rows: readonly NewsRow[]): PinnedDebianSpec[] {
  const byVersion = new Map<string, NewsRow[]>();
  for (const r of rows) byVersion.set(r.version, [...(byVersion.get(r.version) ?? []), r]);
  return [...byVersion.values()].map((same) => {
    const r = [...same].sort((a, b) => imageRank(a.package) - imageRank(b.package))[0]!;
    const also = [...new Set(same.map((x) => x.suite))].filter((s) => s !== r.suite);
    return {
      id: newsSpecId(r.suite, r.version), kind: 'debian-image', suite: r.suite, package: r.package, version: r.upstream, package_version: r.version, expect: 'auto',
      description: `Debian ${r.suite} cloud kernel ${r.version} (${r.package})${also.length ? `, also served by ${also.join(', ')}` : ''}`,
    };
  });
}
