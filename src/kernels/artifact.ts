// Kernel artifacts: turn a spec into a bootable vmlinuz on this machine.
//
// Cache layout (content-addressed, every entry verified by hash before use):
//   <cacheDir>/kernels/debian/<package>_<package_version>/{vmlinuz,config,meta.json}
//   <cacheDir>/kernels/image/<sha256>/{vmlinuz,meta.json}
//   <cacheDir>/kernels/<kind>/<key>.lock        held while one process fills <key>
//   <cacheDir>/kernels/<kind>/.tmp-<key>-*      staging, renamed into place at the end
//
// An entry appears by one rename(2) of a complete staging directory, so an
// interrupted fetch never leaves a half entry. Misses are serialised per entry
// with an O_EXCL lock file (stale locks of dead pids are broken); a second
// process waits and then uses the first one's result.
//
// Every external tool runs through execFile/spawn with an argument array,
// never through a shell.

import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir, hostname, release as osRelease, version as osVersion, machine as osMachine } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { promisify } from 'node:util';
import { dir as tmpDir } from 'tmp-promise';
import { ConfigError, MissingDependencyError } from '../util/errors.ts';
import { coerceKernelVersion } from './expect.ts';
import { ensureSourceKernel } from './build.ts';
import type { DebianImageSpec, HostSpec, ImageSpec, KernelKind, KernelSpec } from './spec.ts';

const execFileP = promisify(execFile);

export interface KernelArtifact {
  id: string;
  kind: KernelKind;
  /** the bzImage to boot; null for host */
  vmlinuz: string | null;
  /** upstream version (MAJOR.MINOR.PATCH[-suffix] as the spec gives it; coerced for host) */
  version: string;
  /** uname -r style release, when known */
  release?: string;
  /** sha256 of vmlinuz; null for host */
  sha256: string | null;
  /** true when the artifact came from the cache (or from another process's fetch) without a download */
  cached: boolean;
  /** kind-specific facts: package, package_version, deb_sha256, config path, url, ... */
  meta: Record<string, unknown>;
}

export interface EnsureOptions {
  cacheDir: string;
  log: (msg: string) => void;
  /** Give up waiting for another process's lock after this long (default 30 min). */
  lockTimeoutMs?: number;
}

/** $LOCKSTEP_CACHE, else $XDG_CACHE_HOME/lockstep, else ~/.cache/lockstep. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LOCKSTEP_CACHE) return resolve(env.LOCKSTEP_CACHE);
  // The XDG spec says relative values are to be ignored.
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) return join(env.XDG_CACHE_HOME, 'lockstep');
  return join(homedir(), '.cache', 'lockstep');
}

/** Make `spec`'s kernel available locally (fetching/verifying as needed). */
export async function ensureKernel(spec: KernelSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  switch (spec.kind) {
    case 'host':
      return hostArtifact(spec);
    case 'debian-image':
      return ensureDebian(spec, opts);
    case 'image':
      return spec.path !== undefined ? localImage(spec, spec.path, opts) : ensureImageUrl(spec, opts);
    case 'source':
      return ensureSourceKernel(spec, opts);
  }
}

// ───────────────────────────── helpers ─────────────────────────────

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** x86 boot protocol: "HdrS" at 0x202 marks a bzImage. */
export async function isBzImage(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0x202);
    return bytesRead === 4 && b.toString('latin1') === 'HdrS';
  } finally {
    await fh.close();
  }
}

/**
 * The kernel's own version string from a bzImage header (setup header field
 * kernel_version at 0x20e: offset - 0x200 of a NUL-terminated string), e.g.
 * "6.1.0-54-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...". Null when absent.
 */
export async function bzImageVersionString(path: string): Promise<string | null> {
  const fh = await open(path, 'r');
  try {
    const hdr = Buffer.alloc(0x210);
    const { bytesRead } = await fh.read(hdr, 0, hdr.length, 0);
    if (bytesRead < hdr.length || hdr.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
    const off = hdr.readUInt16LE(0x20e);
    if (off === 0) return null;
    const s = Buffer.alloc(256);
    const r = await fh.read(s, 0, s.length, off + 0x200);
    const text = s.toString('latin1', 0, r.bytesRead);
    const end = text.indexOf('\0');
    const v = (end >= 0 ? text.slice(0, end) : text).trim();
    return /^[0-9][\x20-\x7e]*$/.test(v) ? v : null;
  } finally {
    await fh.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** execFile with an argument array; ENOENT becomes a MissingDependencyError. */
async function run(cmd: string, args: string[], opts: { cwd?: string; install?: string } = {}): Promise<RunResult> {
  try {
    const r = await execFileP(cmd, args, {
      cwd: opts.cwd,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
    return { stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (err.code === 'ENOENT') {
      throw new MissingDependencyError(cmd, opts.install ?? `install the package that provides ${cmd}`);
    }
    throw e;
  }
}

const firstLines = (s: string | undefined, n = 4): string =>
  (s ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, n)
    .join(' | ');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, not ours
  }
};

// ───────────────────────────── lock ─────────────────────────────

/**
 * Take `lockPath` (O_EXCL create). A lock whose pid is dead (same host) is
 * stale and broken; a live one is waited for with backoff. Returns the release
 * function.
 */
export async function acquireLock(
  lockPath: string,
  what: string,
  opts: { log: (msg: string) => void; timeoutMs?: number },
): Promise<() => Promise<void>> {
  const token = `${process.pid}\n${hostname()}\n${randomBytes(8).toString('hex')}\n${new Date().toISOString()}\n`;
  const started = Date.now();
  const timeout = opts.timeoutMs ?? 30 * 60_000;
  let delay = 50;
  let announced = 0;
  await mkdir(dirname(lockPath), { recursive: true });
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx');
      try {
        await fh.writeFile(token);
      } finally {
        await fh.close();
      }
      return async () => {
        // Only remove the lock if it is still ours.
        const now = await readFile(lockPath, 'utf8').catch(() => null);
        if (now === token) await unlink(lockPath).catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const held = await readFile(lockPath, 'utf8').catch(() => null);
    if (held === null) continue; // released between open and read
    const [pidText, host] = held.split('\n');
    const pid = Number(pidText);
    // The holder writes its token right after creating the file; a token still
    // incomplete after 10 s belongs to a process that died in between.
    const complete = held.split('\n').length >= 5;
    const age = complete ? 0 : Date.now() - ((await stat(lockPath).catch(() => null))?.mtimeMs ?? Date.now());
    const stale = complete ? host === hostname() && Number.isInteger(pid) && pid > 0 && !pidAlive(pid) : age > 10_000;
    if (stale) {
      // Stale: move it aside atomically, then make sure we moved the stale one.
      const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        await rename(lockPath, aside);
      } catch {
        continue; // someone else broke it first
      }
      const moved = await readFile(aside, 'utf8').catch(() => null);
      if (moved !== held) {
        // We moved a fresh lock that appeared in between: put it back.
        await link(aside, lockPath).catch(() => {});
      } else {
        opts.log(`removed a stale lock${complete ? ` of dead pid ${pid}` : ''} for ${what}`);
      }
      await unlink(aside).catch(() => {});
      continue;
    }
    const waited = Date.now() - started;
    if (waited > timeout) {
      throw new Error(`timed out after ${Math.round(waited / 1000)} s waiting for ${lockPath} (held by pid ${pidText} on ${host}); remove it if that process is gone`);
    }
    if (announced === 0 || Date.now() - announced > 30_000) {
      opts.log(`waiting for another lockstep (pid ${pidText}${host && host !== hostname() ? ` on ${host}` : ''}) fetching ${what}`);
      announced = Date.now();
    }
    await sleep(delay);
    delay = Math.min(2000, Math.round(delay * 1.5));
  }
}

/** Remove staging directories left by interrupted fetches of `key` (call with the lock held). */
async function cleanStaging(parent: string, key: string): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(`.tmp-${key}-`)).map((n) => rm(join(parent, n), { recursive: true, force: true })));
}

/** A fresh staging dir inside `parent` (same filesystem as the final entry). */
async function makeStaging(parent: string, key: string): Promise<string> {
  const p = join(parent, `.tmp-${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(p, { recursive: true });
  return p;
}

/** Move a complete staging dir into place (replacing a bad entry, if any). */
async function publish(staging: string, entry: string): Promise<void> {
  await rm(entry, { recursive: true, force: true });
  await rename(staging, entry);
}

// ───────────────────────────── host ─────────────────────────────

function hostArtifact(spec: HostSpec): KernelArtifact {
  const release = osRelease();
  const version = coerceKernelVersion(release);
  if (version === null) throw new Error(`cannot read a kernel version from os.release() = ${JSON.stringify(release)}`);
  return {
    id: spec.id,
    kind: 'host',
    vmlinuz: null,
    version,
    release,
    sha256: null,
    cached: false,
    meta: { uname_version: osVersion(), machine: osMachine() },
  };
}

// ───────────────────────────── debian-image ─────────────────────────────

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

const APT_FIX = 'run `apt-get update`, then list the available ones with `apt-cache search linux-image | grep cloud-amd64-unsigned`';

/** `apt-cache policy PKG`'s Candidate, or null (unknown package / no candidate). */
export async function aptCandidate(pkg: string): Promise<string | null> {
  let out: RunResult;
  try {
    out = await run('apt-cache', ['policy', pkg], { install: 'this needs a Debian/Ubuntu machine with apt' });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    return null;
  }
  const m = /^\s*Candidate:\s*(\S+)\s*$/m.exec(out.stdout);
  return m && m[1] !== '(none)' ? m[1]! : null;
}

/** Cache key of a Debian entry. */
const debKey = (pkg: string, pv: string) => `${pkg}_${pv}`;

async function readDebMeta(entry: string): Promise<DebianMeta | null> {
  try {
    return JSON.parse(await readFile(join(entry, 'meta.json'), 'utf8')) as DebianMeta;
  } catch {
    return null;
  }
}

type Checked<M> = { ok: M } | { bad: string } | null;

/** Verify an entry: its meta when vmlinuz (and config) match their recorded hashes, why not, or null when absent. */
async function checkDebEntry(entry: string): Promise<Checked<DebianMeta>> {
  if (!(await exists(entry))) return null;
  const meta = await readDebMeta(entry);
  if (!meta || typeof meta.vmlinuz_sha256 !== 'string') return { bad: 'meta.json missing or unreadable' };
  const vm = join(entry, 'vmlinuz');
  if (!(await exists(vm))) return { bad: 'vmlinuz missing' };
  const got = await sha256File(vm);
  if (got !== meta.vmlinuz_sha256) return { bad: `vmlinuz sha256 ${got} != recorded ${meta.vmlinuz_sha256}` };
  const cfg = join(entry, 'config');
  if (!(await exists(cfg))) return { bad: 'config missing' };
  if (typeof meta.config_sha256 === 'string' && (await sha256File(cfg)) !== meta.config_sha256) return { bad: 'config sha256 mismatch' };
  return { ok: meta };
}

/**
 * With the entry's lock held: the verified meta, or null after deleting a bad
 * entry (only lock holders delete, so a reader never removes a fresh entry).
 */
async function recheckLocked<M>(entry: string, check: (e: string) => Promise<Checked<M>>, log: (m: string) => void, label: string): Promise<M | null> {
  const c = await check(entry);
  if (c === null) return null;
  if ('ok' in c) return c.ok;
  log(`cache entry for ${label} is corrupt (${c.bad}); deleting it and fetching again`);
  await rm(entry, { recursive: true, force: true });
  return null;
}

function debArtifact(spec: DebianImageSpec, entry: string, meta: DebianMeta, cached: boolean): KernelArtifact {
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

async function ensureDebian(spec: DebianImageSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  const parent = join(opts.cacheDir, 'kernels', 'debian');
  await mkdir(parent, { recursive: true });
  const pkg = spec.package;

  let pv = spec.package_version ?? null;
  if (pv === null) {
    pv = await aptCandidate(pkg);
    if (pv === null) {
      // Offline re-runs: apt knows nothing, but the cache may.
      const entries = (await readdir(parent)).filter((n) => n.startsWith(`${pkg}_`) && !n.endsWith('.lock'));
      const valid: string[] = [];
      for (const n of entries) if (await readDebMeta(join(parent, n))) valid.push(n);
      if (valid.length === 1) {
        pv = valid[0]!.slice(pkg.length + 1);
        opts.log(`apt-cache has no candidate for ${pkg}; using the only cached version ${pv}`);
      } else if (valid.length > 1) {
        throw new ConfigError(
          spec.origin,
          `${spec.at}package_version`,
          `apt-cache has no candidate for ${pkg} and the cache holds several versions (${valid.map((n) => n.slice(pkg.length + 1)).join(', ')})`,
          `pin one with "package_version", or ${APT_FIX}`,
        );
      } else {
        throw new ConfigError(spec.origin, `${spec.at}package`, `apt knows no package ${JSON.stringify(pkg)} (apt-cache policy shows no candidate)`, APT_FIX);
      }
    }
  }

  const key = debKey(pkg, pv);
  const entry = join(parent, key);
  const label = `${pkg}=${pv}`;

  const hit = await checkDebEntry(entry);
  if (hit && 'ok' in hit) return debArtifact(spec, entry, hit.ok, true);

  const release = await acquireLock(join(parent, `${key}.lock`), label, { log: opts.log, timeoutMs: opts.lockTimeoutMs });
  try {
    // Another process may have filled it while we waited.
    const again = await recheckLocked(entry, checkDebEntry, opts.log, label);
    if (again) return debArtifact(spec, entry, again, true);
    await cleanStaging(parent, key);
    const meta = await fetchDebian(spec, pkg, pv, parent, entry, opts.log);
    return debArtifact(spec, entry, meta, false);
  } finally {
    await release();
  }
}

async function fetchDebian(
  spec: DebianImageSpec,
  pkg: string,
  pv: string,
  parent: string,
  entry: string,
  log: (m: string) => void,
): Promise<DebianMeta> {
  const label = `${pkg}=${pv}`;
  // The download dir lives beside the entry (same filesystem) and is named like
  // a staging dir, so leftovers of a killed fetch are swept by cleanStaging().
  const work = await tmpDir({ tmpdir: parent, prefix: `.tmp-${basename(entry)}`, unsafeCleanup: true });
  try {
    log(`fetching ${label} with apt-get download`);
    try {
      // Sandbox user root: apt-get download as root into a root-only temp dir would otherwise warn.
      await run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', label], {
        cwd: work.path,
        install: 'this needs a Debian/Ubuntu machine with apt',
      });
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      const stderr = (e as { stderr?: string }).stderr ?? String(e);
      if (/Unable to locate package|has no installation candidate|No packages found/i.test(stderr)) {
        throw new ConfigError(spec.origin, `${spec.at}package`, `apt does not know ${JSON.stringify(pkg)} (${firstLines(stderr, 2)})`, APT_FIX);
      }
      if (/Version '.*' for '.*' was not found|Can't select version/i.test(stderr)) {
        throw new ConfigError(
          spec.origin,
          `${spec.at}package_version`,
          `apt has no version ${JSON.stringify(pv)} of ${pkg} (${firstLines(stderr, 2)})`,
          `check the available versions with \`apt-cache policy ${pkg}\` (run \`apt-get update\` first); old versions leave the mirror: use an "image" spec with the saved vmlinuz instead`,
        );
      }
      if (/Failed to fetch|Temporary failure|Could not resolve|Connection failed|Unable to connect/i.test(stderr)) {
        throw new ConfigError(
          spec.origin,
          `${spec.at}package`,
          `cannot download ${label} (${firstLines(stderr, 2)})`,
          'check the network path to the Debian mirror, or fetch the kernel elsewhere and use an "image" spec with "path"',
        );
      }
      throw new Error(`apt-get download ${label} failed: ${firstLines(stderr)}`);
    }
    const debs = (await readdir(work.path)).filter((n) => n.endsWith('.deb'));
    if (debs.length !== 1) throw new Error(`apt-get download ${label} left ${debs.length} .deb files in ${work.path}`);
    const deb = join(work.path, debs[0]!);

    const fields = await run('dpkg-deb', ['-f', deb, 'Package', 'Version'], { install: 'apt-get install dpkg' });
    const gotPkg = /^Package:\s*(\S+)$/m.exec(fields.stdout)?.[1];
    const gotVer = /^Version:\s*(\S+)$/m.exec(fields.stdout)?.[1];
    if (gotPkg !== pkg || gotVer !== pv) {
      throw new Error(`apt-get download ${label} produced ${gotPkg ?? '?'}=${gotVer ?? '?'}`);
    }
    const upstream = coerceKernelVersion(gotVer);
    const want = coerceKernelVersion(spec.version);
    if (upstream !== want) {
      throw new ConfigError(
        spec.origin,
        `${spec.at}version`,
        `${label} carries upstream ${upstream}, but the spec says ${JSON.stringify(spec.version)}`,
        `set "version" to "${upstream}" (or pin "package_version" to a package that carries ${spec.version})`,
      );
    }
    const debSha = await sha256File(deb);

    // Only ./boot/vmlinuz-* and ./boot/config-* leave the package.
    const root = join(work.path, 'root');
    await mkdir(root);
    await extractBoot(deb, root);
    const boot = join(root, 'boot');
    const files = await readdir(boot).catch(() => [] as string[]);
    const vm = files.filter((n) => n.startsWith('vmlinuz-'));
    const cfg = files.filter((n) => n.startsWith('config-'));
    if (vm.length !== 1 || cfg.length !== 1) {
      throw new Error(`${label}: expected one /boot/vmlinuz-* and one /boot/config-*, found ${JSON.stringify(files)}`);
    }
    const kernelRelease = vm[0]!.slice('vmlinuz-'.length);
    const vmSrc = join(boot, vm[0]!);
    if (!(await isBzImage(vmSrc))) throw new Error(`${label}: /boot/${vm[0]} is not an x86 bzImage (no "HdrS" at 0x202)`);

    const staging = await makeStaging(parent, basename(entry));
    try {
      await copyFile(vmSrc, join(staging, 'vmlinuz'));
      await copyFile(join(boot, cfg[0]!), join(staging, 'config'));
      const meta: DebianMeta = {
        package: pkg,
        package_version: pv,
        deb_sha256: debSha,
        vmlinuz_sha256: await sha256File(join(staging, 'vmlinuz')),
        config_sha256: await sha256File(join(staging, 'config')),
        release: kernelRelease,
        fetched_at: new Date().toISOString(),
      };
      await writeFile(join(staging, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
      await publish(staging, entry);
      log(`cached ${label} (release ${kernelRelease}, vmlinuz sha256 ${meta.vmlinuz_sha256.slice(0, 12)}) in ${entry}`);
      return meta;
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw e;
    }
  } finally {
    await work.cleanup();
  }
}

/** dpkg-deb --fsys-tarfile DEB | tar -x ./boot/vmlinuz-* ./boot/config-*, two processes, no shell. */
function extractBoot(deb: string, into: string): Promise<void> {
  return new Promise((resolveP, rejectP) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '--no-same-owner', '--wildcards', '-C', into, './boot/vmlinuz-*', './boot/config-*'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let errs = '';
    dpkg.stderr.on('data', (d: Buffer) => (errs += d.toString()));
    tar.stderr.on('data', (d: Buffer) => (errs += d.toString()));
    dpkg.stdout.pipe(tar.stdin);
    tar.stdin.on('error', () => {}); // EPIPE if tar dies first: reported through its exit code
    let pending = 2;
    const codes: Record<string, number | null> = {};
    let failed = false;
    const done = (name: string) => (code: number | null) => {
      codes[name] = code;
      if (--pending === 0) {
        if (codes['dpkg-deb'] === 0 && codes.tar === 0) resolveP();
        else if (!failed) rejectP(new Error(`extracting /boot from ${basename(deb)} failed (dpkg-deb ${codes['dpkg-deb']}, tar ${codes.tar}): ${firstLines(errs)}`));
      }
    };
    const spawnErr = (name: string) => (e: NodeJS.ErrnoException) => {
      if (failed) return;
      failed = true;
      dpkg.kill();
      tar.kill();
      rejectP(e.code === 'ENOENT' ? new MissingDependencyError(name, `apt-get install ${name === 'tar' ? 'tar' : 'dpkg'}`) : e);
    };
    dpkg.on('error', spawnErr('dpkg-deb'));
    tar.on('error', spawnErr('tar'));
    dpkg.on('close', done('dpkg-deb'));
    tar.on('close', done('tar'));
  });
}

// ───────────────────────────── image ─────────────────────────────

async function imageVersionInfo(spec: ImageSpec, file: string, log: (m: string) => void): Promise<{ release?: string; banner?: string }> {
  const banner = await bzImageVersionString(file);
  if (banner === null) return {};
  const release = banner.split(/\s+/)[0]!;
  const inImage = coerceKernelVersion(release);
  const inSpec = coerceKernelVersion(spec.version);
  if (inImage !== null && inImage !== inSpec) {
    log(`warning: ${spec.id}: the image says it is ${release}, the spec says version ${spec.version}; the expectation follows the spec`);
  }
  return { release, banner };
}

async function localImage(spec: ImageSpec, path: string, opts: EnsureOptions): Promise<KernelArtifact> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new ConfigError(spec.origin, `${spec.at}path`, `${path} does not exist (${(e as NodeJS.ErrnoException).code})`, 'point "path" at an existing bzImage');
  }
  if (!st.isFile()) throw new ConfigError(spec.origin, `${spec.at}path`, `${path} is not a regular file`, 'point "path" at the bzImage file itself');
  if (!(await isBzImage(path))) {
    throw new ConfigError(spec.origin, `${spec.at}path`, `${path} is not an x86 bzImage (no "HdrS" at offset 0x202)`, 'use arch/x86/boot/bzImage (or /boot/vmlinuz-*), not vmlinux');
  }
  const sha = await sha256File(path);
  if (spec.sha256 !== undefined && spec.sha256 !== sha) {
    throw new ConfigError(spec.origin, `${spec.at}sha256`, `${path} has sha256 ${sha}, the spec says ${spec.sha256}`, 'use the right file, or update "sha256" if the file was rebuilt on purpose');
  }
  const info = await imageVersionInfo(spec, path, opts.log);
  const a: KernelArtifact = { id: spec.id, kind: 'image', vmlinuz: path, version: spec.version, sha256: sha, cached: false, meta: { path, size: st.size, ...(info.banner ? { banner: info.banner } : {}) } };
  if (info.release) a.release = info.release;
  return a;
}

interface ImageMeta {
  url: string;
  sha256: string;
  size: number;
  fetched_at: string;
}

async function checkImageEntry(entry: string, sha: string): Promise<Checked<ImageMeta>> {
  if (!(await exists(entry))) return null;
  const vm = join(entry, 'vmlinuz');
  let meta: ImageMeta | null = null;
  try {
    meta = JSON.parse(await readFile(join(entry, 'meta.json'), 'utf8')) as ImageMeta;
  } catch {
    return { bad: 'meta.json missing or unreadable' };
  }
  const got = (await exists(vm)) ? await sha256File(vm) : null;
  if (got !== sha) return { bad: `vmlinuz sha256 ${got ?? '(missing)'} != ${sha}` };
  return { ok: meta };
}

async function ensureImageUrl(spec: ImageSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  const url = spec.url!;
  const sha = spec.sha256!;
  const parent = join(opts.cacheDir, 'kernels', 'image');
  await mkdir(parent, { recursive: true });
  const entry = join(parent, sha);
  const label = url;

  const artifact = async (meta: ImageMeta, cached: boolean): Promise<KernelArtifact> => {
    const vm = join(entry, 'vmlinuz');
    const info = await imageVersionInfo(spec, vm, opts.log);
    const a: KernelArtifact = { id: spec.id, kind: 'image', vmlinuz: vm, version: spec.version, sha256: sha, cached, meta: { ...meta, cache_entry: entry, ...(info.banner ? { banner: info.banner } : {}) } };
    if (info.release) a.release = info.release;
    return a;
  };

  const check = (e: string) => checkImageEntry(e, sha);
  const hit = await check(entry);
  if (hit && 'ok' in hit) return artifact(hit.ok, true);

  const release = await acquireLock(join(parent, `${sha}.lock`), label, { log: opts.log, timeoutMs: opts.lockTimeoutMs });
  try {
    const again = await recheckLocked(entry, check, opts.log, label);
    if (again) return artifact(again, true);
    await cleanStaging(parent, sha);
    const staging = await makeStaging(parent, sha);
    try {
      opts.log(`downloading ${url}`);
      const noNet = (why: string) =>
        new ConfigError(
          spec.origin,
          `${spec.at}url`,
          `cannot download ${url} (${why})`,
          `download it on a machine that can reach it, then use "path": "/abs/file" with the same "sha256"`,
        );
      let res: Response;
      try {
        res = await fetch(url, { redirect: 'follow' });
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw noNet(cause?.code ?? cause?.message ?? (e as Error).message);
      }
      if (!res.ok || !res.body) throw noNet(`HTTP ${res.status} ${res.statusText}`);
      const file = join(staging, 'vmlinuz');
      const h = createHash('sha256');
      let size = 0;
      const body = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
      body.on('data', (c: Buffer) => {
        h.update(c);
        size += c.length;
      });
      try {
        await pipeline(body, createWriteStream(file));
      } catch (e) {
        throw noNet(`transfer interrupted: ${(e as Error).message}`);
      }
      const got = h.digest('hex');
      if (got !== sha) {
        throw new ConfigError(spec.origin, `${spec.at}sha256`, `${url} has sha256 ${got}, the spec says ${sha}`, 'check the URL and the expected hash (sha256sum FILE)');
      }
      if (!(await isBzImage(file))) {
        throw new ConfigError(spec.origin, `${spec.at}url`, `${url} is not an x86 bzImage (no "HdrS" at offset 0x202)`, 'point "url" at a bzImage');
      }
      const meta: ImageMeta = { url, sha256: sha, size, fetched_at: new Date().toISOString() };
      await writeFile(join(staging, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
      await publish(staging, entry);
      return await artifact(meta, false);
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw e;
    }
  } finally {
    await release();
  }
}
