// Debian kernel packages by name and version: which layout a package has,
// which ABI and flavour it carries, the upstream version of a Debian
// version, the newest of a series, the nearest to a wanted one. Pure.
//
// Two layouts (both seen on deb.debian.org, November 2026):
// - up to Debian 13 (bullseye..trixie): linux-image-<abi>-unsigned holds
//   /boot/vmlinuz-<abi> and /boot/config-<abi>;
// - Debian 14 (sid, experimental, linux 7.x): linux-image-<abi> is a meta
//   package; the kernel is linux-binary-unsigned-<abi> with
//   usr/lib/modules/<abi>/vmlinuz.unsigned (linux-binary-<abi>: the signed
//   vmlinuz), the config is in linux-base-<abi> at usr/lib/modules/<abi>/config.

import semver from 'semver';
import { ARCH_FACTS } from '../arch.ts';

/**
 * The codenames lockstep probes when a suite does not answer, to name the
 * ones that do (Debian 11..15, unstable, experimental; buster left the
 * mirror in 2024). Any other codename is tried too: the mirror decides.
 */
export const DEBIAN_CODENAMES = ['bullseye', 'bookworm', 'trixie', 'forky', 'duke', 'sid', 'experimental'] as const;

/** The pockets beside a release's own suite ("" = the codename itself). sid and experimental have none. */
export const SUITE_POCKETS = ['', '-updates', '-backports', '-security'] as const;

/** Every suite name of DEBIAN_CODENAMES x SUITE_POCKETS: the probe list (not all answer on any given day). */
export const DEBIAN_SUITES: readonly string[] = DEBIAN_CODENAMES.flatMap((c) => (c === 'sid' || c === 'experimental' ? [c] : SUITE_POCKETS.map((p) => `${c}${p}`)));

/** The shape of a Debian suite name: a codename, optionally -updates, -backports or -security. */
export const SUITE_NAME_RE = /^[a-z]{2,20}(?:-(?:updates|backports|security))?$/;

/** Is `s` shaped like a Debian suite name? Pure; whether the mirror serves it is asked at fetch time. */
export const isSuiteName = (s: string): boolean => SUITE_NAME_RE.test(s);

/** The archive a suite lives in: the -security suites at debian-security, the others at debian. Pure. */
export const suiteArchive = (suite: string): 'debian' | 'debian-security' => (suite.endsWith('-security') ? 'debian-security' : 'debian');

/**
 * The suites one sources.list of `suite` holds, as a machine of that suite
 * runs them: a release codename gets its -security suite beside it (a
 * trixie machine installs 6.12.118 from trixie-security over trixie's
 * 6.12.117); pockets, sid and experimental stand alone. Pure.
 */
export function suiteMembers(suite: string): string[] {
  if (suite.includes('-') || suite === 'sid' || suite === 'experimental') return [suite];
  return [suite, `${suite}-security`];
}

export type DebLayout = 'boot' | 'modules';

export interface KernelPackage {
  package: string;
  /** uname -r, e.g. "6.1.0-54-cloud-amd64", "7.2.13+deb14-cloud-amd64" */
  abi: string;
  /** e.g. "cloud-amd64" */
  flavour: string;
  layout: DebLayout;
}

/** The flavour every built-in Debian spec uses: small, virtio drivers built in. */
export const DEFAULT_FLAVOUR: string = ARCH_FACTS.x86_64.debianFlavour;

const ABI_RE = /^(\d+\.\d+(?:\.\d+)?(?:\+deb\d+)?(?:-\d+)?)-([a-z0-9][a-z0-9-]*)$/;

/** A kernel image package name read as layout, ABI and flavour; null for anything else (meta, -dbg, headers). */
export function kernelPackage(name: string): KernelPackage | null {
  let abi: string;
  let layout: DebLayout;
  if (name.startsWith('linux-binary-unsigned-')) { abi = name.slice('linux-binary-unsigned-'.length); layout = 'modules'; }
  else if (name.startsWith('linux-binary-')) { abi = name.slice('linux-binary-'.length); layout = 'modules'; }
  else if (name.startsWith('linux-image-')) { abi = name.slice('linux-image-'.length).replace(/-unsigned$/, ''); layout = 'boot'; }
  else return null;
  const m = ABI_RE.exec(abi);
  if (!m || m[2]!.endsWith('-dbg')) return null;
  return { package: name, abi, flavour: m[2]!, layout };
}

/**
 * The package that holds the kernel image of a name a Debian user types,
 * given the names the suite lists (`known`): from Debian 14's packaging on
 * (sid, experimental, and trixie-backports' 7.x), linux-image-<abi> is a
 * meta package that depends on linux-binary-<abi>, so it means
 * linux-binary-unsigned-<abi> (else linux-binary-<abi>) when the suite has
 * one; every other name is itself. Pure.
 */
export function imagePackageOf(name: string, known: ReadonlySet<string>): string {
  const k = kernelPackage(name);
  if (!k || name !== `linux-image-${k.abi}`) return name;
  return [`linux-binary-unsigned-${k.abi}`, `linux-binary-${k.abi}`].find((n) => known.has(n)) ?? name;
}

/** The package that holds a modules-layout kernel's config: linux-base-<abi>. */
export const configPackage = (p: KernelPackage): string | null => (p.layout === 'modules' ? `linux-base-${p.abi}` : null);

/**
 * The upstream kernel version of a Debian package version, as the model
 * reads it: "6.12.117-1~deb12u1" -> "6.12.117", "7.3~rc7-1~exp1" -> "7.3-rc7",
 * "1:5.10.223-1" -> "5.10.223".
 */
export function upstreamOf(debVersion: string): string {
  const noEpoch = debVersion.replace(/^\d+:/, '');
  const i = noEpoch.lastIndexOf('-');
  return (i > 0 ? noEpoch.slice(0, i) : noEpoch).replace(/~/g, '-');
}

/** semver of an upstream version, release candidates as prereleases (7.3-rc7 < 7.3). */
const sv = (upstream: string): semver.SemVer | null => semver.coerce(upstream, { includePrerelease: true });

/** Does `upstream` belong to `series` ("6.12" = any 6.12.x, "7" = any 7.x)? */
export function inSeries(upstream: string, series: string): boolean {
  const v = sv(upstream);
  if (!v) return false;
  const [maj, min] = series.split('.').map(Number);
  return v.major === maj && (min === undefined || v.minor === min);
}

export interface DebRow {
  package: string;
  /** the Debian version */
  version: string;
  /** the suite whose index lists it ("trixie-security"), when known (apt-cache madison says) */
  suite?: string;
}

/** Newer first: by upstream (rc before release), then the Debian version (numeric-aware), then the name. */
export function compareRows(a: DebRow, b: DebRow): number {
  const x = sv(upstreamOf(a.version));
  const y = sv(upstreamOf(b.version));
  if (x && y && semver.compare(x, y) !== 0) return semver.compare(y, x);
  return b.version.localeCompare(a.version, 'en', { numeric: true }) || a.package.localeCompare(b.package);
}

/** The newest row (of `series` when given), or null. */
export function newest(rows: readonly DebRow[], series?: string): DebRow | null {
  const fit = series === undefined ? [...rows] : rows.filter((r) => inSeries(upstreamOf(r.version), series));
  return fit.sort(compareRows)[0] ?? null;
}

const weight = (upstream: string): number => {
  const v = sv(upstream);
  return v ? v.major * 1e8 + v.minor * 1e4 + v.patch : 0;
};

/** Up to `n` rows closest to the upstream version `want`, nearest first. */
export function nearest(rows: readonly DebRow[], want: string, n = 3): DebRow[] {
  const w = weight(want);
  return [...rows].sort((a, b) => Math.abs(weight(upstreamOf(a.version)) - w) - Math.abs(weight(upstreamOf(b.version)) - w) || compareRows(a, b)).slice(0, n);
}

/** "pkg=ver, pkg=ver" */
export const rowsText = (rows: readonly DebRow[]): string => rows.map((r) => `${r.package}=${r.version}`).join(', ');

/** Parse `apt-cache madison P...` output into rows (one per package and version; sources lines dropped). */
export function parseMadison(out: string): DebRow[] {
  const rows: DebRow[] = [];
  const seen = new Set<string>();
  for (const line of out.split('\n')) {
    const f = line.split('|').map((x) => x.trim());
    if (f.length < 3 || !/Packages$/.test(f[2]!)) continue;
    const key = `${f[0]}=${f[1]}`;
    if (seen.has(key)) continue;
    seen.add(key);
    // "http://deb.debian.org/debian-security trixie-security/main amd64 Packages"
    const suite = f[2]!.split(/\s+/)[1]?.split('/')[0];
    rows.push({ package: f[0]!, version: f[1]!, ...(suite ? { suite } : {}) });
  }
  return rows;
}
