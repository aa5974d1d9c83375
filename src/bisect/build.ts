// Build functions for a git-tree bisect (the BuildFn of env.ts).
//
// - base: the tree's history starts from a Debian kernel source package
//   (`--base-package linux-source-6.1 --base-ref REF`, REF's tree = the
//   unpacked package). Each step builds the package plus `git diff REF HEAD`
//   as one patch through the project's source builder (src/kernels/build.ts),
//   which keeps one object tree per base: a step recompiles what the commit
//   changed and relinks, instead of building a kernel from scratch.
// - tree (the default): each step builds the commit itself through the
//   project's checkout builder (src/kernels/obtain/source/checkout.ts): one
//   lockstep-owned checkout and object dir per repository, ccache, the
//   compiler and build-fix backports of the commit's version; the user's
//   working tree is only checked out by git bisect, never built in.
// - command: `--build-cmd PROGRAM`, run in the tree with the tree as its one
//   argument; it builds however it likes and prints "BZIMAGE VERSION" as its
//   last stdout line; a nonzero exit is a build failure.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { ensureKernel } from '../kernels/artifact.ts';
import { BuildError } from '../kernels/obtain/source/build.ts';
import { ensureCommitKernel } from '../kernels/obtain/source/checkout.ts';
import { builtinSpecsDir, parseSpec } from '../kernels/spec.ts';
import { ConfigError, MissingDependencyError } from '../util/errors.ts';
import { runTool, ToolError } from '../util/exec.ts';
import type { BuildFn } from './env.ts';


export interface BuildChoice {
  buildCmd?: string;
  basePackage?: string;
  /** full sha of the base commit */
  baseCommit?: string;
}

/** Kernel version from the tree's top Makefile ("6.1.192"). */
export async function treeVersion(tree: string): Promise<string> {
  const mk = await readFile(join(tree, 'Makefile'), 'utf8').catch(() => '');
  const get = (k: string): string | undefined => new RegExp(`^${k}\\s*=\\s*(\\d+)\\s*$`, 'm').exec(mk)?.[1];
  const v = get('VERSION');
  const p = get('PATCHLEVEL');
  if (v === undefined || p === undefined) throw new ConfigError(join(tree, 'Makefile'), 'VERSION', 'no VERSION/PATCHLEVEL: not a kernel tree at this commit', 'point --tree at a kernel git tree');
  return `${v}.${p}.${get('SUBLEVEL') ?? '0'}`;
}

/** The base + diff builder. `work` holds the per-commit patches (kept as evidence). */
export function baseBuild(basePackage: string, baseCommit: string, cacheDir: string, work: string): BuildFn {
  return async (tree, { log, signal }) => {
    const git = { install: 'apt-get install git', signal };
    const head = (await runTool('git', ['-C', tree, 'rev-parse', 'HEAD'], git)).stdout.trim();
    const diff = (await runTool('git', ['-C', tree, 'diff', '--no-color', '--no-ext-diff', '--src-prefix=a/', '--dst-prefix=b/', baseCommit, head], git)).stdout;
    const patches: string[] = [];
    if (diff.trim()) {
      await mkdir(work, { recursive: true });
      const p = join(work, `${head}.patch`);
      await writeFile(p, diff);
      patches.push(p);
    }
    const origin = join(work, `${head}.spec.json`);
    const spec = parseSpec({
      id: `bisect-${head.slice(0, 12)}`, kind: 'source', version: await treeVersion(tree), distro: 'upstream',
      source: { debian_package: basePackage }, config: join(builtinSpecsDir(), 'config', 'lockstep-guest.config'), patches, expect: 'unknown',
      description: `${basePackage} plus git diff ${baseCommit.slice(0, 12)}..${head.slice(0, 12)}`,
    }, origin);
    log(`building ${head.slice(0, 12)} as ${basePackage} + ${patches.length ? `${diff.split('\n').length} diff lines` : 'no diff'}`);
    try {
      const a = await ensureKernel(spec, { cacheDir, log, signal });
      if (!a.vmlinuz) throw new Error(`the source build of ${head} returned no image`);
      return { vmlinuz: a.vmlinuz, version: a.version };
    } catch (e) {
      if (e instanceof BuildError) return { buildFailed: e.message.split('\n').slice(0, 12).join('\n') };
      throw e;
    }
  };
}

/** The default: build the commit at HEAD from the tree itself (lockstep's own checkout of it). */
export function treeBuild(cacheDir: string): BuildFn {
  return async (tree, { log, signal }) => {
    const head = (await runTool('git', ['-C', tree, 'rev-parse', 'HEAD'], { install: 'apt-get install git', signal })).stdout.trim();
    const version = await treeVersion(tree);
    log(`building ${head.slice(0, 12)} (${version}) from the tree`);
    try {
      const a = await ensureCommitKernel({ repo: tree, commit: head, version, fragment: join(builtinSpecsDir(), 'config', 'lockstep-guest.config') }, { cacheDir, log, signal });
      return { vmlinuz: a.vmlinuz!, version: a.version, absentOptions: (a.meta.absent_options as string[] | undefined) ?? [] };
    } catch (e) {
      if (e instanceof BuildError) return { buildFailed: e.message.split('\n').slice(0, 12).join('\n') };
      throw e;
    }
  };
}

/** The user's build command. */
export function commandBuild(cmd: string): BuildFn {
  return async (tree, { log, signal }) => {
    log(`running ${cmd} ${tree}`);
    try {
      const r = await runTool(cmd, [tree], { cwd: tree, signal, install: 'give an executable --build-cmd' });
      const last = r.stdout.trim().split('\n').pop() ?? '';
      const m = /^(\S+)\s+(\S+)$/.exec(last.trim());
      if (!m || !isAbsolute(m[1]!)) throw new ConfigError('command line', '--build-cmd', `${cmd} printed ${JSON.stringify(last)} as its last line`, 'make it print "ABSOLUTE_BZIMAGE_PATH VERSION" last');
      return { vmlinuz: m[1]!, version: m[2]! };
    } catch (e) {
      if (e instanceof MissingDependencyError) throw new ConfigError('command line', '--build-cmd', `cannot run ${cmd} (ENOENT)`, 'give an executable file');
      if (e instanceof ConfigError || !(e instanceof ToolError) || signal?.aborted) throw e;
      if (/EACCES/.test(e.message)) throw new ConfigError('command line', '--build-cmd', `cannot run ${cmd} (EACCES)`, 'give an executable file');
      const tail = `${e.stdout}${e.stderr}`.trim().split('\n').slice(-10).join('\n');
      return { buildFailed: `${cmd} exited ${e.exitCode ?? `(${e.message})`}: ${tail}` };
    }
  };
}

export function resolveBuild(c: BuildChoice, cacheDir: string, work: string): BuildFn {
  if (c.buildCmd && c.basePackage) throw new ConfigError('command line', '--build-cmd', 'both --build-cmd and --base-package given', 'use one way of building');
  if (c.buildCmd) return commandBuild(resolve(c.buildCmd));
  if (c.basePackage && c.baseCommit) return baseBuild(c.basePackage, c.baseCommit, cacheDir, work);
  return treeBuild(cacheDir);
}
