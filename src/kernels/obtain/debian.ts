// "debian-image" kernels: a linux-image-* package fetched with
// `apt-get download`, of which only /boot/vmlinuz-* and /boot/config-* are
// kept (the package is never installed).
//   <cacheDir>/kernels/debian/<package>_<package_version>/{vmlinuz,config,meta.json}
//
// apt is reached through an AptSource: today the machine's own apt
// configuration (SYSTEM_APT). A source with its own sources.list and lists
// under the cache (a Debian suite, issue 12) is another AptSource whose
// `options` point apt there (-o Dir::Etc::SourceList=..., -o Dir::State::Lists=...).

import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConfigError } from '../../util/errors.ts';
import { runTool, spawnTool, ToolError } from '../../util/exec.ts';
import { coerceKernelVersion } from '../expect.ts';
import type { DebianImageSpec } from '../types.ts';
import { checkEntry, ensureEntry, readMeta, scratchDir, writeMeta } from './cache.ts';
import { isBzImage, sha256File } from './files.ts';
import type { EnsureOptions, KernelArtifact } from './types.ts';

export interface DebianMeta {
  package: string;
  package_version: string;
  deb_sha256: string;
  vmlinuz_sha256: string;
  config_sha256: string;
  /** uname -r of the kernel, from /boot/vmlinuz-<release> */
  release: string;
  fetched_at: string;
}

/** Where apt looks for packages: extra `-o` options given to apt-cache and apt-get. */
export interface AptSource {
  /** shown in messages ("the machine's apt sources") */
  label: string;
  /** e.g. ['-o', 'Dir::State::Lists=/cache/apt/bookworm/lists'] */
  options: string[];
}

/** The machine's own apt configuration. */
export const SYSTEM_APT: AptSource = { label: "the machine's apt sources", options: [] };

const APT_INSTALL = 'this needs a Debian/Ubuntu machine with apt';
const APT_FIX = 'run `apt-get update`, then list the available ones with `apt-cache search linux-image | grep cloud-amd64-unsigned`';
const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };

const firstLines = (s: string, n = 4): string => s.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, n).join(' | ');

/** `apt-cache policy PKG`'s Candidate version, or null (unknown package / no candidate). */
export async function aptCandidate(pkg: string, apt: AptSource = SYSTEM_APT, signal?: AbortSignal): Promise<string | null> {
  let out: string;
  try {
    out = (await runTool('apt-cache', [...apt.options, 'policy', pkg], { install: APT_INSTALL, env: APT_ENV, signal })).stdout;
  } catch (e) {
    if (!(e instanceof ToolError) || e.canceled) throw e;
    return null;
  }
  const m = /^\s*Candidate:\s*(\S+)\s*$/m.exec(out);
  return m && m[1] !== '(none)' ? m[1]! : null;
}

/** The package version to fetch: the pinned one, apt's candidate, or (offline) the only one in the cache. */
async function pickVersion(spec: DebianImageSpec, parent: string, apt: AptSource, opts: EnsureOptions): Promise<string> {
  if (spec.package_version !== undefined) return spec.package_version;
  const pkg = spec.package;
  const candidate = await aptCandidate(pkg, apt, opts.signal);
  if (candidate !== null) return candidate;
  // Offline re-runs: apt knows nothing, but the cache may.
  const names = (await readdir(parent).catch(() => [] as string[])).filter((n) => n.startsWith(`${pkg}_`) && !n.endsWith('.lock'));
  const valid: string[] = [];
  for (const n of names) if (await readMeta<DebianMeta>(join(parent, n))) valid.push(n.slice(pkg.length + 1));
  if (valid.length === 1) {
    opts.log(`apt-cache has no candidate for ${pkg}; using the only cached version ${valid[0]}`);
    return valid[0]!;
  }
  if (valid.length > 1) {
    throw new ConfigError(spec.origin, `${spec.at}package_version`, `apt-cache has no candidate for ${pkg} and the cache holds several versions (${valid.join(', ')})`, `pin one with "package_version", or ${APT_FIX}`);
  }
  throw new ConfigError(spec.origin, `${spec.at}package`, `apt knows no package ${JSON.stringify(pkg)} (apt-cache policy shows no candidate)`, APT_FIX);
}

/** A "debian-image" spec's kernel, from the cache or fetched once. Throws ConfigError for apt's "no such package/version" and no network. */
export async function ensureDebian(spec: DebianImageSpec, opts: EnsureOptions, apt: AptSource = SYSTEM_APT): Promise<KernelArtifact> {
  const parent = join(opts.cacheDir, 'kernels', 'debian');
  const pv = await pickVersion(spec, parent, apt, opts);
  const label = `${spec.package}=${pv}`;
  const { entry, meta, cached } = await ensureEntry<DebianMeta>({
    parent,
    key: `${spec.package}_${pv}`,
    label,
    verb: 'fetching',
    log: opts.log,
    lockTimeoutMs: opts.lockTimeoutMs,
    signal: opts.signal,
    check: (e) => checkEntry<DebianMeta>(e, (m) => (typeof m.vmlinuz_sha256 === 'string' ? { vmlinuz: m.vmlinuz_sha256, config: m.config_sha256 } : null)),
    fill: (staging) => fetchDebian(spec, pv, parent, `${spec.package}_${pv}`, staging, apt, opts),
  });
  return {
    id: spec.id,
    kind: 'debian-image',
    vmlinuz: join(entry, 'vmlinuz'),
    version: spec.version,
    release: meta.release,
    sha256: meta.vmlinuz_sha256,
    cached,
    meta: { ...meta, config: join(entry, 'config'), cache_entry: entry },
  };
}

/** apt-get download's failure as a ConfigError when the user can fix it (package, version, network). */
function aptDownloadError(spec: DebianImageSpec, pv: string, e: ToolError): Error {
  const pkg = spec.package;
  const label = `${pkg}=${pv}`;
  const stderr = e.stderr || e.message;
  if (/Unable to locate package|has no installation candidate|No packages found/i.test(stderr)) {
    return new ConfigError(spec.origin, `${spec.at}package`, `apt does not know ${JSON.stringify(pkg)} (${firstLines(stderr, 2)})`, APT_FIX);
  }
  if (/Version '.*' for '.*' was not found|Can't select version/i.test(stderr)) {
    return new ConfigError(spec.origin, `${spec.at}package_version`, `apt has no version ${JSON.stringify(pv)} of ${pkg} (${firstLines(stderr, 2)})`,
      `check the available versions with \`apt-cache policy ${pkg}\` (run \`apt-get update\` first); old versions leave the mirror: use an "image" spec with the saved vmlinuz instead`);
  }
  if (/Failed to fetch|Temporary failure|Could not resolve|Connection failed|Unable to connect/i.test(stderr)) {
    return new ConfigError(spec.origin, `${spec.at}package`, `cannot download ${label} (${firstLines(stderr, 2)})`,
      'check the network path to the Debian mirror, or fetch the kernel elsewhere and use an "image" spec with "path"');
  }
  return new Error(`apt-get download ${label} failed: ${firstLines(stderr)}`);
}

/** Download the .deb into a scratch dir, check it, and put vmlinuz, config and meta.json into `staging`. */
async function fetchDebian(spec: DebianImageSpec, pv: string, parent: string, key: string, staging: string, apt: AptSource, opts: EnsureOptions): Promise<DebianMeta> {
  const pkg = spec.package;
  const label = `${pkg}=${pv}`;
  const work = await scratchDir(parent, key);
  try {
    opts.log(`fetching ${label} with apt-get download`);
    try {
      // Sandbox user root: apt-get download as root into a root-only dir would otherwise warn.
      await runTool('apt-get', [...apt.options, 'download', '-q', '-o', 'APT::Sandbox::User=root', label], { cwd: work, install: APT_INSTALL, env: APT_ENV, signal: opts.signal });
    } catch (e) {
      if (e instanceof ToolError && !e.canceled) throw aptDownloadError(spec, pv, e);
      throw e;
    }
    const debs = (await readdir(work)).filter((n) => n.endsWith('.deb'));
    if (debs.length !== 1) throw new Error(`apt-get download ${label} left ${debs.length} .deb files in ${work}`);
    const deb = join(work, debs[0]!);

    const fields = (await runTool('dpkg-deb', ['-f', deb, 'Package', 'Version'], { install: 'apt-get install dpkg', signal: opts.signal })).stdout;
    const gotPkg = /^Package:\s*(\S+)$/m.exec(fields)?.[1];
    const gotVer = /^Version:\s*(\S+)$/m.exec(fields)?.[1];
    if (gotPkg !== pkg || gotVer !== pv) throw new Error(`apt-get download ${label} produced ${gotPkg ?? '?'}=${gotVer ?? '?'}`);
    const upstream = coerceKernelVersion(gotVer);
    if (upstream !== coerceKernelVersion(spec.version)) {
      throw new ConfigError(spec.origin, `${spec.at}version`, `${label} carries upstream ${upstream}, but the spec says ${JSON.stringify(spec.version)}`,
        `set "version" to "${upstream}" (or pin "package_version" to a package that carries ${spec.version})`);
    }

    // Only ./boot/vmlinuz-* and ./boot/config-* leave the package.
    const root = join(work, 'root');
    await mkdir(root);
    await extractBoot(deb, root, opts.signal);
    const boot = join(root, 'boot');
    const files = await readdir(boot).catch(() => [] as string[]);
    const vm = files.filter((n) => n.startsWith('vmlinuz-'));
    const cfg = files.filter((n) => n.startsWith('config-'));
    if (vm.length !== 1 || cfg.length !== 1) throw new Error(`${label}: expected one /boot/vmlinuz-* and one /boot/config-*, found ${JSON.stringify(files)}`);
    if (!(await isBzImage(join(boot, vm[0]!)))) throw new Error(`${label}: /boot/${vm[0]} is not an x86 bzImage (no "HdrS" at 0x202)`);
    await copyFile(join(boot, vm[0]!), join(staging, 'vmlinuz'));
    await copyFile(join(boot, cfg[0]!), join(staging, 'config'));
    const meta: DebianMeta = {
      package: pkg,
      package_version: pv,
      deb_sha256: await sha256File(deb),
      vmlinuz_sha256: await sha256File(join(staging, 'vmlinuz')),
      config_sha256: await sha256File(join(staging, 'config')),
      release: vm[0]!.slice('vmlinuz-'.length),
      fetched_at: new Date().toISOString(),
    };
    await writeMeta(staging, meta);
    opts.log(`cached ${label} (release ${meta.release}, vmlinuz sha256 ${meta.vmlinuz_sha256.slice(0, 12)})`);
    return meta;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** dpkg-deb --fsys-tarfile DEB | tar -x ./boot/vmlinuz-* ./boot/config-*: two processes, no shell. */
async function extractBoot(deb: string, into: string, signal?: AbortSignal): Promise<void> {
  const dpkg = spawnTool('dpkg-deb', ['--fsys-tarfile', deb], { install: 'apt-get install dpkg', signal });
  const tar = spawnTool('tar', ['-x', '--no-same-owner', '--wildcards', '-C', into, './boot/vmlinuz-*', './boot/config-*'], { install: 'apt-get install tar', signal, stdin: 'pipe' });
  dpkg.child.stdout!.pipe(tar.child.stdin!);
  tar.child.stdin!.on('error', () => {}); // EPIPE if tar dies first: reported through its exit
  const [a, b] = await Promise.allSettled([dpkg.done, tar.done]);
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason instanceof ToolError ? new Error(`extracting /boot from ${basename(deb)} failed: ${r.reason.message}`) : r.reason;
}
