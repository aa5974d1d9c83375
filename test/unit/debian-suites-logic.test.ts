// Debian suites and "latest", the pure parts: package names of both
// layouts, upstream versions of Debian versions, the newest of a series,
// the nearest versions for the "no such version" line, the spec fields
// (suite, series, "latest"), the table's release column and the diff's
// "kernel: old -> new" line. No I/O: runs without the lock.

import t from 'tap';
import { compareResults, renderComparison } from '../../src/report/compare.ts';
import { DEBIAN_SUITES, inSeries, isSuiteName, kernelPackage, nearest, newest, parseMadison, suiteMembers, upstreamOf } from '../../src/kernels/obtain/deb-kernels.ts';
import { suiteAptOptions, suiteReleaseUrl, suiteSourcesList } from '../../src/kernels/obtain/apt-suite.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import { releaseText } from '../../src/results/table.ts';
import type { KernelRecord, Results } from '../../src/results/schema.ts';
import { ConfigError } from '../../src/util/errors.ts';

t.test('kernel package names: both layouts, ABI and flavour; meta/dbg packages are not kernels', async (t) => {
  t.same(kernelPackage('linux-image-5.10.0-32-cloud-amd64-unsigned'), { package: 'linux-image-5.10.0-32-cloud-amd64-unsigned', abi: '5.10.0-32-cloud-amd64', flavour: 'cloud-amd64', layout: 'boot' });
  t.same(kernelPackage('linux-image-6.12.117+deb13-cloud-amd64-unsigned')?.abi, '6.12.117+deb13-cloud-amd64');
  t.same(kernelPackage('linux-binary-unsigned-7.2.13+deb14-cloud-amd64'), { package: 'linux-binary-unsigned-7.2.13+deb14-cloud-amd64', abi: '7.2.13+deb14-cloud-amd64', flavour: 'cloud-amd64', layout: 'modules' });
  t.equal(kernelPackage('linux-binary-unsigned-7.3-cloud-amd64')?.abi, '7.3-cloud-amd64');
  t.equal(kernelPackage('linux-image-cloud-amd64'), null, 'the meta package');
  t.equal(kernelPackage('linux-image-7.2.13+deb14-cloud-amd64-dbg'), null);
  t.equal(kernelPackage('linux-headers-7.3-cloud-amd64'), null);
});

t.test('upstream version of a Debian version; series membership', async (t) => {
  t.equal(upstreamOf('6.12.117-1~deb12u1'), '6.12.117');
  t.equal(upstreamOf('7.3~rc7-1~exp1'), '7.3-rc7');
  t.equal(upstreamOf('1:5.10.223-1'), '5.10.223');
  t.ok(inSeries('6.12.117', '6.12'));
  t.notOk(inSeries('6.1.192', '6.12'));
  t.ok(inSeries('7.3-rc7', '7'));
});

const rows = [
  { package: 'linux-image-6.12.107+deb13-cloud-amd64-unsigned', version: '6.12.107-1' },
  { package: 'linux-image-6.12.117+deb13-cloud-amd64-unsigned', version: '6.12.117-1' },
  { package: 'linux-image-6.1.0-57-cloud-amd64-unsigned', version: '6.1.192-3' },
  { package: 'linux-binary-unsigned-7.3-cloud-amd64', version: '7.3~rc7-1~exp1' },
  { package: 'linux-binary-unsigned-7.3-cloud-amd64', version: '7.3-1' },
];

t.test('newest: of a series, release candidates before the release; nearest: by upstream distance', async (t) => {
  t.equal(newest(rows, '6.12')?.version, '6.12.117-1');
  t.equal(newest(rows, '6.1')?.version, '6.1.192-3');
  t.equal(newest(rows)?.version, '7.3-1', '7.3 is newer than 7.3-rc7');
  t.equal(newest(rows, '5.10'), null);
  t.same(nearest(rows, '6.12.110', 2).map((r) => r.version), ['6.12.107-1', '6.12.117-1']);
});

t.test('apt-cache madison output', async (t) => {
  const out = ' linux-binary-unsigned-7.2.13+deb14-cloud-amd64 |   7.2.13-1 | http://deb.debian.org/debian sid/main amd64 Packages\n' +
    ' linux-binary-unsigned-7.2.13+deb14-cloud-amd64 |   7.2.13-1 | http://deb.debian.org/debian sid/main Sources\n';
  t.same(parseMadison(out), [{ package: 'linux-binary-unsigned-7.2.13+deb14-cloud-amd64', version: '7.2.13-1', suite: 'sid' }]);
  const trixie = ' linux-image-6.12.118+deb13-cloud-amd64-unsigned | 6.12.118-1 | http://deb.debian.org/debian-security trixie-security/main amd64 Packages\n' +
    ' linux-image-6.12.117+deb13-cloud-amd64-unsigned | 6.12.117-1 | http://deb.debian.org/debian trixie/main amd64 Packages\n';
  t.same(parseMadison(trixie).map((r) => r.suite), ['trixie-security', 'trixie'], 'the suite each row came from');
  t.equal(newest(parseMadison(trixie))?.suite, 'trixie-security', 'a trixie machine runs the security update');
});

t.test("a suite's sources.list: the security suites at their own archive, a release codename with its -security", async (t) => {
  t.equal(suiteSourcesList('trixie'), 'deb http://deb.debian.org/debian trixie main\ndeb http://deb.debian.org/debian-security trixie-security main\n');
  t.equal(suiteSourcesList('trixie-backports'), 'deb http://deb.debian.org/debian trixie-backports main\n');
  t.equal(suiteSourcesList('bookworm-security'), 'deb http://deb.debian.org/debian-security bookworm-security main\n');
  t.equal(suiteSourcesList('sid'), 'deb http://deb.debian.org/debian sid main\n');
  t.same(suiteMembers('experimental'), ['experimental']);
  t.equal(suiteReleaseUrl('trixie-security'), 'http://deb.debian.org/debian-security/dists/trixie-security/InRelease');
  t.equal(suiteReleaseUrl('forky-backports'), 'http://deb.debian.org/debian/dists/forky-backports/InRelease');
  for (const ok of ['trixie', 'trixie-updates', 'trixie-backports', 'bookworm-security', 'duke']) t.ok(isSuiteName(ok), ok);
  for (const bad of ['', 'Trixie', 'trixie/updates', 'trixie-proposed', '-security', 'trixie security', '../x']) t.notOk(isSuiteName(bad), JSON.stringify(bad));
});

t.test("a suite's apt options point apt at lockstep's own files only", async (t) => {
  const o = suiteAptOptions('/c/apt/sid').join(' ');
  for (const want of ['Dir::Etc::SourceList=/c/apt/sid/sources.list', 'Dir::Etc::SourceParts=-', 'Dir::State::Lists=/c/apt/sid/lists', 'Dir::Cache=/c/apt/sid/cache', 'Dir::State::status=/c/apt/sid/status']) {
    t.match(o, want);
  }
  t.notMatch(o, /\/etc\/apt|\/var\/lib\/apt/);
  // the binary cache kept (relative: in Dir::Cache), whatever the machine's apt.conf.d says (docker-clean empties it)
  t.match(o, 'Dir::Cache::pkgcache=pkgcache.bin');
});

const err = (f: () => unknown): ConfigError => {
  try { f(); } catch (e) { if (e instanceof ConfigError) return e; throw e; }
  throw new Error('no error');
};

t.test('spec fields: suite, "latest", series', async (t) => {
  const s = parseSpec({ id: 'sid', kind: 'debian-image', suite: 'sid', version: 'latest' }, 'f.json');
  t.match(s, { kind: 'debian-image', suite: 'sid', version: 'latest' });
  t.equal('package' in s, false, 'no package needed with latest');
  t.match(parseSpec({ id: 't', kind: 'debian-image', suite: 'trixie', version: 'latest', series: '6.12' }, 'f.json'), { series: '6.12' });
  t.match(parseSpec({ id: 'b', kind: 'debian-image', suite: 'sid', package: 'linux-binary-unsigned-7.2.13+deb14-cloud-amd64', version: '7.2.13' }, 'f.json'), { package: 'linux-binary-unsigned-7.2.13+deb14-cloud-amd64' });
  t.match(parseSpec({ id: 'x', kind: 'debian-image', suite: 'trixie-backports', version: 'latest' }, 'f.json'), { suite: 'trixie-backports' }, 'any pocket of any codename: the mirror decides at fetch time');
  t.match(parseSpec({ id: 'x', kind: 'debian-image', suite: 'bookworm-security', version: 'latest' }, 'f.json'), { suite: 'bookworm-security' });
  t.match(err(() => parseSpec({ id: 'x', kind: 'debian-image', suite: 'buster-lts', version: 'latest' }, 'f.json')).message, /f\.json: suite: "buster-lts" is not a Debian suite name.*trixie-backports/);
  t.match(err(() => parseSpec({ id: 'x', kind: 'debian-image', suite: 7, version: 'latest' }, 'f.json')).message, /f\.json: suite: a Debian suite is a string, got 7/);
  t.match(err(() => parseSpec({ id: 'x', kind: 'debian-image', version: '6.1.190' }, 'f.json')).message, /package: missing/);
  t.match(err(() => parseSpec({ id: 'x', kind: 'debian-image', package: 'linux-image-6.1.0-54-cloud-amd64-unsigned', version: '6.1.190', series: '6.1' }, 'f.json')).message, /series: only means something with "version": "latest"/);
  t.match(err(() => parseSpec({ id: 'x', kind: 'debian-image', suite: 'sid', version: 'latest', package_version: '7.2.13-1' }, 'f.json')).message, /package_version: contradicts/);
  t.match(err(() => parseSpec({ id: 'x', kind: 'debian-image', suite: 'sid', version: 'latest', series: 'six' }, 'f.json')).message, /series: invalid value/);
  t.match(parseSpec({ id: 'src', kind: 'source', version: '5.10.223', source: { debian_package: 'linux-source-5.10', suite: 'bullseye' } }, '/k/f.json'), { source: { type: 'debian', package: 'linux-source-5.10', suite: 'bullseye' } });
  t.match(err(() => parseSpec({ id: 'src', kind: 'source', version: '5.10.223', source: { debian_package: 'linux-source-5.10', suite: 'woody/main' } }, '/k/f.json')).message, /source\.suite: "woody\/main" is not a Debian suite name/);
  t.ok(DEBIAN_SUITES.includes('experimental'));
  t.ok(DEBIAN_SUITES.includes('trixie-security') && DEBIAN_SUITES.includes('bookworm-backports') && DEBIAN_SUITES.includes('duke'), 'the probe list: codenames x pockets');
  t.notOk(DEBIAN_SUITES.includes('sid-security'), 'sid and experimental have no pockets');
});

const rec = (over: Partial<KernelRecord>): KernelRecord => ({ id: 'debian-sid-latest', kind: 'debian-image', version: '7.2.13', expected_logic: 'V4/perf', expect_reason: '', artifact_sha256: null, ...over });
const resolution = (pv: string, version: string) => ({ suite: 'sid', rule: 'latest', package: 'linux-binary-unsigned-x', package_version: pv, version, deb_sha256: 'a'.repeat(64) });

t.test('table release column: real or stand-in, and which version a latest row ran', async (t) => {
  t.equal(releaseText(rec({ release_kind: 'real', resolution: resolution('7.2.13-1', '7.2.13') })), 'real: sid latest = 7.2.13-1');
  t.equal(releaseText(rec({ release_kind: 'real', resolution: { ...resolution('6.12.118-1', '6.12.118'), suite: 'trixie-security', rule: 'latest 6.12' } })), 'real: trixie-security latest 6.12 = 6.12.118-1',
    'a trixie row that ran the security update names the suite it came from');
  t.equal(releaseText(rec({ kind: 'source', id: 'fix-4' })), 'stand-in');
  t.equal(releaseText(rec({ kind: 'host', id: 'host' })), 'real');
});

t.test('diff: a latest row that moved says old -> new beside its changed cells', async (t) => {
  const run = (version: string, verdict: 'MATCH' | 'MISMATCH'): Results => ({
    schema: 'lockstep/results@2', lockstep_version: '0', started_at: '', complete: true,
    host: { release: '', cpus: 2, accel: 'tcg', accel_why: '' },
    kernels: [rec({ version, resolution: resolution(`${version}-1`, version) })], scenarios: [{ id: 'remmap', hash: 'h', cpus: 2 }],
    cells: [{ kernel: 'debian-sid-latest', scenario: 'remmap', verdict, expected_logic: 'V4/perf', cpus: 2, runtime: 'qemu', accel: 'tcg', first_eperm_measured: null, first_eperm_expected: null, pinned_measured: [], pinned_expected: [], measured: [], expected: [], started_at: '', scenario_hash: 'h', rerun: '' }],
  });
  const c = compareResults(run('7.2.13', 'MATCH'), run('7.2.14', 'MISMATCH'), new Map(), new Map());
  t.same(c.kernelVersions, [{ kernel: 'debian-sid-latest', old: '7.2.13', new: '7.2.14' }]);
  const text = renderComparison(c, 'a', 'b');
  t.match(text, 'Kernel version debian-sid-latest: 7.2.13 -> 7.2.14');
  t.match(text, /REGRESSION debian-sid-latest x remmap: .*\[debian-sid-latest: 7\.2\.13 -> 7\.2\.14\]/);
  t.same(compareResults(run('7.2.13', 'MATCH'), run('7.2.13', 'MATCH'), new Map(), new Map()).kernelVersions, []);
});
