// Building "source" kernels: one shared object tree per (source, fragment,
// compiler), one content-addressed artifact per (tree, patches).
//
// Cache layout (under <cacheDir>/kernels/):
//   source/<key>/{bzImage,config,build.log,meta.json,reproduce.sh,inputs/}   artifacts
//   source/<key>.lock                    held while one process builds <key>
//   source/.tmp-<key>-*                  staging, renamed into place when complete
//   source-trees/<tree>/src/             unpacked tree (debian, tarball, git)
//   source-trees/<tree>/src/_build/      O= object dir, shared by every variant
//                                        (for a "path" tree: source-trees/<tree>/_build)
//   source-trees/<tree>/pristine/        originals of files a patch touched while it is applied
//   source-trees/<tree>/patched.json     present while patches are applied
//   source-trees/<tree>.lock             held while the tree is configured, patched or built
//
// A variant build: restore leftovers of an interrupted build, apply the
// patches, make bzImage (ccache; only what the patches touch recompiles),
// copy bzImage + .config into a staging dir, put the pristine files back, and
// rename the staging dir into the cache. A build killed half-way leaves no
// artifact, and the next build of that tree first restores the pristine files.
//
// Every tool runs through spawn/execFile with an argument array.

import { execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, chmod, copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { ConfigError, MissingDependencyError } from '../util/errors.ts';
import { tarFileProblems } from './tarsafe.ts';
import { acquireLock, bzImageVersionString, defaultCacheDir, isBzImage, sha256File, type EnsureOptions, type KernelArtifact } from './artifact.ts';
import type { SourceSpec } from './spec.ts';
import {
  artifactKey,
  BUILD_RECIPE,
  type KeyInputs,
  missingOptions,
  parseDotConfig,
  parseFragment,
  patchedFiles,
  sha256Text,
  treeKey,
} from './source.ts';

const execFileP = promisify(execFile);

/** A build that failed: the message carries the log tail (the matrix turns it into BUILD_FAIL). */
export class BuildError extends Error {
  constructor(
    message: string,
    readonly logTail: string,
    readonly logPath: string | null,
  ) {
    super(`${message}${logTail ? `\n--- build log tail${logPath ? ` (${logPath})` : ''} ---\n${logTail}` : ''}`);
    this.name = 'BuildError';
  }
}

export interface SourceMeta {
  key: string;
  tree_key: string;
  recipe: string;
  source: string;
  config_fragment: string;
  config_fragment_sha256: string;
  patches: { file: string; sha256: string }[];
  compiler: string;
  bzimage_sha256: string;
  config_sha256: string;
  release: string | null;
  banner: string | null;
  built_at: string;
  build_seconds: number;
  host: string;
}

const TAIL_LINES = 40;
const exists = (p: string) => access(p).then(() => true, () => false);
const tailOf = (text: string, n = TAIL_LINES) => text.split('\n').filter((l) => l.trim()).slice(-n).join('\n');

async function tool(cmd: string, args: string[], opts: { cwd?: string; install: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  try {
    const r = await execFileP(cmd, args, { cwd: opts.cwd, maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C', ...opts.env } });
    return r.stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (err.code === 'ENOENT') throw new MissingDependencyError(cmd, opts.install);
    const out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    throw new BuildError(`${cmd} ${args.slice(0, 4).join(' ')} failed (${err.code ?? 'error'})`, tailOf(out), null);
  }
}

// ───────────────────────────── inputs ─────────────────────────────

/** `gcc --version`'s first line: part of every key (a new compiler is a new kernel). */
let compilerMemo: Promise<string> | undefined;
export function compilerVersion(): Promise<string> {
  compilerMemo ??= tool('gcc', ['--version'], { install: 'apt-get install gcc' }).then((o) => o.split('\n')[0]!.trim());
  return compilerMemo;
}

const tarballHashes = new Map<string, Promise<string>>();
/** sha256 of a big file, memoised per path+size+mtime (a run asks for it once per variant). */
async function fileIdentity(path: string): Promise<string> {
  const st = await stat(path);
  const k = `${path}:${st.size}:${st.mtimeMs}`;
  let p = tarballHashes.get(k);
  if (!p) {
    p = sha256File(path);
    tarballHashes.set(k, p);
  }
  return p;
}

/** Where a Debian linux-source-X.Y package keeps its tarball. */
export const debianTarball = (pkg: string) => `/usr/src/${pkg}.tar.xz`;

interface ResolvedSource {
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
      let version = '';
      try {
        version = (await execFileP('dpkg-query', ['-W', '-f', '${Version}', s.package])).stdout.trim();
      } catch {
        version = '';
      }
      if (!version || !(await exists(tb))) {
        throw new ConfigError(spec.origin, `${field}.debian_package`, `${s.package} is not installed (no ${tb})`, `install it with \`apt-get install ${s.package}\` (bash .ci/setup.sh does), or unpack a tree and use "source": {"path": "/abs/tree"}`);
      }
      return { identity: `debian:${s.package}=${version}:sha256:${await fileIdentity(tb)}`, tarball: tb, label: `${s.package}=${version}` };
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
type DownloadDir = { dir: string; fetch: boolean };

async function fetchTarball(spec: SourceSpec, url: string, sha: string, dl: DownloadDir): Promise<ResolvedSource> {
  const file = join(dl.dir, `${sha}.tar`);
  const out: ResolvedSource = { identity: `tarball:sha256:${sha}`, tarball: file, label: url };
  if ((await exists(file)) && (await fileIdentity(file)) === sha) return out;
  if (!dl.fetch) return { ...out, absent: true };
  const noNet = (why: string) =>
    new ConfigError(spec.origin, `${spec.at}source.tarball`, `cannot download ${url} (${why})`, `download it where the network allows, check \`sha256sum\` = ${sha.slice(0, 12)}..., unpack it here and use "source": {"path": "/abs/linux-X.Y"}`);
  await mkdir(dl.dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(30 * 60_000) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw noNet(cause?.code ?? cause?.message ?? (e as Error).message);
    }
    if (!res.ok || !res.body) throw noNet(`HTTP ${res.status} ${res.statusText}`);
    await writeFile(tmp, Buffer.from(await res.arrayBuffer()));
    const got = await sha256File(tmp);
    if (got !== sha) throw new ConfigError(spec.origin, `${spec.at}source.sha256`, `${url} has sha256 ${got}, the spec says ${sha}`, 'check the URL and the expected hash (sha256sum FILE)');
    await rename(tmp, file);
    return out;
  } finally {
    await rm(tmp, { force: true });
  }
}

async function fetchGit(spec: SourceSpec, url: string, ref: string, dl: DownloadDir): Promise<ResolvedSource> {
  const dir = join(dl.dir, `git-${sha256Text(`${url}\0${ref}`).slice(0, 24)}`);
  const label = `${url} ${ref}`;
  if (!(await exists(join(dir, '.git')))) {
    if (!dl.fetch) return { identity: `git:${url}@${ref}`, path: dir, label, absent: true };
    const tmp = `${dir}.tmp-${process.pid}`;
    const env = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
    try {
      await mkdir(tmp, { recursive: true });
      // init + fetch of one ref works for tags, branches and commit ids alike.
      await execFileP('git', ['init', '-q', tmp], { env });
      await execFileP('git', ['-C', tmp, 'fetch', '-q', '--depth', '1', url, ref], { env, timeout: 60 * 60_000, maxBuffer: 64 << 20 });
      await execFileP('git', ['-C', tmp, 'checkout', '-q', 'FETCH_HEAD'], { env, maxBuffer: 64 << 20 });
      await rename(tmp, dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingDependencyError('git', 'apt-get install git');
      throw new ConfigError(
        spec.origin,
        `${spec.at}source.git`,
        `cannot fetch ${label}: ${firstLine((e as { stderr?: string }).stderr || (e as Error).message)}`,
        `clone it where the network allows (git clone --depth 1 --branch ${ref} ${url} /abs/linux), copy it here and use "source": {"path": "/abs/linux"}`,
      );
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const commit = (await execFileP('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
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
      const head = (await execFileP('git', ['-C', p, 'rev-parse', 'HEAD'])).stdout.trim();
      const diff = (await execFileP('git', ['-C', p, 'diff', 'HEAD'], { maxBuffer: 256 << 20 })).stdout;
      const untracked = (await execFileP('git', ['-C', p, 'ls-files', '--others', '--exclude-standard'], { maxBuffer: 64 << 20 })).stdout;
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
  fragmentText: string;
  patchTexts: string[];
  key: string;
  tree: string;
}

/**
 * Read everything a build depends on and compute the keys (no build). Git and
 * tarball sources are fetched into the cache unless `fetch` is false (then a
 * missing download gives `resolved.absent`).
 */
export async function prepareInputs(spec: SourceSpec, opts: { cacheDir?: string; fetch?: boolean } = {}): Promise<PreparedInputs> {
  const fragmentText = await readFile(spec.config, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError(spec.origin, `${spec.at}config`, `cannot read the config fragment ${spec.config} (${e.code})`, 'name an existing kconfig fragment (kernels/config/lockstep-guest.config is the default)');
  });
  parseFragment(fragmentText, spec.config, (f, field, problem, fix) => new ConfigError(f, field, problem, fix));
  const patchTexts: string[] = [];
  for (const [i, p] of spec.patches.entries()) {
    const t = await readFile(p, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new ConfigError(spec.origin, `${spec.at}patches[${i}]`, `cannot read ${p} (${e.code})`, 'name an existing patch file');
    });
    try {
      if (patchedFiles(t).length === 0) throw new Error('no "--- a/x" / "+++ b/x" file headers');
    } catch (e) {
      throw new ConfigError(spec.origin, `${spec.at}patches[${i}]`, `${p} is not a usable unified diff (${(e as Error).message})`, 'give a patch -p1 diff (git format-patch or diff -u with a/ b/ prefixes)');
    }
    patchTexts.push(t);
  }
  const resolved = await resolveSource(spec, { dir: join(opts.cacheDir ?? defaultCacheDir(), 'kernels', 'source-downloads'), fetch: opts.fetch ?? true });
  const keyInputs: KeyInputs = { source: resolved.identity, fragment: fragmentText, patches: patchTexts, compiler: await compilerVersion() };
  return { resolved, keyInputs, fragmentText, patchTexts, key: artifactKey(keyInputs), tree: treeKey(keyInputs) };
}

// ───────────────────────────── cache state ─────────────────────────────

export type SourceState = 'cached' | 'missing' | 'building' | 'corrupt';

const artifactsDir = (cacheDir: string) => join(cacheDir, 'kernels', 'source');
const treesDir = (cacheDir: string) => join(cacheDir, 'kernels', 'source-trees');

async function readMeta(entry: string): Promise<SourceMeta | null> {
  try {
    return JSON.parse(await readFile(join(entry, 'meta.json'), 'utf8')) as SourceMeta;
  } catch {
    return null;
  }
}

/** A verified entry's meta, or why it is unusable, or null when absent. */
async function checkEntry(entry: string): Promise<{ ok: SourceMeta } | { bad: string } | null> {
  if (!(await exists(entry))) return null;
  const meta = await readMeta(entry);
  if (!meta || typeof meta.bzimage_sha256 !== 'string') return { bad: 'meta.json missing or unreadable' };
  const bz = join(entry, 'bzImage');
  if (!(await exists(bz))) return { bad: 'bzImage missing' };
  const got = await sha256File(bz);
  if (got !== meta.bzimage_sha256) return { bad: `bzImage sha256 ${got} != recorded ${meta.bzimage_sha256}` };
  return { ok: meta };
}

const lockAlive = async (lock: string): Promise<boolean> => {
  const held = await readFile(lock, 'utf8').catch(() => null);
  if (held === null) return false;
  const [pidText, host] = held.split('\n');
  if (host !== hostname()) return true;
  try {
    process.kill(Number(pidText), 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** cached / building / missing (/ corrupt), without building anything. */
export async function sourceState(spec: SourceSpec, cacheDir: string): Promise<{ state: SourceState; key: string; entry: string; detail?: string }> {
  const inp = await prepareInputs(spec, { cacheDir, fetch: false });
  if (inp.resolved.absent) return { state: 'missing', key: '(not downloaded)', entry: '', detail: `${inp.resolved.label} is fetched on the first build` };
  const entry = join(artifactsDir(cacheDir), inp.key);
  const c = await checkEntry(entry);
  if (c && 'ok' in c) return { state: 'cached', key: inp.key, entry };
  if (await lockAlive(join(artifactsDir(cacheDir), `${inp.key}.lock`))) return { state: 'building', key: inp.key, entry };
  if (c) return { state: 'corrupt', key: inp.key, entry, detail: c.bad };
  return { state: 'missing', key: inp.key, entry };
}

// ───────────────────────────── ensure ─────────────────────────────

function toArtifact(spec: SourceSpec, entry: string, meta: SourceMeta, cached: boolean): KernelArtifact {
  const a: KernelArtifact = {
    id: spec.id,
    kind: 'source',
    vmlinuz: join(entry, 'bzImage'),
    version: spec.version,
    sha256: meta.bzimage_sha256,
    cached,
    meta: { ...meta, config: join(entry, 'config'), cache_entry: entry, path: undefined },
  };
  if (meta.release) a.release = meta.release;
  return a;
}

/** Build `spec`'s kernel, or take it from the cache (verified by hash). */
export async function ensureSourceKernel(spec: SourceSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  const inp = await prepareInputs(spec, { cacheDir: opts.cacheDir });
  const parent = artifactsDir(opts.cacheDir);
  await mkdir(parent, { recursive: true });
  const entry = join(parent, inp.key);
  const short = inp.key.slice(0, 12);

  const hit = await checkEntry(entry);
  if (hit && 'ok' in hit) return toArtifact(spec, entry, hit.ok, true);

  // Builds can take long on a busy machine: wait generously for another builder.
  const lockOpts = { log: opts.log, timeoutMs: opts.lockTimeoutMs ?? 3 * 3600_000 };
  const release = await acquireLock(join(parent, `${inp.key}.lock`), `kernel ${spec.id} (${short})`, lockOpts);
  try {
    const again = await checkEntry(entry);
    if (again && 'ok' in again) return toArtifact(spec, entry, again.ok, true);
    if (again) {
      opts.log(`cache entry ${short} is corrupt (${again.bad}); deleting it and building again`);
      await rm(entry, { recursive: true, force: true });
    }
    const names = await readdir(parent).catch(() => [] as string[]);
    await Promise.all(names.filter((n) => n.startsWith(`.tmp-${inp.key}-`)).map((n) => rm(join(parent, n), { recursive: true, force: true })));
    const meta = await buildVariant(spec, inp, parent, entry, opts, lockOpts);
    return toArtifact(spec, entry, meta, false);
  } finally {
    await release();
  }
}

interface TreePaths {
  root: string;
  /** the kernel sources (srctree): always lockstep's own copy */
  src: string;
  /** O= */
  obj: string;
  /** make's O= argument, relative to src */
  oArg: string;
}

function treePaths(cacheDir: string, inp: PreparedInputs): TreePaths {
  const root = join(treesDir(cacheDir), inp.tree);
  const src = join(root, 'src');
  // O= a direct child of the tree: kbuild then uses srctree "..", so compiler
  // command lines (and ccache's hashes) are the same for every tree of the
  // same sources, wherever it lives; a "path" tree is hard-link copied for that.
  return { root, src, obj: join(src, '_build'), oArg: '_build' };
}

const makeEnv = (tp: TreePaths, cacheDir: string): NodeJS.ProcessEnv => ({
  ...process.env,
  LC_ALL: 'C',
  CCACHE_DIR: process.env.CCACHE_DIR ?? join(cacheDir, 'ccache'),
  CCACHE_BASEDIR: tp.src,
  CCACHE_NOHASHDIR: '1',
  // Fixed build identity: the banner and init/version.o do not change from one variant to the next.
  KBUILD_BUILD_USER: 'lockstep',
  KBUILD_BUILD_HOST: 'lockstep',
  KBUILD_BUILD_TIMESTAMP: 'Thu Jan  1 00:00:00 UTC 2026',
  KBUILD_BUILD_VERSION: '1',
});

const jobs = (): number => Number(process.env.LOCKSTEP_BUILD_JOBS) || availableParallelism();

/** make argv (without the target) for a tree. */
const makeArgs = (tp: TreePaths, localversion: string): string[] => [`O=${tp.oArg}`, 'ARCH=x86_64', 'CC=ccache gcc', 'HOSTCC=gcc', `LOCALVERSION=${localversion}`, `-j${jobs()}`];

async function buildVariant(
  spec: SourceSpec,
  inp: PreparedInputs,
  parent: string,
  entry: string,
  opts: EnsureOptions,
  lockOpts: { log: (m: string) => void; timeoutMs: number },
): Promise<SourceMeta> {
  let t0 = Date.now();
  const el = () => `${((Date.now() - t0) / 1000).toFixed(0)}s`;
  const log = (m: string) => opts.log(`[build ${el()}] ${m}`);
  const tp = treePaths(opts.cacheDir, inp);
  await mkdir(treesDir(opts.cacheDir), { recursive: true });
  const releaseTree = await acquireLock(`${tp.root}.lock`, `kernel tree ${inp.tree.slice(0, 12)}`, lockOpts);
  // Time the build itself, not the wait for another variant's build on this tree.
  const waited = Date.now() - t0;
  if (waited > 2000) opts.log(`waited ${(waited / 1000).toFixed(0)}s for the shared tree`);
  t0 = Date.now();
  const logPath = join(tp.root, 'logs', `${inp.key}.log`);
  try {
    log(`building ${spec.id} (key ${inp.key.slice(0, 12)}, tree ${inp.tree.slice(0, 12)}, ${inp.resolved.label}, ${spec.patches.length} patch(es))`);
    await ensureTree(tp, inp, spec, opts.cacheDir, log);
    await mkdir(dirname(logPath), { recursive: true });
    const localversion = `-ls${inp.key.slice(0, 8)}`;
    await restorePristine(tp, log);
    try {
      await applyPatches(tp, spec, inp, logPath);
      log(`make bzImage -j${jobs()} (log ${logPath})`);
      await runMake(tp, opts.cacheDir, [...makeArgs(tp, localversion), 'bzImage'], logPath, log, t0);
      const staging = join(parent, `.tmp-${inp.key}-${process.pid}-${Date.now()}`);
      await mkdir(join(staging, 'inputs', 'patches'), { recursive: true });
      try {
        await copyFile(join(tp.obj, 'arch/x86/boot/bzImage'), join(staging, 'bzImage'));
        await copyFile(join(tp.obj, '.config'), join(staging, 'config'));
        const release = (await readFile(join(tp.obj, 'include/config/kernel.release'), 'utf8').catch(() => '')).trim() || null;
        if (!(await isBzImage(join(staging, 'bzImage')))) throw new BuildError('the build left no valid bzImage', tailOf(await readFile(logPath, 'utf8')), logPath);
        await writeFile(join(staging, 'build.log'), tailOf(await readFile(logPath, 'utf8'), 200) + '\n');
        await writeFile(join(staging, 'inputs', 'config.fragment'), inp.fragmentText);
        const patchNames = spec.patches.map((p, i) => `${String(i + 1).padStart(2, '0')}-${basename(p)}`);
        for (const [i, n] of patchNames.entries()) await writeFile(join(staging, 'inputs', 'patches', n), inp.patchTexts[i]!);
        await writeFile(join(staging, 'reproduce.sh'), reproducerScript(spec, inp, patchNames, localversion));
        await chmod(join(staging, 'reproduce.sh'), 0o755);
        const meta: SourceMeta = {
          key: inp.key,
          tree_key: inp.tree,
          recipe: BUILD_RECIPE,
          source: inp.resolved.identity,
          config_fragment: spec.config,
          config_fragment_sha256: sha256Text(inp.fragmentText),
          patches: spec.patches.map((p, i) => ({ file: p, sha256: sha256Text(inp.patchTexts[i]!) })),
          compiler: inp.keyInputs.compiler,
          bzimage_sha256: await sha256File(join(staging, 'bzImage')),
          config_sha256: await sha256File(join(staging, 'config')),
          release,
          banner: await bzImageVersionString(join(staging, 'bzImage')),
          built_at: new Date().toISOString(),
          build_seconds: Math.round((Date.now() - t0) / 100) / 10,
          host: hostname(),
        };
        await writeFile(join(staging, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
        await rm(entry, { recursive: true, force: true });
        await rename(staging, entry);
        log(`built ${spec.id}: ${release ?? '?'} bzImage sha256 ${meta.bzimage_sha256.slice(0, 12)} in ${meta.build_seconds}s -> ${entry}`);
        return meta;
      } catch (e) {
        await rm(staging, { recursive: true, force: true });
        throw e;
      }
    } finally {
      await restorePristine(tp, log);
    }
  } finally {
    await releaseTree();
  }
}

/** Unpack (if needed) and configure the shared tree; verify the fragment. */
async function ensureTree(tp: TreePaths, inp: PreparedInputs, spec: SourceSpec, cacheDir: string, log: (m: string) => void): Promise<void> {
  if (!(await exists(join(tp.root, 'unpacked')))) {
    // Unpack beside the final place, then rename: a killed unpack leaves only a .tmp dir.
    const parent = dirname(tp.root);
    for (const n of await readdir(parent)) if (n.startsWith(`.tmp-${inp.tree}-`)) await rm(join(parent, n), { recursive: true, force: true });
    await rm(tp.root, { recursive: true, force: true });
    const staging = join(parent, `.tmp-${inp.tree}-${process.pid}`);
    await mkdir(join(staging, 'src'), { recursive: true });
    if (inp.resolved.tarball) {
      // A downloaded tarball is checked entry by entry first: nothing may land
      // outside the tree (GNU tar alone fails part-way, leaving escaping symlinks).
      if (inp.resolved.identity.startsWith('tarball:')) {
        const bad = await tarFileProblems(inp.resolved.tarball, 1).catch((e: Error) => [`unreadable: ${e.message}`]);
        if (bad.length) {
          throw new ConfigError(spec.origin, `${spec.at}source.tarball`, `${inp.resolved.label} is unsafe to unpack: ${bad.slice(0, 3).join('; ')}`,
            'use a release tarball from kernel.org or your distribution, or unpack a trusted tree yourself and use "source": {"path": "/abs/tree"}');
        }
      }
      log(`unpacking ${inp.resolved.tarball} (once per tree)`);
      await tool('tar', ['-xf', inp.resolved.tarball, '--strip-components=1', '--no-same-owner', '-C', join(staging, 'src')], { install: 'apt-get install tar xz-utils' });
    } else {
      // Hard links: fast and no extra disk; nothing ever writes to these files (no patches on path trees).
      log(`copying ${inp.resolved.path} (hard links where possible, once per tree)`);
      await rm(join(staging, 'src'), { recursive: true, force: true });
      try {
        await tool('cp', ['-al', inp.resolved.path!, join(staging, 'src')], { install: 'apt-get install coreutils' });
      } catch {
        await rm(join(staging, 'src'), { recursive: true, force: true });
        await tool('cp', ['-a', inp.resolved.path!, join(staging, 'src')], { install: 'apt-get install coreutils' });
      }
    }
    await writeFile(join(staging, 'unpacked'), `${inp.resolved.identity}\n`);
    await rename(staging, tp.root);
  }
  await mkdir(tp.root, { recursive: true });
  const marker = join(tp.root, 'configured');
  if (await exists(marker)) return;
  await mkdir(tp.obj, { recursive: true });
  const fragPath = join(tp.root, 'fragment.config');
  await writeFile(fragPath, inp.fragmentText);
  const cfgLog = join(tp.root, 'logs', 'configure.log');
  await mkdir(dirname(cfgLog), { recursive: true });
  log('configuring: allnoconfig + fragment, then olddefconfig');
  const env = makeEnv(tp, cacheDir);
  const args = makeArgs(tp, '');
  await runMake(tp, cacheDir, [...args, `KCONFIG_ALLCONFIG=${fragPath}`, 'allnoconfig'], cfgLog, log, Date.now(), env);
  await runMake(tp, cacheDir, [...args, 'olddefconfig'], cfgLog, log, Date.now(), env);
  const frag = parseFragment(inp.fragmentText, 'fragment', (f, field, problem, fix) => new ConfigError(f, field, problem, fix));
  const bad = missingOptions(frag, parseDotConfig(await readFile(join(tp.obj, '.config'), 'utf8')));
  if (bad.length) {
    throw new BuildError(
      `after olddefconfig, ${bad.length} option(s) of the fragment are not set: ${bad.join(', ')} (a dependency is missing from the fragment, or the option does not exist in this tree)`,
      '',
      null,
    );
  }
  await writeFile(marker, `${new Date().toISOString()}\n`);
}

/** Save the originals of the files the patches touch, then apply them in order. */
async function applyPatches(tp: TreePaths, spec: SourceSpec, inp: PreparedInputs, logPath: string): Promise<void> {
  if (!spec.patches.length) return;
  const files = [...new Set(inp.patchTexts.flatMap((t) => patchedFiles(t)))];
  const pristine = join(tp.root, 'pristine');
  await rm(pristine, { recursive: true, force: true });
  const record: { file: string; existed: boolean }[] = [];
  for (const f of files) {
    const from = join(tp.src, f);
    const existed = await exists(from);
    if (existed) {
      await mkdir(dirname(join(pristine, f)), { recursive: true });
      await copyFile(from, join(pristine, f));
    }
    record.push({ file: f, existed });
  }
  // Written before the first patch: from here on, a restart restores these files.
  await writeFile(join(tp.root, 'patched.json'), JSON.stringify(record));
  for (const [i, p] of spec.patches.entries()) {
    try {
      const out = await tool('patch', ['-p1', '--forward', '--batch', '--no-backup-if-mismatch', '-r', '-', '-i', p], { cwd: tp.src, install: 'apt-get install patch' });
      await writeFile(logPath, `patch ${p}\n${out}`, { flag: 'a' });
    } catch (e) {
      const tail = e instanceof BuildError ? e.logTail : String(e);
      throw new BuildError(`patch ${i + 1} (${basename(p)}) does not apply to ${inp.resolved.label}`, tail, logPath);
    }
  }
}

/** Put back the files an (interrupted) patched build changed. */
async function restorePristine(tp: TreePaths, log: (m: string) => void): Promise<void> {
  const recPath = join(tp.root, 'patched.json');
  let rec: { file: string; existed: boolean }[];
  try {
    rec = JSON.parse(await readFile(recPath, 'utf8')) as typeof rec;
  } catch {
    return;
  }
  for (const r of rec) {
    if (r.existed) await copyFile(join(tp.root, 'pristine', r.file), join(tp.src, r.file));
    else await rm(join(tp.src, r.file), { force: true });
  }
  await rm(join(tp.root, 'pristine'), { recursive: true, force: true });
  await rm(recPath, { force: true });
  if (rec.length) log(`restored ${rec.length} pristine file(s): ${rec.map((r) => r.file).join(', ')}`);
}

/** make with output to `logPath`; progress every 20 s; failure -> BuildError with the log tail. */
function runMake(tp: TreePaths, cacheDir: string, args: string[], logPath: string, log: (m: string) => void, t0: number, env = makeEnv(tp, cacheDir)): Promise<void> {
  return new Promise((resolveP, rejectP) => {
    const out = createWriteStream(logPath, { flags: 'a' });
    out.write(`\n$ make ${args.join(' ')}   (cwd ${tp.src})\n`);
    const child = spawn('make', args, { cwd: tp.src, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let compiled = 0;
    let last = '';
    const onLine = (l: string) => {
      out.write(`${l}\n`);
      const m = /^\s+(CC|AS|LD|AR|OBJCOPY|GEN|HOSTCC)\s+(\S+)/.exec(l);
      if (m) {
        if (m[1] === 'CC' || m[1] === 'AS') compiled++;
        last = `${m[1]} ${m[2]!.replace(`${tp.obj}/`, '')}`;
      }
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    const tick = setInterval(() => log(`make ${args[args.length - 1]}: ${compiled} objects compiled, at ${last || '...'} (${((Date.now() - t0) / 1000).toFixed(0)}s)`), 20_000);
    tick.unref();
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearInterval(tick);
      out.end();
      rejectP(e.code === 'ENOENT' ? new MissingDependencyError('make', 'apt-get install make gcc bc flex bison libelf-dev libssl-dev') : e);
    });
    child.on('close', (code, sig) => {
      clearInterval(tick);
      out.end(async () => {
        if (code === 0) return resolveP();
        const text = await readFile(logPath, 'utf8').catch(() => '');
        rejectP(new BuildError(`make ${args[args.length - 1]} failed (${code === null ? `signal ${sig}` : `exit ${code}`})`, tailOf(errorFocus(text)), logPath));
      });
    });
  });
}

/** The part of a log that explains a failure: from the first "error:" on, else all of it. */
function errorFocus(text: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => /\berror\b|\*\*\*/i.test(l) && !/^\$ make/.test(l));
  return i >= 0 ? lines.slice(Math.max(0, i - 5), i + TAIL_LINES).join('\n') : text;
}

/** A shell script that redoes this build from scratch (tuxmake style), next to the artifact. */
function reproducerScript(spec: SourceSpec, inp: PreparedInputs, patchNames: string[], localversion: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const getTree = inp.resolved.tarball
    ? `mkdir -p "$W/src" && tar -xf ${q(inp.resolved.tarball)} --strip-components=1 -C "$W/src"`
    : `cp -a ${q(inp.resolved.path!)} "$W/src"`;
  return `#!/bin/sh
# Rebuilds lockstep kernel ${spec.id} (artifact ${inp.key}) from scratch.
# Source: ${inp.resolved.identity}
# Compiler when built: ${inp.keyInputs.compiler}
# Usage: reproduce.sh [WORKDIR]   (the bzImage ends up in WORKDIR/src/_build/arch/x86/boot/bzImage)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
W=\${1:-$PWD/lockstep-build-${inp.key.slice(0, 12)}}
mkdir -p "$W"
${getTree}
cd "$W/src"
${patchNames.map((n) => `patch -p1 --forward --batch -i "$HERE/inputs/patches/${n}"`).join('\n')}
export KBUILD_BUILD_USER=lockstep KBUILD_BUILD_HOST=lockstep KBUILD_BUILD_VERSION=1
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
M="make O=_build ARCH=x86_64 HOSTCC=gcc LOCALVERSION=${localversion} -j$(nproc)"
$M KCONFIG_ALLCONFIG="$HERE/inputs/config.fragment" allnoconfig
$M olddefconfig
$M bzImage
sha256sum _build/arch/x86/boot/bzImage
echo "compare with: $(sed -n 's/.*"bzimage_sha256": "\\(.*\\)".*/\\1/p' "$HERE/meta.json") (equal only with the same compiler)"
`;
}
