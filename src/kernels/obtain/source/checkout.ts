// Building a commit of a user's kernel git repository (bisect --tree): one
// lockstep-owned checkout per (repository, compiler, fragment), updated
// from commit to commit with git's own index, so only the files a step
// changes are rewritten and make rebuilds only what depends on them; one
// shared object dir (O=_build) and ccache; the version's build-fix backports
// applied to the checkout (never to the user's tree, whose working files and
// index are not touched). Each commit's kernel is a content-addressed
// artifact keyed by the commit's tree hash.
//   <cacheDir>/kernels/source-checkouts/<ckey>/{src/,src/_build/,index,backported.json,configured,...}
//   <cacheDir>/kernels/source-checkouts/<ckey>.lock
//   <cacheDir>/kernels/source/<key>/   the artifact (as for spec builds)

import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../../../util/errors.ts';
import { runTool, ToolError } from '../../../util/exec.ts';
import { acquireLock } from '../../../util/lock.ts';
import { ensureEntry, writeMeta } from '../cache.ts';
import { sha256File } from '../files.ts';
import type { EnsureOptions, KernelArtifact } from '../types.ts';
import { KBUILD_TARGETS } from './arch.ts';
import { checkSource, reproducerBuild, type SourceMeta, sourceArtifact, stageOutputs } from './build.ts';
import { compilerVersion, toolchainFor } from './inputs.ts';
import { jobs, makeArgs, makeEnv, runMake, type TreePaths, treePathsAt } from './make.ts';
import { artifactKey, BUILD_RECIPE, patchedFiles, sha256Text } from './recipe.ts';
import { applyBackports, configureTree, treeFacts } from './tree.ts';

export interface CommitBuild {
  /** the user's git tree (any checkout of the repository) */
  repo: string;
  /** full commit sha */
  commit: string;
  /** the kernel version at that commit (its top Makefile), for the toolchain choice */
  version: string;
  /** absolute path of the kconfig fragment */
  fragment: string;
}

const git = (repo: string, args: string[], signal?: AbortSignal, env: NodeJS.ProcessEnv = {}) =>
  runTool('git', ['-C', repo, ...args], { install: 'apt-get install git', signal, env }).then((r) => r.stdout.trim());

/**
 * Build (or take from the cache) the kernel of `b.commit`. Throws
 * BuildError when the commit does not build (a bisect skip), ConfigError
 * for an unusable repository, the signal's reason when aborted.
 */
export async function ensureCommitKernel(b: CommitBuild, opts: EnsureOptions): Promise<KernelArtifact> {
  const fragmentText = await readFile(b.fragment, 'utf8');
  const { cc, backports } = await toolchainFor(b.version, 'command line', '--tree (top Makefile VERSION/PATCHLEVEL)');
  const compiler = await compilerVersion(cc.cc, cc.apt);
  let treeHash: string;
  let gitDir: string;
  try {
    treeHash = await git(b.repo, ['rev-parse', '--verify', '--end-of-options', `${b.commit}^{tree}`], opts.signal);
    gitDir = resolve(b.repo, await git(b.repo, ['rev-parse', '--git-common-dir'], opts.signal));
  } catch (e) {
    if (!(e instanceof ToolError) || e.canceled) throw e;
    throw new ConfigError('command line', '--tree', `${b.repo} has no commit ${b.commit}`, 'point --tree at the kernel git tree');
  }
  const keyInputs = { source: `git-tree:${treeHash}`, fragment: fragmentText, patches: [], compiler, backports: backports.map((x) => x.text) };
  const key = artifactKey(keyInputs);
  const ckey = sha256Text(JSON.stringify({ recipe: BUILD_RECIPE, repo: gitDir, fragment: sha256Text(fragmentText), compiler })).slice(0, 32);
  const root = join(opts.cacheDir, 'kernels', 'source-checkouts', ckey);
  // bisect builds are x86_64 guests (4 kB pages)
  const tp: TreePaths = treePathsAt(root, cc, KBUILD_TARGETS.x86_64);
  const lockTimeoutMs = opts.lockTimeoutMs ?? 3 * 3600_000;
  const { entry, meta, cached } = await ensureEntry<SourceMeta>({
    parent: join(opts.cacheDir, 'kernels', 'source'),
    key,
    label: `commit ${b.commit.slice(0, 12)} (${key.slice(0, 12)})`,
    verb: 'building',
    log: opts.log,
    lockTimeoutMs,
    signal: opts.signal,
    check: checkSource,
    fill: async (staging) => {
      await mkdir(dirname(root), { recursive: true });
      const release = await acquireLock(`${root}.lock`, `checkout ${ckey.slice(0, 12)}`, { log: opts.log, timeoutMs: lockTimeoutMs, signal: opts.signal });
      const t0 = Date.now();
      const log = (m: string) => opts.log(`[build ${((Date.now() - t0) / 1000).toFixed(0)}s] ${m}`);
      try {
        await mkdir(tp.src, { recursive: true });
        await mkdir(join(root, 'logs'), { recursive: true });
        const logPath = join(root, 'logs', `${key}.log`);
        // The checkout's own index: only files whose blob changes are rewritten (mtimes of the rest kept).
        log(`checking out ${b.commit.slice(0, 12)} into lockstep's copy ${tp.src}`);
        await git(b.repo, [`--git-dir=${gitDir}`, `--work-tree=${tp.src}`, 'read-tree', '--reset', '-u', '--', b.commit], opts.signal, { GIT_INDEX_FILE: join(root, 'index') });
        const facts = { ...(await treeFacts(tp)), backports: await applyBackportsOnce(root, tp.src, backports, b.commit, opts.signal) };
        for (const x of facts.backports) log(`backport ${x.file}: ${x.status === 'applied' ? 'applied to lockstep\'s copy' : 'already in this tree'}`);
        await configureTree(tp, fragmentText, opts.cacheDir, log, opts.signal);
        const localversion = `-ls${key.slice(0, 8)}`;
        log(`make ${tp.kbuild.target} -j${jobs()} (CC ${cc.cc}, log ${logPath})`);
        await runMake(tp, [...makeArgs(tp, localversion), tp.kbuild.target], logPath, { log, t0, env: makeEnv(tp, opts.cacheDir), signal: opts.signal });
        const out = await stageOutputs(tp, staging, logPath);
        await mkdir(join(staging, 'inputs', 'backports'), { recursive: true });
        await writeFile(join(staging, 'inputs', 'config.fragment'), await readFile(join(root, 'fragment.config'), 'utf8'));
        const applied = facts.backports.filter((x) => x.status === 'applied').map((x) => x.file);
        for (const f of applied) await writeFile(join(staging, 'inputs', 'backports', f), backports.find((x) => x.row.file === f)!.text);
        await writeFile(join(staging, 'reproduce.sh'), commitReproducer(b, gitDir, tp, applied, localversion, key));
        await chmod(join(staging, 'reproduce.sh'), 0o755);
        const m: SourceMeta = {
          key, tree_key: ckey, recipe: BUILD_RECIPE, source: `git:${gitDir}@${b.commit} (tree ${treeHash})`,
          config_fragment: b.fragment, config_fragment_sha256: sha256Text(fragmentText), patches: [],
          compiler, cc: cc.cc, cc_why: cc.why, backports: facts.backports, absent_options: (await treeFacts(tp)).absent_options,
          arch: 'x86_64', page_size_kb: 4,
          ...out,
          built_at: new Date().toISOString(), build_seconds: Math.round((Date.now() - t0) / 100) / 10, host: hostname(),
        };
        await writeMeta(staging, m);
        log(`built ${b.commit.slice(0, 12)}: ${out.release ?? '?'} in ${m.build_seconds}s`);
        return m;
      } finally {
        await release();
      }
    },
  });
  return sourceArtifact(`commit-${b.commit.slice(0, 12)}`, b.version, entry, meta, cached);
}

/**
 * Apply the backports to the checkout unless the patched file is still our
 * patched copy from an earlier step (then it stays: no rewrite, no rebuild).
 * Records the patched files' hashes in <root>/backported.json.
 */
async function applyBackportsOnce(root: string, src: string, backports: Awaited<ReturnType<typeof toolchainFor>>['backports'], commit: string, signal?: AbortSignal) {
  const recPath = join(root, 'backported.json');
  const rec = JSON.parse(await readFile(recPath, 'utf8').catch(() => '{}')) as Record<string, { id: string; commit: string; file: string; sha256: Record<string, string> }>;
  const out: { id: string; commit: string; file: string; status: 'applied' | 'present' }[] = [];
  const todo: typeof backports = [];
  for (const b of backports) {
    const r = rec[b.row.id];
    let still = !!r;
    if (r) for (const [f, sha] of Object.entries(r.sha256)) if ((await sha256File(join(src, f)).catch(() => '')) !== sha) still = false;
    if (still) out.push({ id: b.row.id, commit: b.row.commit, file: b.row.file, status: 'applied' });
    else todo.push(b);
  }
  for (const x of await applyBackports(src, todo, `commit ${commit.slice(0, 12)}`, signal)) {
    out.push(x);
    const b = todo.find((t) => t.row.id === x.id)!;
    if (x.status === 'applied') {
      const sha256: Record<string, string> = {};
      for (const f of patchedFiles(b.text)) sha256[f] = await sha256File(join(src, f));
      rec[x.id] = { id: x.id, commit: x.commit, file: x.file, sha256 };
    } else delete rec[x.id];
  }
  await writeFile(recPath, JSON.stringify(rec, null, 2));
  return out;
}

/** A script that rebuilds the commit's kernel from the repository, with the same backports and fragment. */
function commitReproducer(b: CommitBuild, gitDir: string, tp: TreePaths, backports: string[], localversion: string, key: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh
# Rebuilds lockstep's kernel of commit ${b.commit} (artifact ${key}) from scratch.
# Usage: reproduce.sh [WORKDIR]   (the bzImage ends up in WORKDIR/src/_build/arch/x86/boot/bzImage)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
W=\${1:-$PWD/lockstep-build-${key.slice(0, 12)}}
mkdir -p "$W/src"
git --git-dir=${q(gitDir)} archive --end-of-options ${q(b.commit)} | tar -x -C "$W/src"
cd "$W/src"
${reproducerBuild(tp, localversion, backports)}
`;
}
