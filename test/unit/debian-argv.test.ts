// The argument vectors lockstep gives the Debian tools (src/util/debian-tools.ts),
// word for word: every package name, version and path after `--`. Then the
// real tools of this machine run those vectors with a name or file that
// starts with '-', and read it as a name or file, never as an option:
// dpkg-deb, tar, xz and zstd on files named "-x..." (built here), apt-cache
// policy and apt-get (download --print-uris, -s install) on a package "-q"
// (apt reads its lists only: nothing is downloaded or installed).

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  aptCacheMadisonArgv, aptCachePkgnamesArgv, aptCachePolicyArgv, aptGetDownloadArgv, aptGetSimulateInstallArgv, aptGetUpdateArgv,
  DEB_PACKAGE_RE, dpkgDebContentsArgv, dpkgDebFieldsArgv, dpkgDebTarArgv, tarExtractArgv, xzDecompressArgv, zstdDecompressArgv,
} from '../../src/util/debian-tools.ts';

const APT = ['-o', 'Dir::Etc::SourceList=/c/apt/bookworm/sources.list', '-o', 'Dir::State::Lists=/c/apt/bookworm/lists'];

t.test('golden argv: apt-get, apt-cache, dpkg-deb, tar, xz, zstd', (t) => {
  const pkg = 'linux-image-6.1.0-54-cloud-amd64-unsigned';
  t.strictSame(aptCachePolicyArgv(APT, pkg), [...APT, 'policy', '--', pkg]);
  t.strictSame(aptCacheMadisonArgv(APT, [pkg, 'linux-binary-unsigned-6.12.58+deb13-cloud-amd64']), [...APT, 'madison', '--', pkg, 'linux-binary-unsigned-6.12.58+deb13-cloud-amd64']);
  t.strictSame(aptCacheMadisonArgv([], [pkg]), ['madison', '--', pkg], 'run --kernel debian:PKG (the machine\'s own lists)');
  t.strictSame(aptCachePkgnamesArgv(APT, 'linux-'), [...APT, 'pkgnames', '--', 'linux-']);
  t.strictSame(aptGetDownloadArgv(APT, [{ package: pkg, version: '6.1.190-1' }, { package: 'linux-source-5.10', version: '5.10.251-5' }]),
    [...APT, 'download', '-q', '-o', 'APT::Sandbox::User=root', '--', `${pkg}=6.1.190-1`, 'linux-source-5.10=5.10.251-5']);
  t.strictSame(aptGetSimulateInstallArgv(APT, ['gcc-12', 'libc6-dev']),
    [...APT, '-o', 'APT::Install-Recommends=false', '-o', 'Debug::NoLocking=true', '-s', '-q', 'install', '--', 'gcc-12', 'libc6-dev']);
  t.strictSame(aptGetUpdateArgv(APT), [...APT, 'update', '-q'], 'update takes no positional argument');
  t.strictSame(dpkgDebFieldsArgv('/c/debs/a.deb', ['Package', 'Version']), ['-f', '--', '/c/debs/a.deb', 'Package', 'Version']);
  t.strictSame(dpkgDebTarArgv('/c/debs/a.deb'), ['--fsys-tarfile', '--', '/c/debs/a.deb']);
  t.strictSame(dpkgDebContentsArgv('/c/debs/a.deb'), ['-c', '--', '/c/debs/a.deb']);
  t.strictSame(tarExtractArgv('/c/x', ['./boot/vmlinuz-*', './lib/modules/*']), ['-x', '--no-same-owner', '--wildcards', '-C', '/c/x', '--', './boot/vmlinuz-*', './lib/modules/*']);
  t.strictSame(xzDecompressArgv('/c/m/a.ko.xz'), ['-dkf', '--', '/c/m/a.ko.xz']);
  t.strictSame(zstdDecompressArgv('/c/m/a.ko.zst'), ['-dqf', '--', '/c/m/a.ko.zst'], 'beside itself: no -o, whose value zstd would take for an option when it starts with "-"');
  for (const ok of [pkg, 'linux-source-6.1', 'g++', 'libc6-dev', 'ca-certificates']) t.match(ok, DEB_PACKAGE_RE, `${ok} is a package name`);
  for (const bad of ['-q', '--upload-pack=x', 'A', 'x', 'a b', 'a;b', '.a', '+a', 'a/b']) t.notMatch(bad, DEB_PACKAGE_RE, `${JSON.stringify(bad)} is not`);
  t.end();
});

t.test('the real tools read a name or file starting with "-" after "--" as a name or file', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'lockstep-debargv-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { cwd: d, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  // a tiny .deb named "-x.deb"
  const pkgDir = join(d, 'pkg');
  mkdirSync(join(pkgDir, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkgDir, 'boot'));
  writeFileSync(join(pkgDir, 'DEBIAN', 'control'), 'Package: lockstep-argv-test\nVersion: 1.0-1\nArchitecture: all\nMaintainer: lockstep <lockstep@example.org>\nDescription: argv test\n');
  writeFileSync(join(pkgDir, 'boot', 'vmlinuz-test'), 'kernel');
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-b', '--', pkgDir, join(d, '-x.deb')], { stdio: 'ignore' });
  const f = run('dpkg-deb', dpkgDebFieldsArgv('-x.deb', ['Package', 'Version']));
  t.equal(f.status, 0, `dpkg-deb -f -- -x.deb: exit 0 ${f.stderr}`);
  t.equal(f.stdout, 'Package: lockstep-argv-test\nVersion: 1.0-1\n', 'the fields of the file "-x.deb"');
  const tarStream = spawnSync('dpkg-deb', dpkgDebTarArgv('-x.deb'), { cwd: d });
  t.equal(tarStream.status, 0, 'dpkg-deb --fsys-tarfile -- -x.deb: exit 0');
  mkdirSync(join(d, '-out'));
  const x = spawnSync('tar', tarExtractArgv('-out', ['./boot/vmlinuz-*']), { cwd: d, input: tarStream.stdout });
  t.equal(x.status, 0, `tar -x -C -out -- ./boot/vmlinuz-*: exit 0 ${String(x.stderr)}`);
  t.equal(readFileSync(join(d, '-out', 'boot', 'vmlinuz-test'), 'utf8'), 'kernel', 'extracted into the directory "-out"');
  // xz and zstd on files named "-m.ko.xz" / "-m.ko.zst"
  writeFileSync(join(d, '-m.ko'), 'module');
  execFileSync('xz', ['-kf', '--', '-m.ko'], { cwd: d });
  writeFileSync(join(d, '-z.ko'), 'module');
  execFileSync('zstd', ['-qf', '--', '-z.ko'], { cwd: d });
  rmSync(join(d, '-m.ko'));
  rmSync(join(d, '-z.ko'));
  t.equal(run('xz', xzDecompressArgv('-m.ko.xz')).status, 0, 'xz -dkf -- -m.ko.xz');
  t.equal(readFileSync(join(d, '-m.ko'), 'utf8'), 'module', 'decompressed beside itself');
  t.equal(run('zstd', zstdDecompressArgv('-z.ko.zst')).status, 0, 'zstd -dqf -- -z.ko.zst');
  t.equal(readFileSync(join(d, '-z.ko'), 'utf8'), 'module', 'decompressed beside itself, to -z.ko');
  // apt: "-q" after "--" is a package it cannot find, never the quiet option (lists only; no download, no install)
  const pol = run('apt-cache', aptCachePolicyArgv([], '-q'));
  t.equal(pol.status, 0, 'apt-cache policy -- -q: exit 0');
  t.equal(pol.stdout.trim(), '', 'and no policy printed: "-q" was a package name, not apt-cache policy of every source');
  const dl = run('apt-get', aptGetDownloadArgv(['--print-uris'], [{ package: '-q', version: '1' }]));
  t.not(dl.status, 0, 'apt-get download -- -q=1 fails');
  t.match(dl.stderr, /Unable to locate package -q|Version '1' for '-q' was not found/, 'looking for a package "-q"');
  const sim = run('apt-get', aptGetSimulateInstallArgv([], ['-q']));
  t.match(sim.stderr, /Unable to locate package -q/, 'apt-get -s install -- -q looks for a package "-q"');
  t.end();
});
