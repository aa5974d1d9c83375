// Test fixture: a small git history of real kernel commits. The base commit
// is Debian's linux-source-6.1 unpacked as packaged; each later commit puts
// one variant patch (kernels/patches/) on the base, in the order of the
// mainline history, plus commits that only touch a comment and one that does
// not build. Commit dates are fixed, so the shas are the same on every
// machine with the same package. Built once per content under the cache dir
// and reused (the bisect state lives in .git and is cleared by the tests).

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const REPO = new URL('../../', import.meta.url).pathname;
export const TARBALL = '/usr/src/linux-source-6.1.tar.xz';
const CORE = 'kernel/events/core.c';

export interface Commit { name: string; subject: string; sha: string }

/** The history, oldest first. `patch` is applied to the base; `edit` then changes core.c. */
const HISTORY: { name: string; subject: string; patch?: string; edit?: (core: string) => string }[] = [
  { name: 'base', subject: 'linux-source-6.1 6.1.192-2 as packaged (V3 on perf_mlock)' },
  { name: 'pre-fix', subject: 'perf/core: pre-5.4 accounting, whole overage pinned (V0)', patch: 'pre-fix-v0.patch' },
  { name: 'fix-1', subject: 'perf/core: Rework memory accounting in perf_mmap() (V1, d44248a41337)', patch: 'fix-1-v1-d44248a41337.patch' },
  { name: 'fix-1-doc', subject: 'perf/core: comment on the three-way split', patch: 'fix-1-v1-d44248a41337.patch', edit: (c) => comment(c, 'the V1 split: all to U, all to P, or the part above L to P') },
  { name: 'broken', subject: 'perf/core: half-done refactor (does not build)', patch: 'fix-1-v1-d44248a41337.patch', edit: (c) => comment(c, 'the V1 split: all to U, all to P, or the part above L to P') + '\nstatic int lockstep_broken(void) { return undeclared_symbol; }\n' },
  { name: 'fix-1-fixed', subject: 'perf/core: finish the refactor', patch: 'fix-1-v1-d44248a41337.patch', edit: (c) => comment(c, 'the V1 split, refactored') },
  { name: 'fix-4', subject: 'perf/core: Make the mlock accounting simple again (V2, c4b75479741c)', patch: 'fix-4-v2-c4b75479741c.patch' },
  { name: 'fix-4-doc', subject: 'perf/core: comment on the simple split', patch: 'fix-4-v2-c4b75479741c.patch', edit: (c) => comment(c, 'the V2 split: the whole overage above L goes to P') },
  { name: 'fix-5', subject: 'perf/core: Fix mlock accounting in perf_mmap() (V3, 003461559ef7)', patch: 'fix-5-v3-003461559ef7.patch' },
  { name: 'remmap-charge', subject: 'perf/core: charge every extra mapping (V4)', patch: 'remmap-charge-v4.patch' },
];

const comment = (core: string, text: string): string => `/* lockstep bisect fixture: ${text} */\n${core}`;

const exists = (p: string) => access(p).then(() => true, () => false);

async function gitIn(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return (await execFileP('git', ['-C', dir, ...args], { maxBuffer: 256 << 20, env: { ...process.env, ...env } })).stdout.trim();
}

/** Key of the fixture: tarball identity (size + mtime, not 138 MB of hashing) + patches + history. */
async function fixtureKey(): Promise<string> {
  const h = createHash('sha256');
  const st = await import('node:fs/promises').then((f) => f.stat(TARBALL));
  h.update(`${st.size}:${st.mtimeMs}\n`);
  for (const c of HISTORY) {
    h.update(`${c.name}\0${c.subject}\0${c.edit ? c.edit('') : ''}\n`);
    if (c.patch) h.update(await readFile(join(REPO, 'kernels', 'patches', c.patch)));
  }
  return h.digest('hex').slice(0, 16);
}

/** Make (or reuse) the fixture tree; returns its path and the commits. */
export async function kernelHistoryTree(cacheDir: string, log: (m: string) => void): Promise<{ tree: string; commits: Map<string, Commit> }> {
  const root = join(cacheDir, 'bisect-fixture', await fixtureKey());
  const tree = join(root, 'linux-source-6.1');
  if (!(await exists(join(root, 'complete')))) {
    await rm(root, { recursive: true, force: true });
    const tmp = `${root}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const t0 = Date.now();
    log(`unpacking ${TARBALL}`);
    await execFileP('tar', ['-xf', TARBALL, '-C', tmp], { maxBuffer: 64 << 20 });
    const work = join(tmp, 'linux-source-6.1');
    await gitIn(tmp, ['init', '-q', '-b', 'main', work]);
    for (const [k, v] of [['user.name', 'lockstep fixture'], ['user.email', 'fixture@lockstep.invalid'], ['core.compression', '1'], ['gc.auto', '0']]) await gitIn(work, ['config', k!, v!]);
    const pristine = await readFile(join(work, CORE), 'utf8');
    let i = 0;
    let firstSha = '';
    for (const c of HISTORY) {
      // Every commit is base + its one patch (+ edit): start from the pristine core.c and files.
      if (c.name !== 'base') {
        await gitIn(work, ['checkout', '-q', firstSha, '--', '.']);
        if (c.patch) await execFileP('patch', ['-p1', '-s', '-N', '-i', join(REPO, 'kernels', 'patches', c.patch)], { cwd: work });
        if (c.edit) await writeFile(join(work, CORE), c.edit(await readFile(join(work, CORE), 'utf8')));
      } else {
        await writeFile(join(work, CORE), pristine);
      }
      log(`commit ${c.name} (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
      // -f: the packaged tree is committed exactly, even files its .gitignore names.
      await gitIn(work, ['add', '-A', '-f', '.']);
      const date = `2026-01-01T00:${String(i).padStart(2, '0')}:00Z`;
      await gitIn(work, ['commit', '-q', '--no-verify', '-m', c.subject], { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date });
      await gitIn(work, ['tag', c.name]);
      if (c.name === 'base') firstSha = await gitIn(work, ['rev-parse', 'HEAD']);
      i++;
    }
    await rename(tmp, root);
    await writeFile(join(root, 'complete'), `${new Date().toISOString()}\n`);
    log(`fixture ready in ${((Date.now() - t0) / 1000).toFixed(0)}s: ${tree}`);
  }
  const commits = new Map<string, Commit>();
  for (const c of HISTORY) commits.set(c.name, { name: c.name, subject: c.subject, sha: await gitIn(tree, ['rev-parse', `${c.name}^{commit}`]) });
  return { tree, commits };
}
