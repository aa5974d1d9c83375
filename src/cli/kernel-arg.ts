// `lockstep run --kernel ARG`: a kernel from one argument, without a spec
// file. ARG is a bzImage path, a built kernel tree (its arch/x86/boot/bzImage),
// an image URL (with its sha256), or debian:PACKAGE[=VERSION][@SUITE]. parseKernelArg() is pure; resolveKernelArg()
// fills in what the argument leaves out (the version from the bzImage
// header or from apt) and returns an ordinary spec object for the spec parser.

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type DebRow, parseMadison } from '../kernels/obtain/deb-kernels.ts';
import { KBUILD_TARGETS } from '../kernels/obtain/source/arch.ts';
import { parseSpec, type KernelSpec } from '../kernels/spec.ts';
import { aptCacheMadisonArgv } from '../util/debian-tools.ts';
import { ConfigError } from '../util/errors.ts';
import { inputProblem } from '../util/input.ts';

export type KernelArg =
  | { kind: 'path'; path: string }
  | { kind: 'url'; url: string; sha256: string; version: string | null }
  | { kind: 'debian'; package: string; version: string | null; suite: string | null };

const bad = (arg: string, problem: string): ConfigError =>
  new ConfigError('command line', '--kernel', `${JSON.stringify(arg)}: ${problem}`,
    'give a bzImage path, a built kernel tree, https://host/bzImage#sha256=HEX[&version=X.Y.Z], or debian:PACKAGE[=DEBIAN_VERSION][@SUITE] with a linux-image-* or linux-binary-* PACKAGE');

/** Parse one --kernel value. Throws ConfigError (exit 2) naming the problem. */
export function parseKernelArg(arg: string): KernelArg {
  if (arg.startsWith('debian:')) {
    const m = /^debian:([a-z0-9][a-z0-9+.-]+)(?:=((?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*))?(?:@([a-z0-9][a-z0-9.-]*))?$/.exec(arg);
    if (!m) throw bad(arg, 'not debian:PACKAGE[=VERSION][@SUITE]');
    if (!m[1]!.startsWith('linux-image-') && !m[1]!.startsWith('linux-binary-')) throw bad(arg, `${m[1]} is not a linux-image-* or linux-binary-* package`);
    return { kind: 'debian', package: m[1]!, version: m[2] ?? null, suite: m[3] ?? null };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg)) {
    let u: URL;
    try {
      u = new URL(arg);
    } catch {
      throw bad(arg, 'not a valid URL');
    }
    if (u.username || u.password) throw bad(arg, 'a URL with credentials is not fetched');
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad(arg, `${u.protocol} URLs are not fetched`);
    const frag = new URLSearchParams(u.hash.replace(/^#/, ''));
    const sha = frag.get('sha256');
    if (!sha || !/^[0-9a-f]{64}$/.test(sha)) throw bad(arg, 'a URL needs #sha256=<64 lower-case hex> (the image is checked against it)');
    u.hash = '';
    return { kind: 'url', url: u.href, sha256: sha, version: frag.get('version') };
  }
  if (!arg || /[\0\n]/.test(arg)) throw bad(arg, 'not a path');
  return { kind: 'path', path: resolve(arg) };
}

/**
 * The kernel version a bzImage announces in its setup header (boot protocol
 * >= 2.00: "HdrS" at 0x202, the string at 0x200 + the u16 at 0x20e), e.g.
 * "6.1.0-54-cloud-amd64 (debian-kernel@lists.debian.org) ...". Null when not a bzImage.
 */
export function bzImageVersion(path: string): string | null {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return null; }
  try {
    const hdr = Buffer.alloc(0x210);
    if (readSync(fd, hdr, 0, hdr.length, 0) < hdr.length || hdr.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
    const buf = Buffer.alloc(256);
    const n = readSync(fd, buf, 0, buf.length, 0x200 + hdr.readUInt16LE(0x20e));
    const s = buf.toString('latin1', 0, n);
    return s.slice(0, Math.max(0, s.indexOf('\0'))) || null;
  } finally { closeSync(fd); }
}

/** `apt-cache madison PKG` of the machine's sources (synchronous: spec parsing is), its rows of PKG (parseMadison). */
function aptVersions(pkg: string): DebRow[] {
  const r = spawnSync('apt-cache', aptCacheMadisonArgv([], [pkg]), { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return parseMadison(r.stdout).filter((row) => row.package === pkg);
}

const upstream = (v: string): string | null => /^(?:\d+:)?(\d+\.\d+(?:\.\d+)?)/.exec(v)?.[1] ?? null;
const idPart = (s: string): string => s.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 56) || 'kernel';

/**
 * A spec for one --kernel value (ids "deb-...", "img-...", "url-..."), through
 * the ordinary spec parser so every check of a spec file applies. Reads the
 * bzImage header or asks apt-cache for what the argument does not say.
 */
export function resolveKernelArg(arg: string): KernelSpec {
  const a = parseKernelArg(arg);
  const origin = `--kernel ${arg}`;
  if (a.kind === 'debian' && a.suite !== null) {
    // A suite is looked up in lockstep's own lists of it when the kernel is
    // obtained (src/kernels/obtain/apt-suite.ts), never in the machine's apt
    // sources: "@trixie" works on a bookworm machine. Without a version, the
    // suite's newest build of the package, resolved at run start.
    const id = `deb-${idPart(`${a.package.replace(/^linux-(image|binary)-(unsigned-)?/, '').replace(/-unsigned$/, '')}-${a.suite}`)}`;
    if (a.version === null) return parseSpec({ id, kind: 'debian-image', package: a.package, suite: a.suite, version: 'latest', expect: 'auto' }, origin);
    const up = upstream(a.version);
    if (!up) throw bad(arg, `cannot tell the upstream version of ${a.package} from ${JSON.stringify(a.version)}; give a Debian version such as 6.12.117-1`);
    return parseSpec({ id, kind: 'debian-image', package: a.package, suite: a.suite, version: up, package_version: a.version, expect: 'auto' }, origin);
  }
  if (a.kind === 'debian') {
    const rows = aptVersions(a.package);
    let pv = a.version;
    if (pv === null) pv = rows[0]?.version ?? null;
    const up = pv ? upstream(pv) : null;
    if (!up) throw bad(arg, `cannot tell the upstream version of ${a.package}: apt-cache madison lists none; give it as debian:${a.package}=DEBIAN_VERSION`);
    return parseSpec({ id: `deb-${idPart(a.package.replace(/^linux-(image|binary)-(unsigned-)?/, '').replace(/-unsigned$/, ''))}`, kind: 'debian-image', package: a.package, version: up, package_version: pv, expect: 'auto' }, origin);
  }
  if (a.kind === 'url') {
    if (!a.version) throw bad(arg, 'a URL image needs its version: #sha256=HEX&version=X.Y.Z');
    return parseSpec({ id: `url-${idPart(basename(new URL(a.url).pathname))}-${a.sha256.slice(0, 8)}`, kind: 'image', url: a.url, sha256: a.sha256, version: a.version, expect: 'auto' }, origin);
  }
  if (isDirectory(a.path)) return treeSpec(arg, a.path, origin);
  // an existing FIFO or device is refused before it is opened (the open would block); a missing path reads as no bzImage
  const kind = inputProblem(a.path, 'file', true);
  if (kind !== null) throw bad(arg, kind);
  const hv = bzImageVersion(a.path);
  if (hv === null) throw bad(arg, `${a.path} is not a readable bzImage (no "HdrS" setup header)`);
  // Distribution kernels name an ABI ("6.1.0-54-cloud-amd64") first and the real release later ("Debian 6.1.190-1").
  const up = /\b(?:Debian|Ubuntu) (\d+\.\d+\.\d+)/.exec(hv)?.[1] ?? upstream(hv);
  if (!up) throw bad(arg, `cannot read a version from the image's header ${JSON.stringify(hv.slice(0, 60))}`);
  return parseSpec({ id: `img-${idPart(hv.split(' ')[0]!)}`, kind: 'image', path: a.path, version: up, expect: 'auto' }, origin);
}

const isDirectory = (p: string): boolean => { try { return statSync(p).isDirectory(); } catch { return false; } };


/**
 * A built kernel tree (or the O= build directory of one): its bzImage and its
 * release, from include/config/kernel.release (written by `make`, e.g.
 * "6.1.192-virtme") or else the bzImage header. Throws ConfigError naming
 * the directory when it holds no built kernel. vng boots such an image as
 * the tree's own (virtme's
 * find_kernel_and_mods: an image under <dir>/arch/x86/boot with <dir>/.config
 * beside it means the tree, its .config and its modules).
 */
export function treeKernel(arg: string, dir: string): { bzImage: string; release: string } {
  // where `make` / `vng --build` leave an x86_64 tree's image
  const bzImage = join(dir, KBUILD_TARGETS.x86_64.image);
  if (!existsSync(bzImage)) {
    const o = existsSync(join(dir, 'Makefile')) && !existsSync(join(dir, '.config')) ? ' (built out of tree with make O=BUILD? give BUILD)' : '';
    throw bad(arg, `${dir} is a directory with no built kernel: ${bzImage} is missing${o}; build it first (make -C ${dir} bzImage, or vng --build in it)`);
  }
  const kind = inputProblem(bzImage);
  if (kind !== null) throw bad(arg, kind);
  let release: string | null = null;
  const relFile = join(dir, 'include/config/kernel.release');
  if (inputProblem(relFile) === null) {
    try { release = readFileSync(relFile, 'utf8').trim() || null; } catch { /* not readable: the header says */ }
  }
  release ??= bzImageVersion(bzImage)?.split(' ')[0] ?? null;
  if (!release) throw bad(arg, `${bzImage} is not a readable bzImage (no "HdrS" setup header) and ${dir} has no include/config/kernel.release`);
  return { bzImage, release };
}

/** The spec of a built tree (id "tree-<release>"): an image spec of its bzImage. */
function treeSpec(arg: string, dir: string, origin: string): KernelSpec {
  const { bzImage, release } = treeKernel(arg, dir);
  const up = upstream(release);
  if (!up) throw bad(arg, `cannot read a version from the tree's release ${JSON.stringify(release.slice(0, 60))}`);
  return parseSpec({ id: `tree-${idPart(release)}`, kind: 'image', path: bzImage, version: up, expect: 'auto' }, origin);
}
