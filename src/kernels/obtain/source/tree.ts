// The shared object tree of a source kernel: unpacked (a downloaded tarball
// is checked entry by entry first) or hard-link copied once, configured once
// (allnoconfig + fragment, olddefconfig, every fragment option verified),
// patched for one variant's build and put back afterwards.
//   <cacheDir>/kernels/source-trees/<tree>/src/          the sources (srctree)
//   <cacheDir>/kernels/source-trees/<tree>/src/_build/   O= object dir, shared by every variant
//   <cacheDir>/kernels/source-trees/<tree>/pristine/     originals of files a patch touched while it is applied
//   <cacheDir>/kernels/source-trees/<tree>/patched.json  present while patches are applied
//   <cacheDir>/kernels/source-trees/<tree>.lock          held while the tree is configured, patched or built

import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../../../util/errors.ts';
import type { SourceSpec } from '../../types.ts';
import { exists } from '../files.ts';
import type { PreparedInputs } from './inputs.ts';
import { BuildError, buildTool, makeArgs, makeEnv, runMake, type TreePaths } from './make.ts';
import { missingOptions, parseDotConfig, parseFragment, patchedFiles } from './recipe.ts';
import { tarFileProblems } from './tarsafe.ts';

/** <cacheDir>/kernels/source-trees */
export const treesDir = (cacheDir: string): string => join(cacheDir, 'kernels', 'source-trees');

/** Where the tree of `inp` lives. */
export function treePaths(cacheDir: string, inp: PreparedInputs): TreePaths {
  const root = join(treesDir(cacheDir), inp.tree);
  const src = join(root, 'src');
  // O= a direct child of the tree: kbuild then uses srctree "..", so compiler
  // command lines (and ccache's hashes) are the same for every tree of the
  // same sources, wherever it lives; a "path" tree is hard-link copied for that.
  return { root, src, obj: join(src, '_build'), oArg: '_build' };
}

/** Unpack (if needed) and configure the shared tree; verify the fragment. Throws ConfigError (unsafe tarball), BuildError. */
export async function ensureTree(tp: TreePaths, inp: PreparedInputs, spec: SourceSpec, cacheDir: string, log: (m: string) => void, signal?: AbortSignal): Promise<void> {
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
        const bad = await tarFileProblems(inp.resolved.tarball, 1, 20, signal).catch((e: Error) => { if (signal?.aborted) throw e; return [`unreadable: ${e.message}`]; });
        if (bad.length) {
          throw new ConfigError(spec.origin, `${spec.at}source.tarball`, `${inp.resolved.label} is unsafe to unpack: ${bad.slice(0, 3).join('; ')}`,
            'use a release tarball from kernel.org or your distribution, or unpack a trusted tree yourself and use "source": {"path": "/abs/tree"}');
        }
      }
      log(`unpacking ${inp.resolved.tarball} (once per tree)`);
      await buildTool('tar', ['-xf', inp.resolved.tarball, '--strip-components=1', '--no-same-owner', '-C', join(staging, 'src')], { install: 'apt-get install tar xz-utils', signal });
    } else {
      // Hard links: fast and no extra disk; nothing ever writes to these files (no patches on path trees).
      log(`copying ${inp.resolved.path} (hard links where possible, once per tree)`);
      await rm(join(staging, 'src'), { recursive: true, force: true });
      try {
        await buildTool('cp', ['-al', inp.resolved.path!, join(staging, 'src')], { install: 'apt-get install coreutils', signal });
      } catch (e) {
        if (signal?.aborted) throw e;
        await rm(join(staging, 'src'), { recursive: true, force: true });
        await buildTool('cp', ['-a', inp.resolved.path!, join(staging, 'src')], { install: 'apt-get install coreutils', signal });
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
  await runMake(tp, [...args, `KCONFIG_ALLCONFIG=${fragPath}`, 'allnoconfig'], cfgLog, { log, t0: Date.now(), env, signal });
  await runMake(tp, [...args, 'olddefconfig'], cfgLog, { log, t0: Date.now(), env, signal });
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
export async function applyPatches(tp: TreePaths, spec: SourceSpec, inp: PreparedInputs, logPath: string, signal?: AbortSignal): Promise<void> {
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
      const out = await buildTool('patch', ['-p1', '--forward', '--batch', '--no-backup-if-mismatch', '-r', '-', '-i', p], { cwd: tp.src, install: 'apt-get install patch', signal });
      await writeFile(logPath, `patch ${p}\n${out}`, { flag: 'a' });
    } catch (e) {
      if (!(e instanceof BuildError)) throw e;
      const tail = e.logTail;
      throw new BuildError(`patch ${i + 1} (${basename(p)}) does not apply to ${inp.resolved.label}`, tail, logPath);
    }
  }
}

/** Put back the files an (interrupted) patched build changed. */
export async function restorePristine(tp: TreePaths, log: (m: string) => void): Promise<void> {
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
