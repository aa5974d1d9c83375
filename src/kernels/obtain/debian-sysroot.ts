// A minimal Debian root holding one suite's own gcc-N and make, for the
// kbuild of an out-of-tree module against headers that a newer gcc built
// (Debian 13's 6.12 and trixie-backports' 7.x headers pass gcc 14's
// -fmin-function-alignment=16, which the host's gcc 12 refuses, and a
// trixie gcc cannot run on bookworm's glibc 2.36). Made without debootstrap
// and without maintainer scripts: apt resolves the packages' dependency
// closure against an empty status (lockstep's own lists of the suite), the
// .debs are fetched with apt-get download and unpacked (dpkg-deb | tar) into
// the root; a build enters it with `chroot -- ROOT make ...` (argv, no shell).
//   <cacheDir>/toolchains/debian/<suite>_<cc>_<version>/{root/,meta.json}
// Builds put their trees under root/build/<unique>/ and remove them after.

import { chmod, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool, spawnTool } from '../../util/exec.ts';
import { aptGetSimulateInstallArgv, dpkgDebTarArgv } from '../../util/debian-tools.ts';
import { suiteSource } from './apt-suite.ts';
import { aptCandidate, downloadDebs } from './debian.ts';
import { checkEntry, ensureEntry, scratchDir, writeMeta } from './cache.ts';
import { sysrootPackages, parseSimulatedInstalls, SYSROOT_SUITES } from './aux-module.ts';
import type { AptSource, EnsureOptions } from './types.ts';

export interface Sysroot {
  /** the root directory to chroot into */
  root: string;
  /** the compiler, as kbuild names it: "gcc-14" */
  cc: string;
  suite: string;
  /** "gcc-14=14.2.0-19" */
  cc_package: string;
}

interface SysrootMeta {
  suite: string;
  cc: string;
  cc_version: string;
  /** every package unpacked, "name=version" */
  packages: string[];
  built_at: string;
}

const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };

/** Bumped when the way a root is made changes, so cached roots are made again. */
const ROOT_RECIPE = 2;

/** The dependency closure of `pkgs` from an empty status: [{package, version}] as `apt-get -s install` would install them. */
async function closure(pkgs: readonly string[], apt: AptSource, signal?: AbortSignal): Promise<{ package: string; version: string }[]> {
  const out = (await runTool('apt-get', aptGetSimulateInstallArgv(apt.options, pkgs),
    { install: 'this needs a Debian/Ubuntu machine with apt', env: APT_ENV, signal })).stdout;
  return parseSimulatedInstalls(out);
}

/** Unpack one .deb into `root` (dpkg-deb | tar), keeping the merged-/usr directory symlinks. No maintainer scripts run. */
async function unpack(deb: string, root: string, signal?: AbortSignal): Promise<void> {
  const dpkg = spawnTool('dpkg-deb', dpkgDebTarArgv(deb), { install: 'apt-get install dpkg', signal });
  const tar = spawnTool('tar', ['-x', '--keep-directory-symlink', '--no-same-owner', '-C', root], { install: 'apt-get install tar', signal, stdin: 'pipe' });
  dpkg.child.stdout!.pipe(tar.child.stdin!);
  tar.child.stdin!.on('error', () => {});
  const [a, b] = await Promise.allSettled([dpkg.done, tar.done]);
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
}

/** Fill `root`: merged-/usr links, the closure's files, /dev/null, /tmp. */
async function makeRoot(root: string, debs: readonly string[], signal?: AbortSignal): Promise<void> {
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'dev', 'tmp', 'build']) await mkdir(join(root, d), { recursive: true });
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) await symlink(`usr/${d}`, join(root, d));
  for (const deb of debs) await unpack(deb, root, signal);
  // kbuild redirects to /dev/null throughout; the character device 1,3 as on any Linux
  await runTool('mknod', ['-m', '666', '--', join(root, 'dev', 'null'), 'c', '1', '3'], { install: 'apt-get install coreutils', signal });
  await chmod(join(root, 'tmp'), 0o1777);
  // the alternatives links mawk's postinst would make (kbuild's recipes call awk)
  await symlink('mawk', join(root, 'usr', 'bin', 'awk'));
}

/**
 * A root with Debian's `cc` (e.g. "gcc-14") and make, from the oldest suite
 * of SYSROOT_SUITES whose lists carry it, cached per suite, compiler and
 * its version. Throws Error when no suite carries `cc`, ToolError/Error
 * when apt or the unpacking fails (not cached then).
 */
export async function ensureDebianSysroot(cc: string, opts: EnsureOptions): Promise<Sysroot> {
  let apt: AptSource | null = null;
  let version: string | null = null;
  let suite = '';
  for (const s of SYSROOT_SUITES) {
    const a = await suiteSource(s, { cacheDir: opts.cacheDir, log: opts.log, signal: opts.signal });
    version = await aptCandidate(cc, a, opts.signal);
    if (version !== null) { apt = a; suite = s; break; }
  }
  if (!apt || version === null) throw new Error(`no Debian suite of ${SYSROOT_SUITES.join(', ')} carries ${cc}`);
  const parent = join(opts.cacheDir, 'toolchains', 'debian');
  const key = `${suite}_${cc}_${version}_r${ROOT_RECIPE}`.replace(/[^A-Za-z0-9._+-]/g, '_');
  const { entry, meta } = await ensureEntry<SysrootMeta>({
    parent, key, label: `a Debian ${suite} root with ${cc}=${version}`, verb: 'making', log: opts.log,
    lockTimeoutMs: opts.lockTimeoutMs, signal: opts.signal,
    check: (e) => checkEntry<SysrootMeta>(e, (m) => (typeof m.cc === 'string' && Array.isArray(m.packages) ? {} : null)),
    fill: async (staging) => {
      const work = await scratchDir(parent, key);
      try {
        const pkgs = await closure(sysrootPackages(cc), apt!, opts.signal);
        opts.log(`making a Debian ${suite} root with ${cc}=${version}: ${pkgs.length} packages`);
        const dl = await mkdtemp(join(work, 'debs-'));
        const debs = await downloadDebs(pkgs, apt!, dl, opts.signal);
        await makeRoot(join(staging, 'root'), debs, opts.signal);
        const m: SysrootMeta = { suite, cc, cc_version: version!, packages: pkgs.map((p) => `${p.package}=${p.version}`), built_at: new Date().toISOString() };
        await writeMeta(staging, m);
        return m;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  });
  return { root: join(entry, 'root'), cc, suite: meta.suite, cc_package: `${cc}=${meta.cc_version}` };
}

/** A fresh directory for one build under the root's /build: [path on the host, path inside the root]. */
export async function sysrootBuildDir(s: Sysroot): Promise<[string, string]> {
  const host = await mkdtemp(join(s.root, 'build', 'b-'));
  return [host, `/build/${host.slice(host.lastIndexOf('/') + 1)}`];
}

/**
 * Run `argv` inside the root, no shell: `unshare --fork --pid
 * --mount-proc=ROOT/proc -- chroot -- ROOT argv...` (a private /proc in a
 * mount namespace of its own: objtool reads its stack limit from /proc; the
 * machine's mounts are untouched). Throws ToolError like runTool.
 */
export async function inSysroot(s: Sysroot, argv: readonly string[], signal?: AbortSignal): Promise<{ stdout: string; stderr: string }> {
  await mkdir(join(s.root, 'proc'), { recursive: true });
  return runTool('unshare', ['--fork', '--pid', `--mount-proc=${join(s.root, 'proc')}`, '--', 'chroot', '--', s.root, ...argv],
    { install: 'apt-get install util-linux coreutils', env: { PATH: '/usr/bin:/usr/sbin:/bin:/sbin', LC_ALL: 'C' }, signal });
}
