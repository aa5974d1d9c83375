// `lockstep kernels news`, the pure part, on saved excerpts of Debian
// Packages indexes (trixie-backports and trixie-security, December 2026):
// the cloud kernels each suite lists (the unsigned image where there is
// one, the signed one where trixie-backports kept only that), which no
// published run measured, and the expectation row each crosses.

import t from 'tap';
import { kernelNews, measuredPackages, oneImagePerKernel, parsePackagesIndex, renderNews } from '../../src/kernels/news.ts';

const stanza = (pkg: string, version: string, extra = ''): string =>
  `Package: ${pkg}\nSource: linux-signed-amd64 (${version})\nVersion: ${version}\nArchitecture: amd64\n${extra}Priority: optional\nSection: kernel\n`;

const BACKPORTS = [
  stanza('linux-binary-unsigned-7.3.4+deb13-cloud-amd64', '7.3.4-1~bpo13+1', 'Depends: linux-base-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1)\n'),
  stanza('linux-binary-7.3.4+deb13-cloud-amd64', '7.3.4-1~bpo13+1'),
  stanza('linux-image-7.3.4+deb13-cloud-amd64', '7.3.4-1~bpo13+1', 'Depends: linux-binary-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1)\n'),
  stanza('linux-headers-7.3.4+deb13-cloud-amd64', '7.3.4-1~bpo13+1'),
  stanza('linux-binary-unsigned-7.2.6+deb13-cloud-amd64', '7.2.6-1~bpo13+1'),
  stanza('linux-binary-7.1.13+deb13-cloud-amd64', '7.1.13-1~bpo13+1'),
  stanza('linux-image-6.18.15+deb13-cloud-amd64', '6.18.15-1~bpo13+1'),
  stanza('linux-image-7.3.4+deb13-cloud-amd64-dbg', '7.3.4-1~bpo13+1'),
  stanza('linux-image-cloud-amd64', '7.3.4-1~bpo13+1'),
  stanza('linux-binary-unsigned-7.3.4+deb13-amd64', '7.3.4-1~bpo13+1'),
].join('\n');

const SECURITY = [
  stanza('linux-image-6.12.118+deb13-cloud-amd64-unsigned', '6.12.118-1'),
  stanza('linux-image-6.12.118+deb13-cloud-amd64', '6.12.118-1'),
  stanza('linux-image-6.12.113+deb13-cloud-amd64-unsigned', '6.12.113-1'),
].join('\n');

t.test('a Packages index: the cloud kernel images of the flavour, with their suite', (t) => {
  const rows = parsePackagesIndex(BACKPORTS, 'trixie-backports');
  t.same(rows.map((r) => r.package), [
    'linux-binary-unsigned-7.3.4+deb13-cloud-amd64', 'linux-binary-7.3.4+deb13-cloud-amd64', 'linux-image-7.3.4+deb13-cloud-amd64',
    'linux-binary-unsigned-7.2.6+deb13-cloud-amd64', 'linux-binary-7.1.13+deb13-cloud-amd64', 'linux-image-6.18.15+deb13-cloud-amd64',
  ], 'no headers, no -dbg, no flavour meta package, no other flavour');
  t.ok(rows.every((r) => r.suite === 'trixie-backports'));
  t.same(oneImagePerKernel(rows).map((r) => r.package), [
    'linux-binary-unsigned-7.3.4+deb13-cloud-amd64', 'linux-binary-unsigned-7.2.6+deb13-cloud-amd64',
    'linux-binary-7.1.13+deb13-cloud-amd64', 'linux-image-6.18.15+deb13-cloud-amd64',
  ], 'one per kernel: the unsigned image where there is one');
  t.end();
});

t.test('news: newest first, new unless a published run resolved that package version, and the expectation row', (t) => {
  const rows = [...parsePackagesIndex(BACKPORTS, 'trixie-backports'), ...parsePackagesIndex(SECURITY, 'trixie-security')];
  const published = [{ kernels: [
    { id: 'debian-trixie-6.12', resolution: { package: 'linux-image-6.12.113+deb13-cloud-amd64-unsigned', package_version: '6.12.113-1' } },
    { id: 'host' },
  ] }, { not: 'results' }];
  const measured = measuredPackages(published);
  t.same([...measured], ['linux-image-6.12.113+deb13-cloud-amd64-unsigned=6.12.113-1']);
  const news = kernelNews(rows, measured);
  t.same(news.map((r) => [r.suite, r.upstream, r.new]), [
    ['trixie-backports', '7.3.4', true], ['trixie-backports', '7.2.6', true], ['trixie-backports', '7.1.13', true],
    ['trixie-backports', '6.18.15', true], ['trixie-security', '6.12.118', true], ['trixie-security', '6.12.113', false],
  ]);
  const by = (v: string) => news.find((r) => r.upstream === v)!;
  // from the kernel-facts table (src/kernels/expect.ts): V4 from 6.15; the counter per version line
  t.match(by('7.3.4').expected, /^V4\//);
  t.match(by('6.18.15').expected, /^V4\//);
  t.equal(by('6.12.118').expected, 'V3/perf', 'stable 6.12.115: perf: Track the perf mlock gift separately');
  t.match(by('6.12.118').reason, /6\.12\.115/);
  const text = renderNews(news, 'results');
  t.match(text, /^suite +upstream +expected +new +package=version\n/);
  t.match(text, /6 cloud kernels in 2 suites; 5 not measured by results:\n/);
  t.match(text, /\n- 7\.3\.4 in trixie-backports: expected V4\/\S+ \(7\.3\.4: /);
  t.notMatch(text, /- 6\.12\.113 in/, 'a measured kernel is not news');
  t.end();
});

t.test('news: the same Debian version measured under another package of the flavour (signed, meta, another suite) is not new; another flavour is', (t) => {
  const rows = parsePackagesIndex(SECURITY, 'trixie-security');
  // the signed linux-image-6.12.118+deb13-cloud-amd64 is the one oneImagePerKernel keeps only without an unsigned one: measure the signed name
  const bySigned = kernelNews(rows, new Set(['linux-image-6.12.118+deb13-cloud-amd64=6.12.118-1']));
  t.equal(bySigned.find((r) => r.upstream === '6.12.118')!.new, false, 'measured as the signed image: the unsigned row is not new');
  const otherFlavour = kernelNews(rows, new Set(['linux-image-6.12.118+deb13-arm64-unsigned=6.12.118-1']));
  t.equal(otherFlavour.find((r) => r.upstream === '6.12.118')!.new, true, 'an arm64 build of the same version is another kernel');
  t.equal(bySigned.find((r) => r.upstream === '6.12.113')!.new, true);
  t.end();
});
