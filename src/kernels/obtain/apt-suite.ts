// Debian suites as apt sources of lockstep's own: one sources.list, lists
// and package cache per suite under the lockstep cache, reached with `-o`
// options, so the machine's apt configuration is never read for sources
// nor changed (its keyring verifies the Release signatures).
//   <cacheDir>/apt/<suite>/{sources.list,lists/,cache/,status,updated}
//   <cacheDir>/apt/<suite>.lock      held while one process runs apt-get update
//   <cacheDir>/apt/<suite>-arm64/    the same for arm64 packages (arm64 guests' kernels and busybox)
//   <cacheDir>/apt/system/pkgcache.bin  apt's binary cache of the machine's own sources (systemAptSource)
//
// Lists older than LOCKSTEP_APT_MAX_AGE_H hours (default 12) are updated
// at first use in a run; a failed update with older lists present keeps
// them (logged), so an offline re-run still resolves.

import { readFileSync } from 'node:fs';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock } from '../../util/lock.ts';
import { ConfigError } from '../../util/errors.ts';
import { runTool, ToolError } from '../../util/exec.ts';
import { aptGetUpdateArgv } from '../../util/debian-tools.ts';
import { DEBIAN_SUITES, isSuiteName, suiteArchive, suiteMembers } from './deb-kernels.ts';
import type { AptSource } from './types.ts';
import { ARCH_FACTS, type Arch, type ArchFacts } from '../arch.ts';

export { DEBIAN_SUITES } from './deb-kernels.ts';

/** The Debian mirror host; suites live under /debian, the -security ones under /debian-security. */
export const DEBIAN_HOST = 'http://deb.debian.org';
export const DEBIAN_MIRROR = `${DEBIAN_HOST}/debian`;

/** The host's Debian codename (VERSION_CODENAME of /etc/os-release), or null off Debian. */
export function hostSuite(osRelease = '/etc/os-release'): string | null {
  try {
    const m = /^VERSION_CODENAME=("?)([a-z-]+)\1$/m.exec(readFileSync(osRelease, 'utf8'));
    return m ? m[2]! : null;
  } catch {
    return null;
  }
}

/** Debian's name of a guest arch (dpkg --print-architecture). */
export type DebArch = ArchFacts['deb'];
export const debArch = (arch: Arch): DebArch => ARCH_FACTS[arch].deb;

/** The `-o` options that point apt-get/apt-cache at `dir` (a suite's directory) only, for packages of `arch`. Pure. */
export function suiteAptOptions(dir: string, arch: DebArch = 'amd64'): string[] {
  const o = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(dir, 'sources.list')), ...o('Dir::Etc::SourceParts', '-'),
    ...o('Dir::State::Lists', join(dir, 'lists')), ...o('Dir::Cache', join(dir, 'cache')),
    // apt's binary cache in the suite's own cache dir (relative to Dir::Cache): a Docker-made
    // machine's apt.conf.d/docker-clean sets it to "", so every apt-cache call parsed the whole
    // lists again (0.5-1.5 s each, about 20 per default matrix run; 0.01 s from the cache).
    // apt rebuilds it when a list changes (it records each index file's size and mtime) and
    // writes it atomically. The source cache (the same again without the status) is not kept.
    ...o('Dir::Cache::pkgcache', 'pkgcache.bin'), ...o('Dir::Cache::srcpkgcache', ''),
    ...o('Dir::State::status', join(dir, 'status')),
    ...o('Dir::Etc::Preferences', '/dev/null'), ...o('Dir::Etc::PreferencesParts', '-'),
    ...o('APT::Architectures', arch), ...o('APT::Architecture', arch),
    // the cache is root's: apt's _apt sandbox user could not write into it
    ...o('APT::Sandbox::User', 'root'),
  ];
}

/**
 * The machine's own apt sources, read as they are configured, with apt's
 * binary cache kept in lockstep's cache (<cacheDir>/apt/system/pkgcache.bin):
 * a Docker-made machine's apt.conf.d/docker-clean turns the cache off, so
 * each apt-cache call parsed every list again (about 1.5 s each here).
 * Only this -o for the calls lockstep makes; the machine's configuration
 * is not changed. apt rebuilds the file when a list or dpkg's status
 * changes. Creates the directory; throws when it cannot.
 */
export async function systemAptSource(cacheDir: string): Promise<AptSource> {
  const dir = join(cacheDir, 'apt', 'system');
  await mkdir(dir, { recursive: true });
  return { label: "the machine's apt sources", options: ['-o', `Dir::Cache::pkgcache=${join(dir, 'pkgcache.bin')}`, '-o', 'Dir::Cache::srcpkgcache='] };
}

/** The sources.list line of one suite, at its own archive (debian or debian-security). Pure. */
export const suiteSourcesLine = (suite: string): string => `deb ${DEBIAN_HOST}/${suiteArchive(suite)} ${suite} main\n`;

/** The sources.list lockstep keeps for `suite`: the suite and, for a release codename, its -security suite (suiteMembers). Pure. */
export const suiteSourcesList = (suite: string): string => suiteMembers(suite).map(suiteSourcesLine).join('');

/** The URL of a suite's InRelease file on the mirror. Pure. */
export const suiteReleaseUrl = (suite: string): string => `${DEBIAN_HOST}/${suiteArchive(suite)}/dists/${suite}/InRelease`;

/**
 * The suites of DEBIAN_SUITES whose InRelease the mirror serves (HTTP HEAD,
 * 200), cached for the lists' max age in <cacheDir>/apt/answering.json.
 * Never throws: a probe that fails counts as not answering.
 */
export async function answeringSuites(o: Pick<SuiteOptions, 'cacheDir' | 'maxAgeHours' | 'signal'>): Promise<string[]> {
  const file = join(o.cacheDir, 'apt', 'answering.json');
  try {
    const c = JSON.parse(await readFile(file, 'utf8')) as { at: string; suites: string[] };
    if ((Date.now() - Date.parse(c.at)) / 3600_000 < maxAge(o) && Array.isArray(c.suites) && c.suites.length) return c.suites;
  } catch { /* none yet or unreadable: probe */ }
  const ok = await Promise.all(DEBIAN_SUITES.map((s) => fetch(suiteReleaseUrl(s), { method: 'HEAD', signal: o.signal ?? AbortSignal.timeout(20_000) })
    .then((r) => r.ok, () => false)));
  const suites = DEBIAN_SUITES.filter((_, i) => ok[i]);
  if (suites.length) {
    await mkdir(join(o.cacheDir, 'apt'), { recursive: true });
    await writeFile(file, `${JSON.stringify({ at: new Date().toISOString(), suites })}\n`);
  }
  return suites;
}

export interface SuiteOptions {
  cacheDir: string;
  log: (m: string) => void;
  signal?: AbortSignal;
  /** update lists older than this, hours (default $LOCKSTEP_APT_MAX_AGE_H or 12; 0 = always) */
  maxAgeHours?: number;
  /** the packages' architecture (default amd64); arm64 lists live apart, in apt/<suite>-arm64 */
  arch?: DebArch;
}

const maxAge = (o: Pick<SuiteOptions, 'maxAgeHours'>): number => o.maxAgeHours ?? (Number(process.env.LOCKSTEP_APT_MAX_AGE_H ?? '') || 12);

/**
 * An AptSource for Debian `suite` with lists no older than the refresh
 * policy: `apt-get update` of lockstep's own lists under a per-suite lock
 * when they are stale (one process updates, the others wait and reuse).
 * Throws ConfigError when the suite is unknown, or when there are no lists
 * and the update fails (no network).
 */
export async function suiteSource(suite: string, o: SuiteOptions, where: { file: string; field: string } = { file: 'suite', field: 'suite' }): Promise<AptSource> {
  if (!isSuiteName(suite)) {
    throw new ConfigError(where.file, where.field, `${JSON.stringify(suite)} is not a Debian suite name`, 'write a codename, optionally with -updates, -backports or -security: e.g. "trixie-backports"');
  }
  const arch = o.arch ?? 'amd64';
  const name = arch === 'amd64' ? suite : `${suite}-${arch}`;
  const dir = join(o.cacheDir, 'apt', name);
  const src: AptSource = { label: `Debian ${suite}${arch === 'amd64' ? '' : ` ${arch}`} (lockstep's own apt lists)`, options: suiteAptOptions(dir, arch), suite };
  const stamp = join(dir, 'updated');
  const list = suiteSourcesList(suite);
  // lists of another sources.list (trixie before trixie-security joined it) are stale
  const sameList = (): boolean => { try { return readFileSync(join(dir, 'sources.list'), 'utf8') === list; } catch { return false; } };
  const age = async (): Promise<number> => (sameList() ? stat(stamp).then((s) => (Date.now() - s.mtimeMs) / 3600_000, () => Infinity) : Infinity);
  if ((await age()) < maxAge(o)) return src;
  await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
  await mkdir(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  const release = await acquireLock(join(o.cacheDir, 'apt', `${name}.lock`), `apt lists of ${name}`, { log: o.log, signal: o.signal, timeoutMs: 30 * 60_000 });
  try {
    const before = await age();
    if (before < maxAge(o)) return src;
    const hadLists = before !== Infinity || (await stat(stamp).then(() => true, () => false));
    await writeFile(join(dir, 'sources.list'), list);
    await writeFile(join(dir, 'status'), '', { flag: 'a' });
    o.log(`updating lockstep's apt lists of ${name} (${before === Infinity ? 'none yet' : `${before.toFixed(1)} h old`})`);
    const t0 = Date.now();
    try {
      await runTool('apt-get', aptGetUpdateArgv(src.options), { install: 'this needs a Debian/Ubuntu machine with apt', env: { DEBIAN_FRONTEND: 'noninteractive' }, signal: o.signal });
    } catch (e) {
      if (!(e instanceof ToolError) || e.canceled) throw e;
      const why = (e.stderr || e.message).split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 2).join(' | ');
      const notServed = /does not have a Release file|404\s+Not Found/i.test(e.stderr || e.message);
      if (hadLists && !notServed) {
        o.log(`warning: apt-get update of ${suite} failed (${why}); using the older lists`);
        return src;
      }
      const answering = await answeringSuites(o);
      if (answering.length && !answering.includes(suite)) {
        throw new ConfigError(where.file, where.field, `the Debian mirror does not serve suite ${JSON.stringify(suite)} (${why}); it serves ${answering.join(', ')}`, 'use one of those');
      }
      throw new ConfigError(where.file, where.field, `cannot fetch the apt lists of Debian ${suite} from ${DEBIAN_HOST} (${why})`, 'check the network path to the Debian mirror, then run again');
    }
    const now = new Date();
    await writeFile(stamp, `${now.toISOString()}\n`);
    await utimes(stamp, now, now);
    o.log(`apt lists of ${name} updated in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return src;
  } finally {
    await release();
  }
}
