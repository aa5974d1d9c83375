// Building "source" kernels: one shared object tree per (source, fragment,
// compiler, arch + page size), one content-addressed artifact per (tree, patches).
//   <cacheDir>/kernels/source/<key>/{bzImage|Image,config,build.log,meta.json,reproduce.sh,inputs/}
//   <cacheDir>/kernels/source/<key>.lock   held while one process builds <key>
// (trees: ./tree.ts; inputs and keys: ./inputs.ts, ./recipe.ts; make: ./make.ts)
//
// A variant build: restore leftovers of an interrupted build, apply the
// patches, make bzImage (arm64: Image; ccache; only what the patches touch
// recompiles), copy the image + .config into the entry's staging dir, put the pristine
// files back; the cache publishes the staging dir. A build killed half-way
// leaves no artifact, and the next build of that tree first restores the
// pristine files. An aborted signal stops make (SIGTERM) at once.

import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { acquireLock, lockHeld } from '../../../util/lock.ts';
import type { Arch, SourceSpec } from '../../types.ts';
import { checkEntry, ensureEntry, writeMeta } from '../cache.ts';
import { bzImageVersionString, imageBanner, isKernelImage, sha256File } from '../files.ts';
import type { EnsureOptions, KernelArtifact } from '../types.ts';
import { auxPmuShell } from './auxpmu.ts';
import { type PreparedInputs, prepareInputs } from './inputs.ts';
import { BuildError, jobs, kbuildVars, makeArgs, makeEnv, runMake, tailOf, type TreePaths } from './make.ts';
import { BUILD_RECIPE, sha256Text } from './recipe.ts';
import { applyPatches, ensureTree, restorePristine, type TreeFacts, treeFacts, treePaths, treesDir } from './tree.ts';

export { BuildError } from './make.ts';

/** meta.json of a source artifact. */
export interface SourceMeta {
  key: string;
  tree_key: string;
  recipe: string;
  source: string;
  config_fragment: string;
  config_fragment_sha256: string;
  patches: { file: string; sha256: string }[];
  /** `CC --version` first line */
  compiler: string;
  /** the compiler command and why it was chosen (toolchain.ts COMPILER_TABLE) */
  cc: string;
  cc_why: string;
  /** build-fix backports of the version's range: applied to lockstep's copy, or already in the tree (toolchain.ts BACKPORT_TABLE) */
  backports: TreeFacts['backports'];
  /** fragment options this release does not define: left out of the build; scenarios needing them SKIP */
  absent_options: string[];
  /** the guest architecture and the page size, kB (absent in entries built before arm64 builds: x86_64, 4) */
  arch?: Arch;
  page_size_kb?: number;
  /** the image's file name in the entry ("bzImage", arm64 "Image"; absent: bzImage) and its sha256 */
  image?: 'bzImage' | 'Image';
  image_sha256?: string;
  /** x86_64 only: the bzImage's sha256 (= image_sha256; what entries before arm64 builds carry, and older lockstep checks) */
  bzimage_sha256?: string;
  config_sha256: string;
  release: string | null;
  banner: string | null;
  built_at: string;
  build_seconds: number;
  host: string;
}

export type SourceState = 'cached' | 'missing' | 'building' | 'corrupt';

const artifactsDir = (cacheDir: string): string => join(cacheDir, 'kernels', 'source');

/** The image file of an entry and its sha256 (entries from before arm64 builds: bzImage, bzimage_sha256); null when the meta names none. */
export function imageOf(m: SourceMeta): { file: 'bzImage' | 'Image'; sha256: string } | null {
  const sha256 = m.image_sha256 ?? m.bzimage_sha256;
  return typeof sha256 === 'string' ? { file: m.image ?? 'bzImage', sha256 } : null;
}

/** checkEntry for a source artifact: the image's hash verified. */
export const checkSource = (entry: string) => checkEntry<SourceMeta>(entry, (m) => { const i = imageOf(m); return i ? { [i.file]: i.sha256 } : null; });

/** The KernelArtifact of a published source entry. */
export function sourceArtifact(id: string, version: string, entry: string, meta: SourceMeta, cached: boolean): KernelArtifact {
  const img = imageOf(meta)!;
  const a: KernelArtifact = {
    id, kind: 'source', vmlinuz: join(entry, img.file), version, sha256: img.sha256, cached,
    meta: { ...meta, arch: meta.arch ?? 'x86_64', page_size_kb: meta.page_size_kb ?? 4, config: join(entry, 'config'), cache_entry: entry },
  };
  if (meta.release) a.release = meta.release;
  return a;
}

/** cached / building / missing (/ corrupt), without building or fetching anything. */
export async function sourceState(spec: SourceSpec, cacheDir: string): Promise<{ state: SourceState; key: string; entry: string; detail?: string }> {
  const inp = await prepareInputs(spec, { cacheDir, fetch: false });
  if (inp.resolved.absent) return { state: 'missing', key: '(not downloaded)', entry: '', detail: `${inp.resolved.label} is fetched on the first build` };
  const entry = join(artifactsDir(cacheDir), inp.key);
  const c = await checkSource(entry);
  if (c && 'ok' in c) return { state: 'cached', key: inp.key, entry };
  if (await lockHeld(join(artifactsDir(cacheDir), `${inp.key}.lock`))) return { state: 'building', key: inp.key, entry };
  if (c) return { state: 'corrupt', key: inp.key, entry, detail: c.bad };
  return { state: 'missing', key: inp.key, entry };
}

/**
 * Build `spec`'s kernel, or take it from the cache (verified by hash).
 * Throws ConfigError (inputs), BuildError (make/patch failed), or the
 * signal's reason / a canceled ToolError when `opts.signal` aborts.
 */
export async function ensureSourceKernel(spec: SourceSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  const inp = await prepareInputs(spec, { cacheDir: opts.cacheDir, log: opts.log, signal: opts.signal });
  // Builds can take long on a busy machine: wait generously for another builder.
  const lockTimeoutMs = opts.lockTimeoutMs ?? 3 * 3600_000;
  const { entry, meta, cached } = await ensureEntry<SourceMeta>({
    parent: artifactsDir(opts.cacheDir),
    key: inp.key,
    label: `kernel ${spec.id} (${inp.key.slice(0, 12)})`,
    verb: 'building',
    log: opts.log,
    lockTimeoutMs,
    signal: opts.signal,
    check: checkSource,
    fill: (staging) => buildVariant(spec, inp, staging, opts, lockTimeoutMs),
  });
  return sourceArtifact(spec.id, spec.version, entry, meta, cached);
}

/** Build one variant in its shared tree (under the tree's lock) and put the artifact's files into `staging`. */
async function buildVariant(spec: SourceSpec, inp: PreparedInputs, staging: string, opts: EnsureOptions, lockTimeoutMs: number): Promise<SourceMeta> {
  let t0 = Date.now();
  const el = () => `${((Date.now() - t0) / 1000).toFixed(0)}s`;
  const log = (m: string) => opts.log(`[build ${el()}] ${m}`);
  const tp = treePaths(opts.cacheDir, inp);
  await mkdir(treesDir(opts.cacheDir), { recursive: true });
  const releaseTree = await acquireLock(`${tp.root}.lock`, `kernel tree ${inp.tree.slice(0, 12)}`, { log: opts.log, timeoutMs: lockTimeoutMs, signal: opts.signal });
  // Time the build itself, not the wait for another variant's build on this tree.
  const waited = Date.now() - t0;
  if (waited > 2000) opts.log(`waited ${(waited / 1000).toFixed(0)}s for the shared tree`);
  t0 = Date.now();
  const logPath = join(tp.root, 'logs', `${inp.key}.log`);
  try {
    log(`building ${spec.id} (key ${inp.key.slice(0, 12)}, tree ${inp.tree.slice(0, 12)}, ${inp.resolved.label}, ${spec.patches.length} patch(es))`);
    await ensureTree(tp, inp, spec, opts.cacheDir, log, opts.signal);
    await mkdir(dirname(logPath), { recursive: true });
    const localversion = `-ls${inp.key.slice(0, 8)}`;
    await restorePristine(tp, log);
    try {
      await applyPatches(tp, spec, inp, logPath, opts.signal);
      log(`make ${tp.kbuild.target} -j${jobs()} (ARCH=${tp.kbuild.kbuildArch}${tp.cross ? ` CROSS_COMPILE=${tp.cross}` : ''}${inp.arch === 'x86_64' ? '' : `, ${inp.pageSizeKb} kB pages`}, log ${logPath})`);
      await runMake(tp, [...makeArgs(tp, localversion), tp.kbuild.target], logPath, { log, t0, env: makeEnv(tp, opts.cacheDir), signal: opts.signal });
      await mkdir(join(staging, 'inputs', 'patches'), { recursive: true });
      {
        const out = await stageOutputs(tp, staging, logPath);
        const facts = await treeFacts(tp);
        // the fragment as configured (options this release lacks commented out)
        await copyFile(join(tp.root, 'fragment.config'), join(staging, 'inputs', 'config.fragment'));
        const patchNames = spec.patches.map((p, i) => `${String(i + 1).padStart(2, '0')}-${basename(p)}`);
        for (const [i, n] of patchNames.entries()) await writeFile(join(staging, 'inputs', 'patches', n), inp.patchTexts[i]!);
        const applied = facts.backports.filter((b) => b.status === 'applied').map((b) => b.file);
        if (applied.length) await mkdir(join(staging, 'inputs', 'backports'), { recursive: true });
        for (const f of applied) await writeFile(join(staging, 'inputs', 'backports', f), inp.backports.find((b) => b.row.file === f)?.text ?? '');
        if (inp.keyInputs.auxPmu !== undefined) await writeFile(join(staging, 'inputs', 'lockstep_aux.c'), inp.keyInputs.auxPmu);
        await writeFile(join(staging, 'reproduce.sh'), reproducerScript(spec, inp, tp, patchNames, localversion, applied));
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
          cc: inp.cc.cc,
          cc_why: inp.cc.why,
          backports: facts.backports,
          absent_options: facts.absent_options,
          arch: inp.arch,
          page_size_kb: inp.pageSizeKb,
          ...out,
          built_at: new Date().toISOString(),
          build_seconds: Math.round((Date.now() - t0) / 100) / 10,
          host: hostname(),
        };
        await writeMeta(staging, meta);
        log(`built ${spec.id}: ${out.release ?? '?'} ${out.image} sha256 ${out.image_sha256.slice(0, 12)} in ${meta.build_seconds}s`);
        return meta;
      }
    } finally {
      await restorePristine(tp, log);
    }
  } finally {
    await releaseTree();
  }
}


/**
 * Copy a finished build's image (bzImage / arm64 Image, tp.kbuild) and
 * .config into `staging` (with the log's last 200 lines as build.log) and
 * describe them; an x86_64 build also gives bzimage_sha256 (the field older
 * entries and checks use). Throws BuildError when the build left no valid
 * image of its arch.
 */
export async function stageOutputs(tp: TreePaths, staging: string, logPath: string): Promise<Pick<SourceMeta, 'image_sha256' | 'bzimage_sha256' | 'config_sha256' | 'release' | 'banner'> & { image: 'bzImage' | 'Image'; image_sha256: string }> {
  const { file, arch } = tp.kbuild;
  const img = join(staging, file);
  await copyFile(join(tp.obj, tp.kbuild.image), img).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
    throw new BuildError(`the build left no ${tp.kbuild.image}`, tailOf(await readFile(logPath, 'utf8').catch(() => '')), logPath);
  });
  await copyFile(join(tp.obj, '.config'), join(staging, 'config'));
  const release = (await readFile(join(tp.obj, 'include/config/kernel.release'), 'utf8').catch(() => '')).trim() || null;
  if (!(await isKernelImage(img, arch))) throw new BuildError(`the build left no valid ${arch} ${file}`, tailOf(await readFile(logPath, 'utf8')), logPath);
  await writeFile(join(staging, 'build.log'), tailOf(await readFile(logPath, 'utf8'), 200) + '\n');
  const sha = await sha256File(img);
  return {
    image: file,
    image_sha256: sha,
    ...(arch === 'x86_64' ? { bzimage_sha256: sha } : {}),
    config_sha256: await sha256File(join(staging, 'config')),
    release,
    banner: arch === 'x86_64' ? await bzImageVersionString(img) : await imageBanner(img),
  };
}

/**
 * The shell lines that patch (backports, then patches, from
 * "$HERE/inputs/...") and build a tree in the current directory as lockstep
 * does (ARCH, CROSS_COMPILE, CC, HOSTCC of `tp`, without ccache), ending with
 * the image's sha256; shared by every reproduce.sh.
 */
export function reproducerBuild(tp: Pick<TreePaths, 'cc' | 'hostcc' | 'cross' | 'kbuild'>, localversion: string, backports: readonly string[], patches: readonly string[] = []): string {
  return [
    ...backports.map((n) => `patch -p1 --forward --batch -i "$HERE/inputs/backports/${n}"`),
    ...patches.map((n) => `patch -p1 --forward --batch -i "$HERE/inputs/patches/${n}"`),
    'export KBUILD_BUILD_USER=lockstep KBUILD_BUILD_HOST=lockstep KBUILD_BUILD_VERSION=1',
    "export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'",
    `M="make O=_build ${kbuildVars(tp, tp.cc).join(' ')} LOCALVERSION=${localversion} -j$(nproc)"`,
    '$M KCONFIG_ALLCONFIG="$HERE/inputs/config.fragment" allnoconfig',
    '$M olddefconfig',
    `$M ${tp.kbuild.target}`,
    `sha256sum _build/${tp.kbuild.image}`,
  ].join('\n');
}

/** A shell script that redoes this build from scratch (tuxmake style), next to the artifact. */
function reproducerScript(spec: SourceSpec, inp: PreparedInputs, tp: TreePaths, patchNames: string[], localversion: string, backports: string[]): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const getTree = inp.resolved.tarball
    ? `mkdir -p "$W/src" && tar -xf ${q(inp.resolved.tarball)} --strip-components=1 -C "$W/src"`
    : `cp -a ${q(inp.resolved.path!)} "$W/src"`;
  return `#!/bin/sh
# Rebuilds lockstep kernel ${spec.id} (artifact ${inp.key}) from scratch.
# Source: ${inp.resolved.identity}
# Arch: ${inp.arch}, ${inp.pageSizeKb} kB pages (the fragment's last lines set the page size of an arm64 build)
# Compiler when built: ${inp.keyInputs.compiler} (CC=${inp.cc.cc}: ${inp.cc.why})
# Build-fix backports (kernels/backports/, each citing its upstream commit): ${backports.join(' ') || 'none'}
# Usage: reproduce.sh [WORKDIR]   (the ${tp.kbuild.file} ends up in WORKDIR/src/_build/${tp.kbuild.image})
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
W=\${1:-$PWD/lockstep-build-${inp.key.slice(0, 12)}}
mkdir -p "$W"
${getTree}
cd "$W/src"
${inp.keyInputs.auxPmu !== undefined ? `${auxPmuShell()}\n` : ''}${reproducerBuild(tp, localversion, backports, patchNames)}
echo "compare with: $(sed -n 's/.*"image_sha256": "\\(.*\\)".*/\\1/p' "$HERE/meta.json") (equal only with the same compiler)"
`;
}

