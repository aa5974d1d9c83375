// Test fixture: a Debian kernel source package from another suite (e.g.
// bullseye's linux-source-5.10), fetched with apt's own options into the
// cache dir: the system's apt configuration and lists are never touched.
// The package's tarball is unpacked once per package version:
//   <cacheDir>/debian-archive/<suite>/{sources.list,lists/,cache/,<pkg>_<ver>.deb}
//   <cacheDir>/debian-archive/<suite>/<pkg>_<ver>/<pkg>/   the tree (marker: complete)

import { execFile } from 'node:child_process';
import { access, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const exists = (p: string) => access(p).then(() => true, () => false);

/** apt-get/apt-cache options that use `dir` for the sources list, the lists and the cache. */
export function aptOptions(dir: string): string[] {
  return [
    '-o', `Dir::Etc::sourcelist=${join(dir, 'sources.list')}`, '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${join(dir, 'lists')}`, '-o', `Dir::Cache=${join(dir, 'cache')}`,
    '-o', 'APT::Sandbox::User=root', '-q',
  ];
}

/**
 * The unpacked tree of `pkg` from Debian `suite` (a linux-source-X.Y
 * package): downloaded and unpacked on the first call, reused after.
 * Returns the tree, the package version and the seconds spent now.
 */
export async function debianSourceTree(cacheDir: string, suite: string, pkg: string, log: (m: string) => void): Promise<{ tree: string; version: string; seconds: number }> {
  const t0 = Date.now();
  const dir = join(cacheDir, 'debian-archive', suite);
  await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
  await mkdir(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(dir, 'sources.list'), `deb http://deb.debian.org/debian ${suite} main\n`);
  const o = aptOptions(dir);
  const policy = async () => (await execFileP('apt-cache', [...o, 'policy', pkg])).stdout;
  let cand = /Candidate: (\S+)/.exec(await policy())?.[1];
  if (!cand || cand === '(none)') {
    log(`apt-get update for ${suite} (lists in ${dir})`);
    await execFileP('apt-get', [...o, 'update'], { maxBuffer: 16 << 20 });
    cand = /Candidate: (\S+)/.exec(await policy())?.[1];
  }
  if (!cand || cand === '(none)') throw new Error(`${pkg} is not in Debian ${suite}`);
  const root = join(dir, `${pkg}_${cand}`);
  const tree = join(root, pkg);
  if (await exists(join(root, 'complete'))) return { tree, version: cand, seconds: (Date.now() - t0) / 1000 };
  const deb = (await readdir(dir)).find((n) => n.startsWith(`${pkg}_${cand.replace(/^\d+:/, '')}_`) && n.endsWith('.deb'));
  if (!deb) {
    log(`apt-get download ${pkg}=${cand}`);
    await execFileP('apt-get', [...o, 'download', `${pkg}=${cand}`], { cwd: dir, maxBuffer: 16 << 20 });
  }
  const debFile = join(dir, (await readdir(dir)).find((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb'))!);
  const tmp = `${root}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  log(`unpacking ${debFile}`);
  await execFileP('dpkg-deb', ['-x', debFile, join(tmp, 'deb')]);
  await execFileP('tar', ['-xf', join(tmp, 'deb', 'usr', 'src', `${pkg}.tar.xz`), '--no-same-owner', '-C', tmp]);
  await rm(join(tmp, 'deb'), { recursive: true, force: true });
  await rm(root, { recursive: true, force: true });
  await rename(tmp, root);
  await writeFile(join(root, 'complete'), `${new Date().toISOString()}\n`);
  return { tree, version: cand, seconds: (Date.now() - t0) / 1000 };
}
