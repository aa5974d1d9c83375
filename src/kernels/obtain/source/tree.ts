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
import { installAuxPmu } from './auxpmu.ts';
import type { PreparedInputs } from './inputs.ts';
import { KBUILD_TARGETS } from './arch.ts';
import { BuildError, buildTool, makeArgs, makeEnv, runMake, type TreePaths, treePathsAt } from './make.ts';
import { missingOptions, parseDotConfig, parseFragment, patchedFiles } from './recipe.ts';
import { kconfigSymbols, splitByTree } from './toolchain.ts';
import { tarFileProblems } from './tarsafe.ts';

/** <cacheDir>/kernels/source-trees */
export const treesDir = (cacheDir: string): string => join(cacheDir, 'kernels', 'source-trees');

/** Where the tree of `inp` lives. */
export function treePaths(cacheDir: string, inp: PreparedInputs): TreePaths {
  // a "path" tree is hard-link copied into src/ too: see treePathsAt
  return treePathsAt(join(treesDir(cacheDir), inp.tree), inp.cc, KBUILD_TARGETS[inp.arch]);
}

/** What the shared tree holds beyond its sources: <root>/toolchain.json, written when it is set up. */
export interface TreeFacts {
  /** each backport of the version's table rows: applied to lockstep's copy, or found already in the tree */
  backports: { id: string; commit: string; file: string; status: 'applied' | 'present' }[];
  /** fragment options the tree's Kconfig files do not define: left out of the configuration */
  absent_options: string[];
}

/** The facts of a set-up tree (empty lists for a tree set up before they were recorded). */
export async function treeFacts(tp: TreePaths): Promise<TreeFacts> {
  try {
    return JSON.parse(await readFile(join(tp.root, 'toolchain.json'), 'utf8')) as TreeFacts;
  } catch {
    return { backports: [], absent_options: [] };
  }
}

/**
 * Apply the build-fix backports to lockstep's copy `src` (never the user's
 * tree: a hard-linked file is replaced by a copy before it is patched). A
 * tree without the row's unfixed code carries the fix already: recorded as
 * "present", left alone. One with the unfixed code where the patch does not
 * apply is a BuildError naming the backport.
 */
export async function applyBackports(src: string, backports: PreparedInputs['backports'], label: string, signal?: AbortSignal): Promise<TreeFacts['backports']> {
  const out: TreeFacts['backports'] = [];
  for (const b of backports) {
    const rec = { id: b.row.id, commit: b.row.commit, file: b.row.file };
    const target = await readFile(join(src, b.row.symptom.file), 'utf8').catch(() => '');
    if (!target.includes(b.row.symptom.text)) { out.push({ ...rec, status: 'present' }); continue; }
    for (const f of patchedFiles(b.text)) {
      const p = join(src, f);
      if (await exists(p)) {
        // break a hard link to the user's file: patch the copy only
        await copyFile(p, `${p}.lockstep-tmp`);
        await rename(`${p}.lockstep-tmp`, p);
      }
    }
    try {
      await buildTool('patch', ['-p1', '--batch', '--forward', '--no-backup-if-mismatch', '-r', '-', '-i', b.path], { cwd: src, install: 'apt-get install patch', signal });
    } catch (e) {
      if (!(e instanceof BuildError)) throw e;
      throw new BuildError(`backport ${b.row.file} (${b.row.commit} "${b.row.subject}") does not apply to ${label}, which has the unfixed code in ${b.row.symptom.file}`, e.logTail, null);
    }
    out.push({ ...rec, status: 'applied' });
  }
  return out;
}

/** Every symbol (without CONFIG_) some Kconfig file of the tree `src` defines. */
export async function treeKconfigSymbols(src: string): Promise<Set<string>> {
  const syms = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) {
        if (e.name === '.git' || e.name === '_build' || e.name === 'Documentation') continue;
        await walk(join(dir, e.name));
      } else if (e.name.startsWith('Kconfig')) {
        for (const s of kconfigSymbols(await readFile(join(dir, e.name), 'utf8'))) syms.add(s);
      }
    }
  };
  await walk(src);
  return syms;
}

/** The fragment without the lines of `absent` options, each replaced by a comment saying so. Pure. */
export function effectiveFragment(text: string, absent: readonly string[]): string {
  if (!absent.length) return text;
  const drop = new Set(absent);
  return text.split('\n').map((l) => {
    const m = /^\s*(CONFIG_[A-Za-z0-9_]+)=/.exec(l) ?? /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(l.trim());
    return m && drop.has(m[1]!) ? `# lockstep: ${m[1]} left out: this release has no such option` : l;
  }).join('\n');
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
    const backports = await applyBackports(join(staging, 'src'), inp.backports, inp.resolved.label, signal);
    for (const b of backports) log(`backport ${b.file}: ${b.status === 'applied' ? 'applied to lockstep\'s copy' : 'already in this tree'}`);
    const facts: TreeFacts = { backports, absent_options: [] };
    await writeFile(join(staging, 'toolchain.json'), JSON.stringify(facts, null, 2));
    await writeFile(join(staging, 'unpacked'), `${inp.resolved.identity}\n`);
    await rename(staging, tp.root);
  }
  await mkdir(tp.root, { recursive: true });
  // The software AUX PMU, built in (idempotent; its text is in the tree key).
  if (inp.keyInputs.auxPmu !== undefined) await installAuxPmu(tp.src, inp.keyInputs.auxPmu);
  await configureTree(tp, inp.buildFragment, cacheDir, log, signal);
}

/**
 * Configure the shared tree once (a `configured` marker): allnoconfig +
 * the fragment, less the options this release does not define that a later
 * release brings (toolchain.ts KCONFIG_INTRODUCED; recorded in
 * toolchain.json), then olddefconfig; every remaining fragment line is
 * verified (an unknown name fails the build). Throws BuildError.
 */
export async function configureTree(tp: TreePaths, fragmentText: string, cacheDir: string, log: (m: string) => void, signal?: AbortSignal): Promise<void> {
  const marker = join(tp.root, 'configured');
  if (await exists(marker)) return;
  await mkdir(tp.obj, { recursive: true });
  // Options known to come with a later release are left out (and reported), not failed on.
  const wanted = parseFragment(fragmentText, 'fragment', (f, field, problem, fix) => new ConfigError(f, field, problem, fix)).map((l) => l.option);
  const { leftOut: absent } = splitByTree(wanted, await treeKconfigSymbols(tp.src));
  if (absent.length) log(`left out of the fragment (no such option in this release): ${absent.join(', ')}`);
  const facts = await treeFacts(tp);
  await writeFile(join(tp.root, 'toolchain.json'), JSON.stringify({ ...facts, absent_options: absent }, null, 2));
  const fragText = effectiveFragment(fragmentText, absent);
  const fragPath = join(tp.root, 'fragment.config');
  await writeFile(fragPath, fragText);
  const cfgLog = join(tp.root, 'logs', 'configure.log');
  await mkdir(dirname(cfgLog), { recursive: true });
  log('configuring: allnoconfig + fragment, then olddefconfig');
  const env = makeEnv(tp, cacheDir);
  const args = makeArgs(tp, '');
  await runMake(tp, [...args, `KCONFIG_ALLCONFIG=${fragPath}`, 'allnoconfig'], cfgLog, { log, t0: Date.now(), env, signal });
  await runMake(tp, [...args, 'olddefconfig'], cfgLog, { log, t0: Date.now(), env, signal });
  const frag = parseFragment(fragText, 'fragment', (f, field, problem, fix) => new ConfigError(f, field, problem, fix));
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
