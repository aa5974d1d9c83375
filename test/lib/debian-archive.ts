// Test fixture: a Debian kernel source package from another suite (e.g.
// bullseye's linux-source-5.10), fetched through lockstep's own apt lists
// for that suite (src/kernels/obtain/apt-suite.ts, debianPackage): the
// system's apt configuration and lists are never touched. The package's
// tarball is unpacked once per package version:
//   <cacheDir>/debian-archive/<suite>/<pkg>_<ver>/<pkg>/   the tree (marker: complete)

import { execFile } from 'node:child_process';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { aptCandidate, debianPackage, suiteSource } from '../../src/kernels/obtain/debian.ts';

const execFileP = promisify(execFile);
const exists = (p: string) => access(p).then(() => true, () => false);

/**
 * The unpacked tree of `pkg` from Debian `suite` (a linux-source-X.Y
 * package): downloaded and unpacked on the first call, reused after.
 * Returns the tree, the package version and the seconds spent now.
 */
export async function debianSourceTree(cacheDir: string, suite: string, pkg: string, log: (m: string) => void): Promise<{ tree: string; version: string; seconds: number }> {
  const t0 = Date.now();
  const opts = { cacheDir, log };
  const cand = await aptCandidate(pkg, await suiteSource(suite, opts));
  if (!cand) throw new Error(`${pkg} is not in Debian ${suite}`);
  const root = join(cacheDir, 'debian-archive', suite, `${pkg}_${cand}`);
  const tree = join(root, pkg);
  if (await exists(join(root, 'complete'))) return { tree, version: cand, seconds: (Date.now() - t0) / 1000 };
  const tmp = `${root}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  log(`downloading ${pkg}=${cand} from Debian ${suite}`);
  const { deb } = await debianPackage(pkg, cand, suite, tmp, opts);
  log(`unpacking ${deb}`);
  await execFileP('dpkg-deb', ['-x', deb, join(tmp, 'deb')]);
  await execFileP('tar', ['-xf', join(tmp, 'deb', 'usr', 'src', `${pkg}.tar.xz`), '--no-same-owner', '-C', tmp]);
  await rm(join(tmp, 'deb'), { recursive: true, force: true });
  await rm(deb, { force: true });
  await rm(root, { recursive: true, force: true });
  await rename(tmp, root);
  await writeFile(join(root, 'complete'), `${new Date().toISOString()}\n`);
  return { tree, version: cand, seconds: (Date.now() - t0) / 1000 };
}
