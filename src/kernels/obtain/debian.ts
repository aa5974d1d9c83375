// "debian-image" kernels: a Debian kernel package fetched with
// `apt-get download`, of which only the vmlinuz and the config are kept
// (the package is never installed). Both layouts (src/kernels/obtain/deb-kernels.ts):
// linux-image-<abi>-unsigned (/boot/vmlinuz-*, /boot/config-*) and, from
// Debian 14, linux-binary-unsigned-<abi> (usr/lib/modules/<abi>/vmlinuz*)
// with its config from linux-base-<abi>.
//   <cacheDir>/kernels/debian/<package>_<package_version>/{vmlinuz,config,meta.json}
//
// apt is reached through an AptSource: the machine's own apt configuration
// (systemAptSource, specs without "suite"), or a Debian suite with lockstep's own
// lists under the cache (src/kernels/obtain/apt-suite.ts).
// "version": "latest" (optionally of a "series") is resolved here, when the
// run fetches the kernel; the resolution is kept in the artifact's meta.

import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConfigError } from '../../util/errors.ts';
import { runTool, spawnTool, ToolError } from '../../util/exec.ts';
import { aptCacheMadisonArgv, aptCachePkgnamesArgv, aptCachePolicyArgv, aptGetDownloadArgv, dpkgDebContentsArgv, dpkgDebFieldsArgv, dpkgDebTarArgv, tarExtractArgv, xzDecompressArgv, zstdDecompressArgv } from '../../util/debian-tools.ts';
import { coerceKernelVersion } from '../expect.ts';
import type { Arch, DebianImageSpec } from '../types.ts';
import { archFacts } from '../arch.ts';
import { type DebArch, debArch, hostSuite, suiteSource, systemAptSource } from './apt-suite.ts';
import { checkEntry, ensureEntry, readMeta, scratchDir, writeMeta } from './cache.ts';
import { hvcModules, modulesArchive } from './guest-modules.ts';
import { configPackage, DEFAULT_FLAVOUR, type DebRow, imagePackageOf, kernelPackage, nearest, newest, parseMadison, rowsText, upstreamOf } from './deb-kernels.ts';
import { isArm64ImageData, isBzImage, sha256File } from './files.ts';
import type { AptSource, EnsureOptions, KernelArtifact } from './types.ts';

export type { AptSource } from './types.ts';
export { DEBIAN_SUITES, hostSuite, suiteSource } from './apt-suite.ts';

export interface DebianMeta {
  package: string;
  package_version: string;
  deb_sha256: string;
  vmlinuz_sha256: string;
  /** null when the package set has no config */
  config_sha256: string | null;
  /** uname -r of the kernel (/boot/vmlinuz-<release>, usr/lib/modules/<release>/) */
  release: string;
  /** "boot" (linux-image-*) or "modules" (linux-binary-*, Debian 14) */
  layout?: 'boot' | 'modules';
  /** the package the config came from when not the kernel's own (linux-base-<abi>) */
  config_package?: string;
  /** the guest arch (absent = x86_64, entries cached before arm64) */
  arch?: Arch;
  /** arm64: the modules of modules.cpio, in load order (src/kernels/obtain/guest-modules.ts) */
  modules?: string[];
  /** sha256 of modules.cpio, when the guest needs modules */
  modules_sha256?: string;
  fetched_at: string;
}

/** How a spec's package and version were chosen, recorded in results.json (kernels[].resolution). */
export interface DebianResolution {
  /** the suite whose index the package came from (a "trixie" spec's lists include trixie-security: then "trixie-security"); null = the machine's apt sources */
  suite: string | null;
  /** "latest", "latest 6.12", "pinned", "candidate" */
  rule: string;
  package: string;
  /** the Debian version */
  package_version: string;
  /** upstream version the package carries, e.g. "7.2.13", "7.3-rc7" */
  version: string;
  /** sha256 of the kernel's .deb */
  deb_sha256: string;
}

const APT_INSTALL = 'this needs a Debian/Ubuntu machine with apt';
const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };
const aptFix = (apt: AptSource): string => (apt.suite
  ? `pick one of the versions named, or "version": "latest" (lockstep updates its ${apt.suite} lists when older than LOCKSTEP_APT_MAX_AGE_H hours)`
  : 'run `apt-get update`, or add "suite" to use lockstep\'s own lists of a Debian suite');

const firstLines = (s: string, n = 4): string => s.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, n).join(' | ');

/** `apt-cache policy PKG`'s Candidate version, or null (unknown package / no candidate). */
export async function aptCandidate(pkg: string, apt: AptSource, signal?: AbortSignal): Promise<string | null> {
  let out: string;
  try {
    out = (await runTool('apt-cache', aptCachePolicyArgv(apt.options, pkg), { install: APT_INSTALL, env: APT_ENV, signal })).stdout;
  } catch (e) {
    if (!(e instanceof ToolError) || e.canceled) throw e;
    return null;
  }
  const m = /^\s*Candidate:\s*(\S+)\s*$/m.exec(out);
  return m && m[1] !== '(none)' ? m[1]! : null;
}

/** Every (package, Debian version) apt knows for `pkgs` (`apt-cache madison`); [] when none. */
export async function aptVersions(pkgs: readonly string[], apt: AptSource, signal?: AbortSignal): Promise<DebRow[]> {
  if (!pkgs.length) return [];
  try {
    return parseMadison((await runTool('apt-cache', aptCacheMadisonArgv(apt.options, pkgs), { install: APT_INSTALL, env: APT_ENV, signal })).stdout);
  } catch (e) {
    if (!(e instanceof ToolError) || e.canceled) throw e;
    return parseMadison(e.stdout ?? '');
  }
}

/**
 * The kernel image packages of one flavour apt knows, with every version:
 * linux-image-<abi>-unsigned and linux-binary-unsigned-<abi> (the unsigned
 * image where both exist); with `signedToo`, the signed and meta
 * linux-image-<abi> / linux-binary-<abi> names as well (kernels news).
 */
export async function kernelPackages(apt: AptSource, flavour = DEFAULT_FLAVOUR, signal?: AbortSignal, signedToo = false): Promise<DebRow[]> {
  const names = (await runTool('apt-cache', aptCachePkgnamesArgv(apt.options, 'linux-'), { install: APT_INSTALL, env: APT_ENV, signal })).stdout.split('\n');
  const kps = names.map((n) => kernelPackage(n.trim())).filter((k) => k !== null && k.flavour === flavour);
  const wanted = kps.filter((k) => signedToo || k!.package.includes('unsigned')).map((k) => k!.package);
  return aptVersions(wanted, apt, signal);
}

/**
 * The AptSource of a spec: its suite's own lists, or the machine's apt
 * sources. An arm64 spec always gets lockstep's own lists (the machine's
 * apt knows amd64 only): of its suite, else of the host's Debian suite.
 * Throws ConfigError when an arm64 spec names no suite off Debian.
 */
export async function specApt(spec: Pick<DebianImageSpec, 'suite' | 'origin' | 'at' | 'arch'>, opts: EnsureOptions): Promise<AptSource> {
  const arch = spec.arch ?? 'x86_64';
  const suite = spec.suite ?? (arch === 'x86_64' ? undefined : hostSuite() ?? undefined);
  if (suite === undefined) {
    if (arch === 'x86_64') return systemAptSource(opts.cacheDir);
    throw new ConfigError(spec.origin, `${spec.at}suite`, `an ${arch} kernel comes from lockstep's own apt lists of a Debian suite, and this machine names no Debian suite`, 'add "suite": e.g. "bookworm"');
  }
  return suiteSource(suite, { cacheDir: opts.cacheDir, log: opts.log, signal: opts.signal, arch: debArch(arch) }, { file: spec.origin, field: `${spec.at}suite` });
}

/** The flavour a spec without "package" means: cloud-amd64, cloud-arm64. */
const defaultFlavour = (arch: Arch | undefined): string => archFacts(arch).debianFlavour;

const where = (apt: AptSource): string => (apt.suite ? `Debian ${apt.suite}` : `the machine's apt sources (${hostSuite() ?? 'no Debian codename'})`);

/** One line: the suite, what is missing, the nearest versions that exist. */
function notFound(spec: DebianImageSpec, apt: AptSource, field: string, what: string, known: DebRow[]): ConfigError {
  const near = nearest(known, spec.version === 'latest' ? '999' : spec.version);
  return new ConfigError(spec.origin, `${spec.at}${field}`, `${where(apt)} has no ${what}; nearest there: ${near.length ? rowsText(near) : 'none'}`, aptFix(apt));
}

/** The image package a typed name means in `apt` (imagePackageOf: Debian 14's linux-image-<abi> meta -> linux-binary-unsigned-<abi>); logged when it differs. */
async function imagePackage(name: string, apt: AptSource, opts: EnsureOptions): Promise<string> {
  const k = kernelPackage(name);
  if (!k || name !== `linux-image-${k.abi}`) return name;
  const known = new Set((await aptVersions([`linux-binary-unsigned-${k.abi}`, `linux-binary-${k.abi}`], apt, opts.signal)).map((r) => r.package));
  const pkg = imagePackageOf(name, known);
  if (pkg !== name) opts.log(`${name} is a meta package in ${where(apt)} (Debian 14 packaging): its kernel is ${pkg}`);
  return pkg;
}

/** Package and Debian version to fetch: the pin, "latest" of the suite (or series), apt's candidate, or (offline) the only cached one. */
async function resolveVersion(spec: DebianImageSpec, parent: string, apt: AptSource, opts: EnsureOptions, unserved: ReadonlySet<string> = new Set()): Promise<{ package: string; pv: string; rule: string; from?: string }> {
  const flavour = (spec.package ? kernelPackage(spec.package)?.flavour : undefined) ?? defaultFlavour(spec.arch);
  /** the kernels of the spec's flavour (of the arch's cloud flavour when that flavour has none), for "nearest there" */
  const family = async (): Promise<DebRow[]> => {
    const rows = await kernelPackages(apt, flavour, opts.signal);
    return rows.length || flavour === defaultFlavour(spec.arch) ? rows : kernelPackages(apt, defaultFlavour(spec.arch), opts.signal);
  };
  if (spec.package) spec = { ...spec, package: await imagePackage(spec.package, apt, opts) };
  if (spec.version === 'latest') {
    const listed = spec.package ? await aptVersions([spec.package], apt, opts.signal) : await kernelPackages(apt, flavour, opts.signal);
    const rows = listed.filter((r) => !unserved.has(`${r.package}=${r.version}`));
    const pick = newest(rows, spec.series);
    const rule = spec.series ? `latest ${spec.series}` : 'latest';
    if (!pick) {
      const what = `${spec.package ?? `${flavour} kernel`}${spec.series ? ` of series ${spec.series}` : ''}`;
      const all = spec.package ? await family() : rows;
      throw notFound(spec, apt, spec.series ? 'series' : 'package', what, all);
    }
    opts.log(`${rule} in ${where(apt)}: ${pick.package}=${pick.version}${pick.suite && pick.suite !== apt.suite ? ` (from ${pick.suite})` : ''}`);
    return { package: pick.package, pv: pick.version, rule, ...(pick.suite ? { from: pick.suite } : {}) };
  }
  const pkg = spec.package!;
  if (spec.package_version !== undefined) {
    // The machine's lists may know nothing of the package offline (the cache may still hold it): only a known package's missing version is refused here.
    const rows = await aptVersions([pkg], apt, opts.signal);
    if (rows.length && !rows.some((r) => r.version === spec.package_version)) throw notFound(spec, apt, 'package_version', `${pkg}=${spec.package_version}`, rows);
    if (!rows.length && apt.suite) throw notFound(spec, apt, 'package', `${pkg}=${spec.package_version}`, await family());
    const from = rows.find((r) => r.version === spec.package_version)?.suite;
    return { package: pkg, pv: spec.package_version, rule: 'pinned', ...(from && apt.suite ? { from } : {}) };
  }
  const candidate = await aptCandidate(pkg, apt, opts.signal);
  if (candidate !== null) {
    const from = apt.suite ? (await aptVersions([pkg], apt, opts.signal)).find((r) => r.version === candidate)?.suite : undefined;
    return { package: pkg, pv: candidate, rule: 'candidate', ...(from ? { from } : {}) };
  }
  // Offline re-runs: apt knows nothing, but the cache may.
  const names = (await readdir(parent).catch(() => [] as string[])).filter((n) => n.startsWith(`${pkg}_`) && !n.endsWith('.lock'));
  const valid: string[] = [];
  for (const n of names) if (await readMeta<DebianMeta>(join(parent, n))) valid.push(n.slice(pkg.length + 1));
  if (valid.length === 1) {
    opts.log(`apt-cache has no candidate for ${pkg}; using the only cached version ${valid[0]}`);
    return { package: pkg, pv: valid[0]!, rule: 'cached' };
  }
  if (valid.length > 1) {
    throw new ConfigError(spec.origin, `${spec.at}package_version`, `apt-cache has no candidate for ${pkg} and the cache holds several versions (${valid.join(', ')})`, `pin one with "package_version", or ${aptFix(apt)}`);
  }
  throw notFound(spec, apt, 'package', `package ${pkg}`, await family().catch(() => []));
}

/** A "debian-image" spec's kernel, from the cache or fetched once. Throws ConfigError for a package or version the suite lacks (naming the nearest ones) and no network. */
export async function ensureDebian(spec: DebianImageSpec, opts: EnsureOptions, aptIn?: AptSource): Promise<KernelArtifact> {
  const apt = aptIn ?? (await specApt(spec, opts));
  // "latest": a package the suite's index lists but the mirror does not serve
  // (404: seen for bullseye-security's 5.10.262 here) gives way to the next newest
  const unserved = new Set<string>();
  for (;;) {
    try {
      return await ensureResolved(spec, opts, apt, unserved);
    } catch (e) {
      const m = /^(\S+)=(\S+) is not served/.exec((e as Error).message);
      if (spec.version !== 'latest' || !(e instanceof NotServed) || unserved.size >= 5 || !m) throw (e as Error & { cause?: Error }).cause ?? e;
      opts.log(`${m[1]}=${m[2]} is listed in ${where(apt)} but the mirror does not serve it (404): taking the next newest`);
      unserved.add(`${m[1]}=${m[2]}`);
    }
  }
}

/** A download the suite's index lists but the mirror answers 404 for; `cause` is the download's own error. */
class NotServed extends Error {}

async function ensureResolved(spec: DebianImageSpec, opts: EnsureOptions, apt: AptSource, unserved: ReadonlySet<string>): Promise<KernelArtifact> {
  const parent = join(opts.cacheDir, 'kernels', 'debian');
  const { package: pkg, pv, rule, from } = await resolveVersion(spec, parent, apt, opts, unserved);
  const label = `${pkg}=${pv}`;
  const { entry, meta, cached } = await ensureEntry<DebianMeta>({
    parent,
    key: `${pkg}_${pv}`,
    label,
    verb: 'fetching',
    log: opts.log,
    lockTimeoutMs: opts.lockTimeoutMs,
    signal: opts.signal,
    check: (e) => checkEntry<DebianMeta>(e, (m) => (typeof m.vmlinuz_sha256 === 'string'
      ? { vmlinuz: m.vmlinuz_sha256, ...(typeof m.config_sha256 === 'string' ? { config: m.config_sha256 } : {}), ...(typeof m.modules_sha256 === 'string' ? { 'modules.cpio': m.modules_sha256 } : {}) } : null)),
    fill: (staging) => fetchDebian(spec, pkg, pv, parent, `${pkg}_${pv}`, staging, apt, opts).catch((e: Error) => {
      if (/\b404\s+Not Found\b/.test(e.message)) throw new NotServed(`${pkg}=${pv} is not served by the mirror`, { cause: e });
      throw e;
    }),
  });
  const version = upstreamOf(pv);
  // the suite the package came from: trixie-security for a trixie spec's security update
  const resolution: DebianResolution = { suite: apt.suite ? from ?? apt.suite : null, rule, package: pkg, package_version: pv, version, deb_sha256: meta.deb_sha256 };
  return {
    id: spec.id,
    kind: 'debian-image',
    vmlinuz: join(entry, 'vmlinuz'),
    version: spec.version === 'latest' ? version : spec.version,
    release: meta.release,
    sha256: meta.vmlinuz_sha256,
    cached,
    ...(meta.modules_sha256 ? { initrdExtra: join(entry, 'modules.cpio') } : {}),
    meta: { ...meta, ...(meta.config_sha256 ? { config: join(entry, 'config') } : {}), cache_entry: entry, resolution },
  };
}

/** The package and version apt-get says its index lacks ("E: Version 'V' for 'P' was not found"), or null. Pure. */
export function missingVersion(stderr: string): { package: string; version: string } | null {
  const m = /Version '([^']*)' for '([^']*)' was not found/i.exec(stderr);
  return m ? { package: m[2]!, version: m[1]! } : null;
}

/**
 * apt-get download's failure (its stderr) as a ConfigError when the user can
 * fix it (a package or version the index lacks, no network: exit 2, the run
 * stops), else a plain Error: the pool's 404 for a listed file, a companion
 * package gone from the index, anything else (the kernel's cells fail as
 * infrastructure and the run goes on). Pure.
 */
export function aptDownloadError(spec: DebianImageSpec, label: string, apt: AptSource, e: ToolError): Error {
  const stderr = e.stderr || e.message;
  // The mirror's state, not the user's input: the index lists the file but the pool does not serve it
  // (bullseye-security kept 5.10.257-5.10.262 and the 6.1 meta package in its index, 404 in its pool, December 2026),
  // or a companion package of the named kernel (its linux-base config) is gone from the index. The kernel
  // cannot be had from this mirror: its cells fail as infrastructure and the other kernels of the run go on.
  if (/\b404\s+Not Found\b/i.test(stderr)) return new Error(`${where(apt)} lists ${label} but its pool answers 404 Not Found: not served (${firstLines(stderr, 2)})`);
  // the package the spec names, or the image package it was read as (Debian 14's meta linux-image-<abi>): the user's to fix
  const named = new Set([spec.package, label.slice(0, label.indexOf('='))]);
  const companion = missingVersion(stderr);
  if (companion && !named.has(companion.package)) return new Error(`${where(apt)} no longer lists ${companion.package}=${companion.version}, which ${label} needs: the kernel cannot be had from this mirror`);
  if (/Unable to locate package|has no installation candidate|No packages found|Version '.*' for '.*' was not found|Can't select version/i.test(stderr)) {
    return new ConfigError(spec.origin, `${spec.at}package`, `${where(apt)} has no ${label} (${firstLines(stderr, 2)})`, aptFix(apt));
  }
  if (/Failed to fetch|Temporary failure|Could not resolve|Connection failed|Unable to connect/i.test(stderr)) {
    return new ConfigError(spec.origin, `${spec.at}package`, `cannot download ${label} (${firstLines(stderr, 2)})`,
      'check the network path to the Debian mirror, or fetch the kernel elsewhere and use an "image" spec with "path"');
  }
  return new Error(`apt-get download ${label} failed: ${firstLines(stderr)}`);
}

/**
 * Download Debian packages (`name=version` each) from `apt` into `dir` with
 * apt-get download, and check each .deb is the package and version asked
 * for. Returns the .deb paths in the order asked. Throws ToolError from
 * apt-get (see aptDownloadError for reading it), Error on a wrong package.
 * Used for kernels here and for source packages (linux-source-5.10 from
 * bullseye) by src/kernels/obtain/source/.
 */
export async function downloadDebs(wanted: readonly { package: string; version: string }[], apt: AptSource, dir: string, signal?: AbortSignal): Promise<string[]> {
  // Sandbox user root: apt-get download as root into a root-only dir would otherwise warn.
  await runTool('apt-get', aptGetDownloadArgv(apt.options, wanted), { cwd: dir, install: APT_INSTALL, env: APT_ENV, signal });
  const debs = (await readdir(dir)).filter((n) => n.endsWith('.deb'));
  const out: string[] = [];
  for (const w of wanted) {
    const deb = debs.find((n) => n.startsWith(`${w.package}_`));
    if (!deb) throw new Error(`apt-get download ${w.package}=${w.version} left no ${w.package}_*.deb in ${dir}`);
    const p = join(dir, deb);
    const fields = (await runTool('dpkg-deb', dpkgDebFieldsArgv(p, ['Package', 'Version']), { install: 'apt-get install dpkg', signal })).stdout;
    const gotPkg = /^Package:\s*(\S+)$/m.exec(fields)?.[1];
    const gotVer = /^Version:\s*(\S+)$/m.exec(fields)?.[1];
    if (gotPkg !== w.package || gotVer !== w.version) throw new Error(`apt-get download ${w.package}=${w.version} produced ${gotPkg ?? '?'}=${gotVer ?? '?'}`);
    out.push(p);
  }
  return out;
}

/**
 * A Debian package's .deb from a suite (lockstep's own lists; null = the
 * machine's apt sources for amd64, the host suite's own lists for arm64),
 * of arch `arch`, downloaded into `dir`: the simple entry point for
 * other stages. `version` null = the suite's candidate. Throws ConfigError
 * naming the suite and the nearest versions when it has no such package/version.
 */
export async function debianPackage(pkg: string, version: string | null, suite: string | null, dir: string, opts: EnsureOptions, at: { file: string; field: string } = { file: 'spec', field: 'debian_package' }, arch: DebArch = 'amd64'): Promise<{ deb: string; version: string; sha256: string }> {
  const apt = suite === null && arch === 'amd64' ? await systemAptSource(opts.cacheDir) : await suiteSource(suite ?? hostSuite() ?? 'bookworm', { cacheDir: opts.cacheDir, log: opts.log, signal: opts.signal, arch }, at);
  const rows = await aptVersions([pkg], apt, opts.signal);
  const v = version ?? (await aptCandidate(pkg, apt, opts.signal));
  if (v === null || !rows.some((r) => r.version === v)) {
    const near = nearest(rows, version ?? '999');
    throw new ConfigError(at.file, at.field, `${where(apt)} has no ${pkg}${version ? `=${version}` : ''}; nearest there: ${near.length ? rowsText(near) : 'none'}`, aptFix(apt));
  }
  const [deb] = await downloadDebs([{ package: pkg, version: v }], apt, dir, opts.signal);
  return { deb: deb!, version: v, sha256: await sha256File(deb!) };
}

/** Download the .deb(s) into a scratch dir, check them, and put vmlinuz, config and meta.json into `staging`. */
async function fetchDebian(spec: DebianImageSpec, pkg: string, pv: string, parent: string, key: string, staging: string, apt: AptSource, opts: EnsureOptions): Promise<DebianMeta> {
  const label = `${pkg}=${pv}`;
  const kp = kernelPackage(pkg);
  const layout = kp?.layout ?? 'boot';
  const cfgPkg = kp ? configPackage(kp) : null;
  const work = await scratchDir(parent, key);
  try {
    opts.log(`fetching ${label}${cfgPkg ? ` and ${cfgPkg} (its config)` : ''} from ${apt.suite ? `Debian ${apt.suite}` : 'the machine\'s apt sources'}`);
    let debs: string[];
    try {
      debs = await downloadDebs([{ package: pkg, version: pv }, ...(cfgPkg ? [{ package: cfgPkg, version: pv }] : [])], apt, work, opts.signal);
    } catch (e) {
      if (!(e instanceof ToolError) || e.canceled) throw e;
      // trixie-backports lists the signed linux-binary-* of its older kernels (6.19.6-7.1.13 in December 2026)
      // without their linux-base-*: the kernel is had without its config, as an image package without one is
      if (!cfgPkg || missingVersion(e.stderr)?.package !== cfgPkg) throw aptDownloadError(spec, label, apt, e);
      opts.log(`${where(apt)} no longer lists ${cfgPkg}=${pv}: fetching ${label} without its config (absent kernel options unknown)`);
      try {
        debs = await downloadDebs([{ package: pkg, version: pv }], apt, work, opts.signal);
      } catch (e2) {
        if (e2 instanceof ToolError && !e2.canceled) throw aptDownloadError(spec, label, apt, e2);
        throw e2;
      }
    }
    const deb = debs[0]!;
    const upstream = coerceKernelVersion(upstreamOf(pv));
    if (spec.version !== 'latest' && upstream !== coerceKernelVersion(spec.version)) {
      throw new ConfigError(spec.origin, `${spec.at}version`, `${label} carries upstream ${upstream}, but the spec says ${JSON.stringify(spec.version)}`,
        `set "version" to "${upstream}" (or pin "package_version" to a package that carries ${spec.version})`);
    }

    const root = join(work, 'root');
    await mkdir(root);
    let vmFile: string;
    let cfgFile: string | null;
    let release: string;
    if (layout === 'boot') {
      // Only ./boot/vmlinuz-* and ./boot/config-* leave the package.
      await extractDeb(deb, root, ['./boot/vmlinuz-*', './boot/config-*'], opts.signal);
      const files = await readdir(join(root, 'boot')).catch(() => [] as string[]);
      const vm = files.filter((n) => n.startsWith('vmlinuz-'));
      const cfg = files.filter((n) => n.startsWith('config-'));
      if (vm.length !== 1 || cfg.length !== 1) throw new Error(`${label}: expected one /boot/vmlinuz-* and one /boot/config-*, found ${JSON.stringify(files)}`);
      vmFile = join(root, 'boot', vm[0]!);
      cfgFile = join(root, 'boot', cfg[0]!);
      release = vm[0]!.slice('vmlinuz-'.length);
    } else {
      // Debian 14: usr/lib/modules/<abi>/vmlinuz(.unsigned); the config from linux-base-<abi>. The signed
      // linux-binary-<abi> keeps its image in /boot/vmlinuz-<abi> (trixie-backports' 6.19.x-7.1.x).
      if (await debHas(deb, /^\.\/boot\/vmlinuz-/, opts.signal)) await extractDeb(deb, root, ['./boot/vmlinuz-*'], opts.signal);
      else await extractDeb(deb, root, ['./usr/lib/modules/*/vmlinuz*'], opts.signal);
      if (debs[1]) await extractDeb(debs[1], root, ['./usr/lib/modules/*/config'], opts.signal);
      const boot = await readdir(join(root, 'boot')).catch(() => [] as string[]);
      if (boot.length === 1 && boot[0]!.startsWith('vmlinuz-')) {
        const abi = boot[0]!.slice('vmlinuz-'.length);
        await mkdir(join(root, 'usr/lib/modules', abi), { recursive: true });
        await rename(join(root, 'boot', boot[0]!), join(root, 'usr/lib/modules', abi, 'vmlinuz'));
      }
      const abis = await readdir(join(root, 'usr/lib/modules')).catch(() => [] as string[]);
      if (abis.length !== 1) throw new Error(`${label}: expected one usr/lib/modules/<abi>/, found ${JSON.stringify(abis)}`);
      const mod = join(root, 'usr/lib/modules', abis[0]!);
      const files = await readdir(mod);
      const vm = files.filter((n) => n === 'vmlinuz' || n === 'vmlinuz.unsigned');
      if (vm.length !== 1) throw new Error(`${label}: expected one usr/lib/modules/${abis[0]}/vmlinuz, found ${JSON.stringify(files)}`);
      vmFile = join(mod, vm[0]!);
      cfgFile = files.includes('config') ? join(mod, 'config') : null;
      release = abis[0]!;
    }
    const arch = spec.arch ?? 'x86_64';
    if (arch === 'x86_64' && !(await isBzImage(vmFile))) throw new Error(`${label}: ${basename(vmFile)} is not an x86 bzImage (no "HdrS" at 0x202)`);
    if (arch === 'arm64' && !isArm64ImageData(await readFile(vmFile))) throw new Error(`${label}: ${basename(vmFile)} is not an arm64 Image (no "ARM\\x64" at 0x38, plain or gzipped): is the package for ${arch}?`);
    await copyFile(vmFile, join(staging, 'vmlinuz'));
    if (cfgFile) await copyFile(cfgFile, join(staging, 'config'));
    let modules: { names: string[]; sha256: string } | null = null;
    if (arch === 'arm64') {
      if (!cfgFile) throw new Error(`${label}: no kernel config in the package set, so the virtio console modules an arm64 guest needs cannot be chosen`);
      modules = await guestModules(deb, root, release, await readFile(cfgFile, 'utf8'), join(staging, 'modules.cpio'), label, opts.signal);
    }
    const meta: DebianMeta = {
      package: pkg,
      package_version: pv,
      deb_sha256: await sha256File(deb),
      vmlinuz_sha256: await sha256File(join(staging, 'vmlinuz')),
      config_sha256: cfgFile ? await sha256File(join(staging, 'config')) : null,
      release,
      layout,
      ...(cfgPkg && cfgFile ? { config_package: `${cfgPkg}=${pv}` } : {}),
      ...(arch !== 'x86_64' ? { arch } : {}),
      ...(modules ? { modules: modules.names, modules_sha256: modules.sha256 } : {}),
      fetched_at: new Date().toISOString(),
    };
    await writeMeta(staging, meta);
    opts.log(`cached ${label} (release ${meta.release}, vmlinuz sha256 ${meta.vmlinuz_sha256.slice(0, 12)}${cfgFile ? '' : ', no config in the package set'})`);
    return meta;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The virtio console modules of an arm64 package (guest-modules.ts) as a cpio
 * written to `out`: extracted from [usr/]lib/modules/<release>/kernel/, .ko.xz and
 * .ko.zst decompressed here (busybox insmod takes plain .ko). Null when the
 * config builds them in. Throws Error naming a module the package lacks.
 */
async function guestModules(deb: string, root: string, release: string, config: string, out: string, label: string, signal?: AbortSignal): Promise<{ names: string[]; sha256: string } | null> {
  const mods = hvcModules(config);
  if (!mods.length) return null;
  // lib/modules (bookworm) or, merged /usr, usr/lib/modules (trixie on)
  let prefix = 'lib/modules';
  try {
    await extractDeb(deb, root, mods.map((m) => `./${prefix}/${release}/kernel/${m.path}.ko*`), signal);
  } catch (e) {
    if (signal?.aborted) throw e;
    prefix = 'usr/lib/modules';
    await extractDeb(deb, root, mods.map((m) => `./${prefix}/${release}/kernel/${m.path}.ko*`), signal);
  }
  const loaded: { name: string; data: Buffer }[] = [];
  for (const m of mods) {
    const dir = join(root, prefix, release, 'kernel', m.path.slice(0, m.path.lastIndexOf('/')));
    const file = (await readdir(dir).catch(() => [] as string[])).find((n) => n === `${m.name}.ko` || n.startsWith(`${m.name}.ko.`));
    if (!file) throw new Error(`${label}: no ${m.path}.ko in the package (the guest needs it for hvc0)`);
    const p = join(dir, file);
    const data = await readFile(file.endsWith('.ko') ? p : await decompress(p, signal));
    loaded.push({ name: m.name, data });
  }
  await writeFile(out, modulesArchive(loaded));
  return { names: loaded.map((m) => m.name), sha256: await sha256File(out) };
}

/** Decompress a .ko.xz / .ko.zst beside itself (xz -dk, zstd -d: FILE without its extension); returns the .ko path. Throws ToolError when the tool fails or is missing. */
async function decompress(file: string, signal?: AbortSignal): Promise<string> {
  const out = file.replace(/\.(xz|zst)$/, '');
  if (file.endsWith('.xz')) await runTool('xz', xzDecompressArgv(file), { install: 'apt-get install xz-utils', signal });
  else await runTool('zstd', zstdDecompressArgv(file), { install: 'apt-get install zstd', signal });
  return out;
}

/** Does .deb `deb` hold a path matching `re` (`dpkg-deb -c`, paths as "./boot/...")? Throws Error when dpkg-deb fails. */
async function debHas(deb: string, re: RegExp, signal?: AbortSignal): Promise<boolean> {
  const out = (await runTool('dpkg-deb', dpkgDebContentsArgv(deb), { install: 'apt-get install dpkg', signal })).stdout;
  return out.split('\n').some((l) => re.test(l.slice(l.indexOf('./'))));
}

/** dpkg-deb --fsys-tarfile DEB | tar -x PATTERNS into `into`: two processes, no shell. Throws when either fails (a pattern that matches nothing fails tar). */
export async function extractDeb(deb: string, into: string, patterns: string[], signal?: AbortSignal): Promise<void> {
  const dpkg = spawnTool('dpkg-deb', dpkgDebTarArgv(deb), { install: 'apt-get install dpkg', signal });
  const tar = spawnTool('tar', tarExtractArgv(into, patterns), { install: 'apt-get install tar', signal, stdin: 'pipe' });
  dpkg.child.stdout!.pipe(tar.child.stdin!);
  tar.child.stdin!.on('error', () => {}); // EPIPE if tar dies first: reported through its exit
  const [a, b] = await Promise.allSettled([dpkg.done, tar.done]);
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason instanceof ToolError ? new Error(`extracting ${patterns.join(' ')} from ${basename(deb)} failed: ${r.reason.message}`) : r.reason;
}
