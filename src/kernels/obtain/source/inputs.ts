// What a source build depends on, read and fetched: the tree (a Debian
// linux-source package, a local path, a git ref cloned shallowly, a tarball
// downloaded and verified), the fragment, the patches, the compiler; and
// the cache keys they give.
//   <cacheDir>/kernels/source-downloads/{<sha256>.tar,git-<hash>/}

import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../../util/errors.ts';
import { runTool, ToolError } from '../../../util/exec.ts';
import { GIT_URL_FIX, gitUrlProblem } from '../../../util/git-url.ts';
import { readRegularFile } from '../../../util/input.ts';
import type { Arch, SourceSpec } from '../../types.ts';
import { defaultCacheDir } from '../cache.ts';
import { download, DownloadError } from '../download.ts';
import { exists, sha256FileOnce } from '../files.ts';
import { buildTool } from './make.ts';
import { readAuxPmuSource } from './auxpmu.ts';
import { pageSizeOptionsIn, withPageSize } from './arch.ts';
import { artifactKey, type KeyInputs, parseFragment, patchedFiles, sha256Text, treeKey } from './recipe.ts';
import { type BackportRow, backportsFor, type CompilerRow, compilerFor } from './toolchain.ts';
import { repoPath } from '../../../util/repo-root.ts';


/**
 * `CC --version`'s first line ("gcc-11 (Debian 11.3.0-12) 11.3.0"): part of
 * every key (a new compiler is a new kernel). `apt` names the package that
 * provides CC, for the fix line when it is missing.
 */
const compilerMemo = new Map<string, Promise<string>>();
export function compilerVersion(cc = 'gcc', apt = 'gcc'): Promise<string> {
  let p = compilerMemo.get(cc);
  if (!p) {
    p = buildTool(cc, ['--version'], { install: `apt-get install ${apt} (bash .ci/setup.sh does)` }).then((o) => o.split('\n')[0]!.trim());
    p.catch(() => compilerMemo.delete(cc));
    compilerMemo.set(cc, p);
  }
  return p;
}

/** kernels/backports/ of this checkout. */
export const backportsDir = (): string => repoPath('kernels', 'backports') + '/';

/** A backport chosen for a build: its table row, the patch file and its text. */
export interface ChosenBackport {
  row: BackportRow;
  path: string;
  text: string;
}

/**
 * The compiler row and the backport patches (read from kernels/backports/)
 * for kernel `version` built for `arch` (default x86_64). Throws
 * ConfigError for a version that is not one.
 */
export async function toolchainFor(version: string, origin: string, field: string, arch: Arch = 'x86_64'): Promise<{ cc: CompilerRow; backports: ChosenBackport[] }> {
  let cc: CompilerRow;
  let rows: BackportRow[];
  try {
    cc = compilerFor(version, arch);
    rows = backportsFor(version, arch);
  } catch (e) {
    throw new ConfigError(origin, field, (e as Error).message, 'write the kernel version as MAJOR.MINOR[.PATCH], e.g. "5.4.0"');
  }
  const backports: ChosenBackport[] = [];
  for (const row of rows) {
    const path = join(backportsDir(), row.file);
    backports.push({ row, path, text: await readFile(path, 'utf8') });
  }
  return { cc, backports };
}

const installedVersions = new Map<string, Promise<string>>();

/**
 * The installed version of Debian package `pkg` (dpkg-query ${Version};
 * '' when it is not installed or dpkg-query fails), asked once per process
 * for as long as dpkg's database (/var/lib/dpkg/status: size, mtime) stays
 * the same: every source spec of a run names the same linux-source package,
 * and each dpkg-query reads the whole database (about 0.1 s). An aborted
 * `signal` rejects and is not remembered.
 */
async function installedVersion(pkg: string, signal?: AbortSignal): Promise<string> {
  const db = await stat('/var/lib/dpkg/status').catch(() => null);
  const key = `${pkg}\0${db?.size}\0${db?.mtimeMs}`;
  let p = installedVersions.get(key);
  if (!p) {
    p = runTool('dpkg-query', ['-W', '-f', '${Version}', '--', pkg], { install: 'apt-get install dpkg', signal }).then((r) => r.stdout.trim(), (e: unknown) => {
      installedVersions.delete(key);
      if (signal?.aborted) throw e;
      return '';
    });
    installedVersions.set(key, p);
  }
  return p;
}

/** Where a Debian linux-source-X.Y package keeps its tarball. */
export const debianTarball = (pkg: string) => `/usr/src/${pkg}.tar.xz`;

export interface ResolvedSource {
  /** content identity for the key */
  identity: string;
  /** how to get the tree: unpack a tarball, or build a path in place */
  tarball?: string;
  path?: string;
  /** shown in logs/meta */
  label: string;
  /** a download not fetched yet (state queries only) */
  absent?: boolean;
}

async function resolveSource(spec: SourceSpec, dl: DownloadDir): Promise<ResolvedSource> {
  const s = spec.source;
  const field = `${spec.at}source`;
  switch (s.type) {
    case 'debian': {
      const tb = debianTarball(s.package);
      const version = await installedVersion(s.package, dl.signal);
      if (!version || !(await exists(tb))) {
        throw new ConfigError(spec.origin, `${field}.debian_package`, `${s.package} is not installed (no ${tb})`, `install it with \`apt-get install ${s.package}\` (bash .ci/setup.sh does), or unpack a tree and use "source": {"path": "/abs/tree"}`);
      }
      return { identity: `debian:${s.package}=${version}:sha256:${await sha256FileOnce(tb)}`, tarball: tb, label: `${s.package}=${version}` };
    }
    case 'path': {
      const p = s.path;
      const st = await stat(p).catch(() => null);
      if (!st?.isDirectory()) throw new ConfigError(spec.origin, `${field}.path`, `${p} is not a directory`, 'point "path" at an unpacked kernel tree (the directory holding Makefile, kernel/, arch/)');
      if (!(await exists(join(p, 'Makefile'))) || !(await exists(join(p, 'kernel', 'events', 'core.c')))) {
        throw new ConfigError(spec.origin, `${field}.path`, `${p} does not look like a kernel tree (no Makefile or kernel/events/core.c)`, 'point "path" at the top of an unpacked kernel tree');
      }
      if (await exists(join(p, '.config'))) {
        throw new ConfigError(spec.origin, `${field}.path`, `${p} holds a .config (built in place)`, `lockstep builds out of tree (O=): run \`make -C ${p} mrproper\` or use a clean copy`);
      }
      return { identity: `path:${p}:${await treeIdentity(p)}`, path: p, label: p };
    }
    case 'git':
      return fetchGit(spec, s.url, s.ref, dl);
    case 'tarball':
      return fetchTarball(spec, s.url, s.sha256, dl);
  }
}

/** Downloads (tarballs, shallow clones) live in <cacheDir>/kernels/source-downloads/; null dir = do not fetch. */
type DownloadDir = { dir: string; fetch: boolean; log: (m: string) => void; signal?: AbortSignal };

async function fetchTarball(spec: SourceSpec, url: string, sha: string, dl: DownloadDir): Promise<ResolvedSource> {
  const file = join(dl.dir, `${sha}.tar`);
  const out: ResolvedSource = { identity: `tarball:sha256:${sha}`, tarball: file, label: url };
  if ((await exists(file)) && (await sha256FileOnce(file)) === sha) return out;
  if (!dl.fetch) return { ...out, absent: true };
  const noNet = (why: string) =>
    new ConfigError(spec.origin, `${spec.at}source.tarball`, `cannot download ${url} (${why})`, `download it where the network allows, check \`sha256sum\` = ${sha.slice(0, 12)}..., unpack it here and use "source": {"path": "/abs/linux-X.Y"}`);
  await mkdir(dl.dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  dl.log(`downloading ${url}`);
  let got: string;
  try {
    got = (await download(url, tmp, { log: dl.log, signal: dl.signal })).sha256;
  } catch (e) {
    throw e instanceof DownloadError ? noNet(e.message) : e;
  }
  if (got !== sha) {
    await rm(tmp, { force: true });
    throw new ConfigError(spec.origin, `${spec.at}source.sha256`, `${url} has sha256 ${got}, the spec says ${sha}`, 'check the URL and the expected hash (sha256sum FILE)');
  }
  await rename(tmp, file);
  return out;
}

async function fetchGit(spec: SourceSpec, url: string, ref: string, dl: DownloadDir): Promise<ResolvedSource> {
  const dir = join(dl.dir, `git-${sha256Text(`${url}\0${ref}`).slice(0, 24)}`);
  const label = `${url} ${ref}`;
  if (!(await exists(join(dir, '.git')))) {
    if (!dl.fetch) return { identity: `git:${url}@${ref}`, path: dir, label, absent: true };
    const tmp = `${dir}.tmp-${process.pid}`;
    const git = { env: { GIT_TERMINAL_PROMPT: '0' }, install: 'apt-get install git', signal: dl.signal };
    try {
      await mkdir(tmp, { recursive: true });
      // init + fetch of one ref works for tags, branches and commit ids alike.
      dl.log(`fetching ${label} (git, depth 1)`);
      // checked again here (the spec schema refused these already): never an option, never a remote helper
      const bad = gitUrlProblem(url, true) ?? (ref.startsWith('-') ? 'the ref starts with "-"' : null);
      if (bad !== null) throw new ConfigError(spec.origin, `${spec.at}source.git`, `${JSON.stringify(url)} ${bad}`, GIT_URL_FIX);
      await runTool('git', ['init', '-q', '--', tmp], git);
      await runTool('git', ['-C', tmp, 'fetch', '-q', '--depth', '1', '--', url, ref], { ...git, timeoutMs: 60 * 60_000 });
      await runTool('git', ['-C', tmp, 'checkout', '-q', 'FETCH_HEAD'], git);
      await rename(tmp, dir);
    } catch (e) {
      if (!(e instanceof ToolError) || e.canceled) throw e;
      throw new ConfigError(
        spec.origin,
        `${spec.at}source.git`,
        `cannot fetch ${label}: ${firstLine(e.stderr || e.message)}`,
        `clone it where the network allows (git clone --depth 1 --branch ${ref} ${url} /abs/linux), copy it here and use "source": {"path": "/abs/linux"}`,
      );
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const commit = (await runTool('git', ['-C', dir, 'rev-parse', 'HEAD'], { install: 'apt-get install git' })).stdout.trim();
  return { identity: `git:${url}@${commit}`, path: dir, label: `${label} (${commit.slice(0, 12)})` };
}

const firstLine = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean)[0] ?? s;

/**
 * Identity of a local tree: for a git checkout, HEAD plus a hash of the diff
 * against it; else a hash of every file's path, size and mtime (a changed file
 * changes the key; no need to read 1 GB of sources).
 */
async function treeIdentity(p: string): Promise<string> {
  if (await exists(join(p, '.git'))) {
    try {
      const git = (args: string[]) => runTool('git', ['-C', p, ...args], { install: 'apt-get install git' }).then((r) => r.stdout);
      const head = (await git(['rev-parse', 'HEAD'])).trim();
      const diff = await git(['diff', 'HEAD']);
      const untracked = await git(['ls-files', '--others', '--exclude-standard']);
      return `git:${head}:${sha256Text(diff + '\0' + untracked)}`;
    } catch {
      // not a usable git checkout: fall through to the file walk
    }
  }
  const h: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const ents = await readdir(dir, { withFileTypes: true });
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of ents) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name === '.git') continue;
        await walk(join(dir, e.name), r);
      } else if (e.isFile() || e.isSymbolicLink()) {
        const st = await stat(join(dir, e.name)).catch(() => null);
        h.push(`${r}\0${st?.size ?? -1}\0${st?.mtimeMs ?? -1}`);
      }
    }
  };
  await walk(p, '');
  return `files:${h.length}:${sha256Text(h.join('\n'))}`;
}

export interface PreparedInputs {
  resolved: ResolvedSource;
  keyInputs: KeyInputs;
  /** the compiler chosen by version (src/kernels/obtain/source/toolchain.ts) */
  cc: CompilerRow;
  /** build-fix backports for this version, applied to lockstep's copy of the tree */
  backports: ChosenBackport[];
  /** the spec's fragment file as it is */
  fragmentText: string;
  /** the guest architecture (spec "arch", default x86_64) and page size in kB (spec "page_size_kb", default 4) */
  arch: Arch;
  pageSizeKb: number;
  /** what the tree is configured with: `fragmentText` plus the page-size line of an arm64 build (arch.ts withPageSize); in the keys */
  buildFragment: string;
  patchTexts: string[];
  key: string;
  tree: string;
}

/**
 * Read everything a build depends on and compute the keys (no build). Git and
 * tarball sources are fetched into the cache unless `fetch` is false (then a
 * missing download gives `resolved.absent`).
 */
export async function prepareInputs(spec: SourceSpec, opts: { cacheDir?: string; fetch?: boolean; log?: (m: string) => void; signal?: AbortSignal } = {}): Promise<PreparedInputs> {
  // readRegularFile: a FIFO or device named as the fragment or a patch is refused, never read (it would block)
  const fragmentText = await readRegularFile(spec.config).catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError(spec.origin, `${spec.at}config`, `cannot read the config fragment ${spec.config} (${e.code ?? e.message})`, 'name an existing kconfig fragment (kernels/config/lockstep-guest.config is the default)');
  });
  const fragLines = parseFragment(fragmentText, spec.config, (f, field, problem, fix) => new ConfigError(f, field, problem, fix));
  const arch = spec.arch ?? 'x86_64';
  const pageSizeKb = spec.page_size_kb ?? 4;
  const own = pageSizeOptionsIn(fragLines.map((l) => l.option));
  if (own.length) {
    throw new ConfigError(spec.config, `line ${fragLines.find((l) => l.option === own[0])!.line}`, `the fragment sets ${own.join(', ')}: the page size is the spec's "page_size_kb" (${spec.origin})`, 'remove the line and set "page_size_kb": 4, 16 or 64 in the kernel spec');
  }
  const buildFragment = withPageSize(fragmentText, arch, pageSizeKb);
  const patchTexts: string[] = [];
  for (const [i, p] of spec.patches.entries()) {
    const t = await readRegularFile(p).catch((e: NodeJS.ErrnoException) => {
      throw new ConfigError(spec.origin, `${spec.at}patches[${i}]`, `cannot read ${p} (${e.code ?? e.message})`, 'name an existing patch file');
    });
    try {
      if (patchedFiles(t).length === 0) throw new Error('no "--- a/x" / "+++ b/x" file headers');
    } catch (e) {
      throw new ConfigError(spec.origin, `${spec.at}patches[${i}]`, `${p} is not a usable unified diff (${(e as Error).message})`, 'give a patch -p1 diff (git format-patch or diff -u with a/ b/ prefixes)');
    }
    patchTexts.push(t);
  }
  const resolved = await resolveSource(spec, { dir: join(opts.cacheDir ?? defaultCacheDir(), 'kernels', 'source-downloads'), fetch: opts.fetch ?? true, log: opts.log ?? (() => {}), signal: opts.signal });
  const { cc, backports } = await toolchainFor(spec.version, spec.origin, `${spec.at}version`, arch);
  const auxPmu = await readAuxPmuSource();
  const keyInputs: KeyInputs = {
    source: resolved.identity, fragment: buildFragment, patches: patchTexts, compiler: await compilerVersion(cc.cc, cc.apt), backports: backports.map((b) => b.text), auxPmu,
    ...(arch === 'x86_64' ? {} : { arch, pageSizeKb }),
  };
  return { resolved, keyInputs, cc, backports, fragmentText, arch, pageSizeKb, buildFragment, patchTexts, key: artifactKey(keyInputs), tree: treeKey(keyInputs) };
}
