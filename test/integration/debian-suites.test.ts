// Debian suites for real: lockstep's own apt lists of sid (under the cache,
// the machine's apt configuration untouched), "version": "latest" resolved
// to a Debian 14 linux-binary-unsigned package, booted under QEMU for a few
// scenarios, the resolution in results.json and table.md; and the one-line
// exit-2 errors naming the suite and the nearest versions that exist.
// Needs deb.debian.org. The boot is heavy: run this file under the lock.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { checkResults, verdictClass } from '../../src/results/schema.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/lockstep.mjs', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 1_500_000, env: { ...process.env, LOCKSTEP_ACCEL: 'tcg' } });
const dir = mkdtempSync(join(tmpdir(), 'lockstep-suites-'));
const spec = (name: string, obj: object): string => {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(obj));
  return p;
};
const aptEtc = (): string => readdirSync('/etc/apt/sources.list.d').map((n) => `${n}:${statSync(join('/etc/apt/sources.list.d', n)).mtimeMs}`).join(',');

t.test('a version sid does not have: exit 2, one line naming the suite and the nearest versions', async (t) => {
  const f = spec('missing.json', { id: 'sid-missing', kind: 'debian-image', suite: 'sid', package: 'linux-binary-unsigned-7.2.13+deb14-cloud-amd64', version: '7.2.13', package_version: '7.2.13-99' });
  const r = cli('run', '--no-builtin-kernels', '--kernel-spec', f, '--scenarios', 'baseline', '--out', join(dir, 'missing'), '--quiet');
  t.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line: ${r.stderr}`);
  t.match(lines[0], /missing\.json: package_version: Debian sid has no linux-binary-unsigned-7\.2\.13\+deb14-cloud-amd64=7\.2\.13-99; nearest there: linux-binary-unsigned-7\.2\.13\+deb14-cloud-amd64=7\.2\.13-\d/);
});

t.test('a series trixie does not have: the nearest kernels it does have', async (t) => {
  const f = spec('series.json', { id: 'trixie-6.99', kind: 'debian-image', suite: 'trixie', version: 'latest', series: '6.99' });
  const r = cli('run', '--no-builtin-kernels', '--kernel-spec', f, '--scenarios', 'baseline', '--out', join(dir, 'series'), '--quiet');
  t.equal(r.status, 2, r.stderr);
  t.equal(r.stderr.trim().split('\n').length, 1);
  t.match(r.stderr, /series\.json: series: Debian trixie has no cloud-amd64 kernel of series 6\.99; nearest there: linux-image-6\.12\.\d+\+deb13-cloud-amd64-unsigned=6\.12\./);
});

t.test('sid latest: resolved through lockstep\'s own lists, Debian 14 packaging, booted, recorded', async (t) => {
  const before = aptEtc();
  const f = spec('sid.json', { id: 'debian-sid-latest', kind: 'debian-image', suite: 'sid', version: 'latest', expect: 'auto' });
  const out = join(dir, 'sid');
  const r = cli('run', '--no-builtin-kernels', '--kernel-spec', f, '--scenarios', 'baseline,shared-counter,munmap-returns', '--out', out, '--attempts', '1');
  t.ok(r.status === 0 || r.status === 1, `run finished with cells (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  t.equal(aptEtc(), before, "the machine's apt sources are untouched");
  const lists = readdirSync(join(defaultCacheDir(), 'apt', 'sid', 'lists'));
  t.ok(lists.some((n) => /dists_sid_InRelease$/.test(n)), `lockstep's own signed sid lists: ${lists.join(' ')}`);

  const res = checkResults(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')), 'results.json');
  const k = res.kernels.find((x) => x.id === 'debian-sid-latest')!;
  t.ok(k.resolution, 'results.json kernels[] has the resolution');
  t.equal(k.resolution!.suite, 'sid');
  t.equal(k.resolution!.rule, 'latest');
  t.match(k.resolution!.package, /^linux-binary-unsigned-\d+\.\d+.*-cloud-amd64$/, 'the new packaging');
  t.match(k.resolution!.deb_sha256, /^[0-9a-f]{64}$/);
  t.equal(k.version, k.resolution!.version, 'the kernel row carries the resolved upstream version');
  t.equal(k.release_kind, 'real');
  t.equal(k.source, `debian:${k.resolution!.package}=${k.resolution!.package_version}@sid`);
  t.equal(res.cells.length, 3);
  const abi = k.resolution!.package.replace('linux-binary-unsigned-', '');
  for (const c of res.cells) {
    t.not(verdictClass(c.verdict), 'infra', `${c.scenario} ran: ${c.verdict} ${c.reason ?? ''}`);
    t.equal(c.kernel_release, abi, `${c.scenario}: the guest ran ${abi}`);
  }
  const table = readFileSync(join(out, 'table.md'), 'utf8');
  t.match(table, `real: sid latest = ${k.resolution!.package_version}`);
  t.match(table, `${k.resolution!.package}=${k.resolution!.package_version} (upstream ${k.version}) from sid, latest, sha256 ${k.resolution!.deb_sha256}`);
});
