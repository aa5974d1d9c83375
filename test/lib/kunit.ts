// The kernel's own KTAP parser (tools/testing/kunit/kunit_parser.py), taken
// at test time from Debian's linux-source tarball (installed by .ci/setup.sh)
// and never committed. Parses a KTAP file and returns the tree it saw.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KunitTest { name: string; status: string; errors: number; log: string[]; subtests: KunitTest[] }

/** The newest /usr/src/linux-source-X.Y.tar.xz, or null. */
export function linuxSourceTarball(): string | null {
  const t = existsSync('/usr/src') ? readdirSync('/usr/src').filter((f) => /^linux-source-[\d.]+\.tar\.xz$/.test(f)).sort() : [];
  return t.length ? join('/usr/src', t[t.length - 1]!) : null;
}

/** Extract tools/testing/kunit/*.py into a fresh temporary directory; returns that kunit directory. */
export function extractKunit(tarball: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-kunit-'));
  const top = tarball.replace(/^.*\//, '').replace(/\.tar\.xz$/, '');
  const r = spawnSync('tar', ['-xJf', tarball, '-C', dir, '--wildcards', `${top}/tools/testing/kunit/*.py`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return join(dir, top, 'tools/testing/kunit');
}

const PY = `
import json, sys
sys.path.insert(0, sys.argv[1])
import kunit_parser
def walk(t):
    return {"name": t.name, "status": t.status.name, "errors": t.counts.errors, "log": list(t.log), "subtests": [walk(s) for s in t.subtests]}
with open(sys.argv[2]) as f:
    t = kunit_parser.parse_run_tests(f.readlines())
sys.stderr.flush()
print("@@JSON@@" + json.dumps(walk(t)))
`;

/** Run kunit_parser.parse_run_tests() over `file`. */
export function parseKtap(kunitDir: string, file: string): { tree: KunitTest; printed: string } {
  const r = spawnSync('python3', ['-c', PY, kunitDir, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kunit_parser failed: ${r.stderr}`);
  const [printed, json] = r.stdout.split('@@JSON@@');
  return { tree: JSON.parse(json!) as KunitTest, printed: printed! };
}
