// The kernel's own tools, taken at test time from Debian's linux-source
// tarball (installed by .ci/setup.sh) and never committed: the KTAP parser
// (tools/testing/kunit/kunit_parser.py) and scripts/checkpatch.pl with its
// data files. kernelTools() unpacks them once per tarball into lockstep's
// cache (the unpack reads the whole xz tarball, about ten seconds); parseKtap()
// parses a KTAP file and returns the tree the kernel's parser saw.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from '../../src/kernels/obtain/cache.ts';

export interface KunitTest { name: string; status: string; errors: number; log: string[]; subtests: KunitTest[] }

/** The newest /usr/src/linux-source-X.Y.tar.xz, or null. */
export function linuxSourceTarball(): string | null {
  const t = existsSync('/usr/src') ? readdirSync('/usr/src').filter((f) => /^linux-source-[\d.]+\.tar\.xz$/.test(f)).sort() : [];
  return t.length ? join('/usr/src', t[t.length - 1]!) : null;
}

/** Where kernelTools() found or unpacked them: the kunit directory and the checkpatch.pl path. */
export interface KernelTools { kunit: string; checkpatch: string }

const CHECKPATCH_FILES = ['checkpatch.pl', 'spelling.txt', 'const_structs.checkpatch'];

/** Unpack the kunit *.py files and checkpatch's files of `tarball` into a fresh temporary directory; returns that directory and the tarball's top folder name. Throws when tar fails. */
function unpack(tarball: string, parent: string): { dir: string; top: string } {
  const dir = mkdtempSync(join(parent, '.unpack-'));
  const top = tarball.replace(/^.*\//, '').replace(/\.tar\.xz$/, '');
  const files = CHECKPATCH_FILES.map((f) => `${top}/scripts/${f}`);
  const r = spawnSync('tar', ['-xJf', tarball, '-C', dir, '--wildcards', '--', ...files, `${top}/tools/testing/kunit/*.py`], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`tar -xJf ${tarball} failed: ${r.stderr}`);
  }
  return { dir, top };
}

/**
 * The kunit tool and checkpatch.pl of `tarball` (default: the newest
 * linux-source tarball), unpacked once per tarball (its path, size and mtime)
 * under `<cacheDir>/kernel-tools/` ($LOCKSTEP_CACHE or ~/.cache/lockstep) and
 * reused by every later test and run. The copy is renamed into place whole,
 * so a reader never sees half of one; a copy missing a file is unpacked again.
 * Throws when there is no tarball (.ci/setup.sh installs linux-source-6.1) or tar fails.
 */
export function kernelTools(tarball: string | null = linuxSourceTarball(), cacheDir = defaultCacheDir()): KernelTools {
  if (!tarball) throw new Error('no /usr/src/linux-source-*.tar.xz: run .ci/setup.sh (apt linux-source-6.1)');
  const st = statSync(tarball);
  const key = createHash('sha256').update(`${tarball}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16);
  const parent = join(cacheDir, 'kernel-tools');
  const cached = join(parent, key);
  const tools = (d: string): KernelTools => ({ kunit: join(d, 'tools/testing/kunit'), checkpatch: join(d, 'scripts/checkpatch.pl') });
  const whole = (t: KernelTools): boolean => existsSync(join(t.kunit, 'kunit_parser.py')) && CHECKPATCH_FILES.every((f) => existsSync(join(t.checkpatch, '..', f)));
  if (whole(tools(cached))) return tools(cached);
  mkdirSync(parent, { recursive: true });
  const { dir, top } = unpack(tarball, parent);
  if (whole(tools(cached))) {
    // another run finished its copy meanwhile: use that one
    rmSync(dir, { recursive: true, force: true });
    return tools(cached);
  }
  rmSync(cached, { recursive: true, force: true });
  try {
    renameSync(join(dir, top), cached);
  } catch {
    // another run put its copy there first: use it when whole, else this one
    if (!whole(tools(cached))) return tools(join(dir, top));
  }
  rmSync(dir, { recursive: true, force: true });
  return tools(cached);
}

const PY = `
import json, sys
sys.path.insert(0, sys.argv[1])
import kunit_parser
def walk(t):
    return {"name": t.name, "status": t.status.name, "errors": t.counts.errors, "log": list(t.log), "subtests": [walk(s) for s in t.subtests]}
for path in sys.argv[2:]:
    print("@@BEGIN@@")
    with open(path) as f:
        t = kunit_parser.parse_run_tests(f.readlines())
    sys.stderr.flush()
    print("@@JSON@@" + json.dumps(walk(t)))
`;

/** What kunit_parser saw in one file: its test tree and what it printed while parsing. */
export interface KtapParse { tree: KunitTest; printed: string }

/**
 * Runs kunit_parser.parse_run_tests() over each of `files`, in one python3
 * process (start-up and import once); returns one KtapParse per file, in order.
 * Throws when the parser fails on any of them.
 */
export function parseKtapFiles(kunitDir: string, files: string[]): KtapParse[] {
  if (!files.length) return [];
  const r = spawnSync('python3', ['-c', PY, kunitDir, ...files], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`kunit_parser failed: ${r.stderr}`);
  return r.stdout.split('@@BEGIN@@\n').slice(1).map((part) => {
    const [printed, json] = part.split('@@JSON@@');
    return { tree: JSON.parse(json!) as KunitTest, printed: printed! };
  });
}

/** Run kunit_parser.parse_run_tests() over `file`. */
export function parseKtap(kunitDir: string, file: string): KtapParse {
  return parseKtapFiles(kunitDir, [file])[0]!;
}
