import t from 'tap';
import { createServer, type Server } from 'node:http';
import { release as osRelease } from 'node:os';
import { mkdir, open, readdir, writeFile, stat, utimes } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import semver from 'semver';
import { dir as tmpDir } from 'tmp-promise';
import { ConfigError } from '../../src/util/errors.ts';
import { logicLabel } from '../../src/model/accounting.ts';
import {
  type KernelSpec,
  builtinSpecs,
  checkUniqueIds,
  expectLabel,
  loadSpecFile,
  loadSpecs,
  parseSpec,
  parseSpecText,
  specToJson,
} from '../../src/kernels/spec.ts';
import { ACCOUNTING_TABLE, resolveExpect } from '../../src/kernels/expect.ts';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { bzImageVersionString, sha256File } from '../../src/kernels/obtain/files.ts';
import { acquireLock } from '../../src/util/lock.ts';

const F = 'spec.json';

const catchErr = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
};
const catchAsync = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
};

/** tap's subtest type (the last overload of t.test takes just the callback). */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

/** Assert `e` is a ConfigError on `field` whose message names the field and carries a fix. */
const isConfigErrorOn = (t: TapTest, e: unknown, field: string, extra?: RegExp) => {
  if (!(e instanceof ConfigError)) {
    t.fail(`expected a ConfigError on ${field}, got ${e === undefined ? 'no error' : String(e)}`);
    return;
  }
  t.equal(e.field, field, `field is ${field} (${e.message})`);
  t.ok(e.message.includes(`: ${field}: `) || field === '', 'message names the field');
  t.ok(e.fix.length > 0 && e.message.includes('Fix: '), 'message carries a fix');
  if (extra) t.match(e.message, extra);
};

// ───────────────────────────── spec parsing ─────────────────────────────

t.test('the documented form parses exactly as written', (t) => {
  const text = '{"id": "my-5.3", "kind": "image", "path": "/abs/bzImage", "version": "5.3.1", "expect": "auto"}';
  const [s] = parseSpecText(text, F);
  t.match(s, { id: 'my-5.3', kind: 'image', path: '/abs/bzImage', version: '5.3.1', expect: { mode: 'auto' }, origin: F, at: '' });
  t.same(specToJson(s!), { id: 'my-5.3', kind: 'image', path: '/abs/bzImage', version: '5.3.1', expect: 'auto' });
  t.end();
});

t.test('valid forms of every kind and of expect', (t) => {
  const host = parseSpec({ id: 'host', kind: 'host' }, F);
  t.same(host.expect, { mode: 'auto' }, 'expect defaults to auto');
  t.equal(host.distro, undefined);

  const deb = parseSpec({ id: 'd', kind: 'debian-image', package: 'linux-image-6.12.117+deb12-cloud-amd64-unsigned', version: '6.12.117', package_version: '6.12.117-1~deb12u1' }, F);
  t.match(deb, { kind: 'debian-image', distro: 'debian', package_version: '6.12.117-1~deb12u1' }, 'debian-image implies distro debian; ~ and + allowed');
  const unpinned = parseSpec({ id: 'd2', kind: 'debian-image', package: 'linux-image-6.1.0-54-cloud-amd64-unsigned', version: '6.1.190', distro: 'debian' }, F);
  t.equal((unpinned as { package_version?: string }).package_version, undefined);

  const url = parseSpec({ id: 'u', kind: 'image', url: 'https://example.org/bzImage', sha256: 'A'.repeat(64), version: '6.18.44-fc-v509' }, F);
  t.match(url, { url: 'https://example.org/bzImage', sha256: 'a'.repeat(64) }, 'sha256 lower-cased');

  const src = parseSpec({ id: 's', kind: 'source', version: '6.1', expect: 'V0', source: { debian_package: 'linux-source-6.1' }, patches: ['/abs/x.patch'] }, F);
  t.match(src, { kind: 'source', source: { type: 'debian', package: 'linux-source-6.1' }, patches: ['/abs/x.patch'] }, 'source fields (more in test/build.test.ts)');

  const cases: [unknown, string][] = [
    ['auto', 'auto'],
    ['unknown', 'unknown'],
    ['V0', 'V0'],
    ['V4', 'V4'],
    ['V3/perf', 'V3/perf'],
    ['V2/shared', 'V2/shared'],
    [{ accounting: 'V3', counter: 'perf' }, 'V3/perf'],
    [{ accounting: 'V1' }, 'V1'],
  ];
  for (const [expect, label] of cases) {
    const s = parseSpec({ id: 'h', kind: 'host', expect }, F);
    t.equal(expectLabel(s.expect), label, `expect ${JSON.stringify(expect)}`);
  }
  const arr = parseSpecText(JSON.stringify([{ id: 'a', kind: 'host' }, { id: 'b', kind: 'host', description: 'the same kernel, twice' }]), F);
  t.same(arr.map((s) => [s.id, s.at]), [['a', '[0].'], ['b', '[1].']]);
  t.end();
});

const img = { id: 'k', kind: 'image', path: '/k/bzImage', version: '5.3.1' };
const debi = { id: 'k', kind: 'debian-image', package: 'linux-image-6.1.0-54-cloud-amd64-unsigned', version: '6.1.190' };

// [name, spec object, field the ConfigError must name]
const BAD: [string, unknown, string][] = [
  ['not an object (array element)', 'host', ''],
  ['null', null, ''],
  ['missing id', { kind: 'host' }, 'id'],
  ['id not a string', { id: 7, kind: 'host' }, 'id'],
  ['id with upper case', { id: 'Host', kind: 'host' }, 'id'],
  ['id starting with a dot', { id: '.x', kind: 'host' }, 'id'],
  ['id with a slash', { id: 'a/b', kind: 'host' }, 'id'],
  ['id too long', { id: 'a'.repeat(65), kind: 'host' }, 'id'],
  ['id empty', { id: '', kind: 'host' }, 'id'],
  ['id with a space', { id: 'a b', kind: 'host' }, 'id'],
  ['missing kind', { id: 'k' }, 'kind'],
  ['unknown kind', { id: 'k', kind: 'vmlinux' }, 'kind'],
  ['kind not a string', { id: 'k', kind: ['host'] }, 'kind'],
  ['unknown field', { id: 'k', kind: 'host', verison: '1' }, 'verison'],
  ['host with a path', { id: 'k', kind: 'host', path: '/boot/vmlinuz' }, 'path'],
  ['host with a version', { id: 'k', kind: 'host', version: '6.1.0' }, 'version'],
  ['expect bad string', { id: 'k', kind: 'host', expect: 'V5' }, 'expect'],
  ['expect lower case', { id: 'k', kind: 'host', expect: 'v3' }, 'expect'],
  ['expect bad counter', { id: 'k', kind: 'host', expect: 'V3/private' }, 'expect'],
  ['expect number', { id: 'k', kind: 'host', expect: 3 }, 'expect'],
  ['expect null', { id: 'k', kind: 'host', expect: null }, 'expect'],
  ['expect object bad accounting', { id: 'k', kind: 'host', expect: { accounting: 'V9' } }, 'expect'],
  ['expect object bad counter', { id: 'k', kind: 'host', expect: { accounting: 'V3', counter: 'mine' } }, 'expect'],
  ['expect object extra key', { id: 'k', kind: 'host', expect: { accounting: 'V3', why: 'x' } }, 'expect.why'],
  ['expect with a newline', { id: 'k', kind: 'host', expect: 'auto\n' }, 'expect'],
  ['distro upper case', { id: 'k', kind: 'host', distro: 'Debian' }, 'distro'],
  ['distro not a string', { id: 'k', kind: 'host', distro: true }, 'distro'],
  ['debian-image with another distro', { ...debi, distro: 'ubuntu' }, 'distro'],
  ['description with a newline', { id: 'k', kind: 'host', description: 'two\nlines' }, 'description'],
  ['description with a tab', { id: 'k', kind: 'host', description: 'a\tb' }, 'description'],
  ['description with ESC', { id: 'k', kind: 'host', description: 'a\u001b[31m' }, 'description'],
  ['description with a C1 control', { id: 'k', kind: 'host', description: 'a\u009bb' }, 'description'],
  ['description too long', { id: 'k', kind: 'host', description: 'x'.repeat(201) }, 'description'],
  ['description padded', { id: 'k', kind: 'host', description: ' x' }, 'description'],
  ['description empty', { id: 'k', kind: 'host', description: '' }, 'description'],
  ['image without version', { id: 'k', kind: 'image', path: '/k/bzImage' }, 'version'],
  ['image version not a string', { ...img, version: 5.3 }, 'version'],
  ['image version garbage', { ...img, version: 'latest' }, 'version'],
  ['image version with a space', { ...img, version: '5.3 .1' }, 'version'],
  ['image version beyond any kernel (was read as 1.0.0)', { ...img, version: '99999999999999999999.1' }, 'version'],
  ['image version major 100', { ...img, version: '100.1' }, 'version'],
  ['image version minor beyond 2^53', { ...img, version: '6.99999999999999999999' }, 'version'],
  ['image relative path', { ...img, path: 'bzImage' }, 'path'],
  ['image ./ path', { ...img, path: './bzImage' }, 'path'],
  ['image path with ..', { ...img, path: '/srv/../etc/bzImage' }, 'path'],
  ['image path ending in ..', { ...img, path: '/srv/..' }, 'path'],
  ['image path with ;', { ...img, path: '/k/bz;rm -rf' }, 'path'],
  ['image path with |', { ...img, path: '/k/bz|x' }, 'path'],
  ['image path with &', { ...img, path: '/k/bz&' }, 'path'],
  ['image path with >', { ...img, path: '/k/bz>x' }, 'path'],
  ['image path with *', { ...img, path: '/k/*' }, 'path'],
  ['image path with a quote', { ...img, path: "/k/bz'x" }, 'path'],
  ['image path with a NUL', { ...img, path: '/k/bz\u0000x' }, 'path'],
  ['image path with a newline', { ...img, path: '/k/bz\nx' }, 'path'],
  ['image path not a string', { ...img, path: ['/k'] }, 'path'],
  ['image path and url', { ...img, url: 'https://x.org/bz', sha256: 'a'.repeat(64) }, 'url'],
  ['image neither path nor url', { id: 'k', kind: 'image', version: '5.3.1' }, 'path'],
  ['image url without sha256', { id: 'k', kind: 'image', version: '5.3.1', url: 'https://x.org/bz' }, 'sha256'],
  ['image url not a URL', { id: 'k', kind: 'image', version: '5.3.1', url: 'not a url', sha256: 'a'.repeat(64) }, 'url'],
  ['image url ftp', { id: 'k', kind: 'image', version: '5.3.1', url: 'ftp://x.org/bz', sha256: 'a'.repeat(64) }, 'url'],
  ['image url file:', { id: 'k', kind: 'image', version: '5.3.1', url: 'file:///k/bz', sha256: 'a'.repeat(64) }, 'url'],
  ['image url with credentials', { id: 'k', kind: 'image', version: '5.3.1', url: 'https://u:p@x.org/bz', sha256: 'a'.repeat(64) }, 'url'],
  ['image url with a query &', { id: 'k', kind: 'image', version: '5.3.1', url: 'https://x.org/bz?a=1&b=2', sha256: 'a'.repeat(64) }, 'url'],
  ['image sha256 short', { ...img, sha256: 'a'.repeat(63) }, 'sha256'],
  ['image sha256 long', { ...img, sha256: 'a'.repeat(65) }, 'sha256'],
  ['image sha256 not hex', { ...img, sha256: 'g'.repeat(64) }, 'sha256'],
  ['image sha256 number', { ...img, sha256: 1234 }, 'sha256'],
  ['image with package', { ...img, package: 'linux-image-x' }, 'package'],
  ['debian missing package', { id: 'k', kind: 'debian-image', version: '6.1.190' }, 'package'],
  ['debian package upper case', { ...debi, package: 'Linux-image-6.1' }, 'package'],
  ['debian package not linux-image', { ...debi, package: 'coreutils' }, 'package'],
  ['debian package with a space', { ...debi, package: 'linux-image-6.1 x' }, 'package'],
  ['debian package with $', { ...debi, package: 'linux-image-$HOME' }, 'package'],
  ['debian package option injection', { ...debi, package: '-o=APT::x' }, 'package'],
  ['debian missing version', { id: 'k', kind: 'debian-image', package: debi.package }, 'version'],
  ['debian package_version garbage', { ...debi, package_version: 'latest' }, 'package_version'],
  ['debian package_version with a space', { ...debi, package_version: '6.1.190 -1' }, 'package_version'],
  ['debian package_version not a string', { ...debi, package_version: 6.1 }, 'package_version'],
  ['debian package_version vs version', { ...debi, package_version: '6.1.192-2' }, 'package_version'],
  ['debian with path', { ...debi, path: '/boot/vmlinuz' }, 'path'],
  ['debian with url', { ...debi, url: 'https://x.org/a.deb' }, 'url'],
  ['source without source', { id: 'k', kind: 'source', version: '6.1' }, 'source'],
  ['source with source array', { id: 'k', kind: 'source', version: '6.1', source: [] }, 'source'],
  ['source with source string', { id: 'k', kind: 'source', version: '6.1', source: 'linux' }, 'source'],
  ['source with an unknown field', { id: 'k', kind: 'source', version: '6.1', source: { debian_package: 'linux-source-6.1' }, patch: [] }, 'patch'],
  ['source without version', { id: 'k', kind: 'source', source: { debian_package: 'linux-source-6.1' } }, 'version'],
];

t.test('a description is prose: it never reaches a shell, so # ( ) ; $ ` are allowed', (t) => {
  for (const d of ['x $(reboot)', 'x `id`', 'x; rm', 'issue #25 (samply)']) t.equal(parseSpec({ id: 'k', kind: 'host', description: d }, F).description, d);
  t.end();
});

t.test(`rejects bad input with a ConfigError naming the field (${BAD.length} cases)`, (t) => {
  for (const [name, obj, field] of BAD) {
    t.test(name, (t) => {
      isConfigErrorOn(t, catchErr(() => parseSpec(obj, F)), field);
      // The same spec inside an array: the field path carries the index.
      const inArray = catchErr(() => parseSpecText(JSON.stringify([{ id: 'ok', kind: 'host' }, obj]), F));
      isConfigErrorOn(t, inArray, field === '' ? '[1]' : `[1].${field}`);
      t.end();
    });
  }
  t.end();
});

t.test('files: bad JSON, empty array, missing file, duplicate ids, built-ins', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const w = async (name: string, text: string) => {
    const p = join(d.path, name);
    await writeFile(p, text);
    return p;
  };
  const bad = await w('bad.json', '{"id": "x", "kind": "host",}');
  isConfigErrorOn(t, await catchAsync(loadSpecFile(bad)), '', /not valid JSON/);
  t.equal(((await catchAsync(loadSpecFile(bad))) as ConfigError).file, bad, 'names the file');
  isConfigErrorOn(t, await catchAsync(loadSpecFile(await w('empty.json', '[]'))), '', /no kernel spec/);
  isConfigErrorOn(t, await catchAsync(loadSpecFile(join(d.path, 'nope.json'))), '', /cannot read/);
  const dupIn = await w('dup.json', JSON.stringify([{ id: 'a', kind: 'host' }, { id: 'a', kind: 'host' }]));
  isConfigErrorOn(t, await catchAsync(loadSpecFile(dupIn)), '[1].id', /duplicate kernel id "a"/);

  const one = await w('one.json', JSON.stringify({ id: 'debian-6.1.190', kind: 'host' }));
  const e = await catchAsync(loadSpecs([one], { builtins: true }));
  isConfigErrorOn(t, e, 'id', /duplicate kernel id "debian-6.1.190" \(also defined in .*kernels\/debian-6\.1\.190\.json/);
  t.equal((e as ConfigError).file, one);
  const two = await w('two.json', JSON.stringify([{ id: 'x1', kind: 'host' }]));
  const three = await w('three.json', JSON.stringify({ id: 'x1', kind: 'host' }));
  isConfigErrorOn(t, await catchAsync(loadSpecs([two, three])), 'id');
  t.same((await loadSpecs([two, one])).map((s) => s.id), ['x1', 'debian-6.1.190']);

  const b = await builtinSpecs();
  t.same(b.map((s) => s.id).sort().filter((id) => !b.find((s) => s.id === id && s.kind === 'source')),
    ['debian-6.1.190', 'debian-6.1.192', 'debian-6.12.117', 'debian-bookworm-arm64', 'debian-bullseye-5.10', 'debian-experimental-latest', 'debian-sid-latest', 'debian-trixie-6.12', 'debian-trixie-arm64-16k', 'debian-trixie-backports-latest', 'host', 'host-container']);
  t.same(b.filter((s) => s.kind === 'debian-image' && s.version === 'latest').map((s) => [s.id, s.kind === 'debian-image' ? `${s.suite} ${s.series ?? '*'}` : '']),
    [['debian-bullseye-5.10', 'bullseye 5.10'], ['debian-experimental-latest', 'experimental *'], ['debian-sid-latest', 'sid *'], ['debian-trixie-6.12', 'trixie 6.12'], ['debian-trixie-backports-latest', 'trixie-backports *']], 'the latest rows: suite and series');
  for (const s of b) t.ok(s.description && s.description.length > 10, `${s.id} has a description`);
  const want: Record<string, string> = { 'debian-6.1.190': 'V3/shared', 'debian-6.1.192': 'V3/perf', 'debian-6.12.117': 'V3/perf', 'debian-bookworm-arm64': 'V3/shared', 'debian-trixie-arm64-16k': 'V3/perf' };
  for (const s of b) {
    if (s.kind === 'host' || s.kind === 'source') continue; // source variants: test/build.test.ts
    if (s.version === 'latest') continue; // resolved at run start: test/debian-suites.test.ts
    const r = resolveExpect(s, s.version);
    t.equal(r.logic && logicLabel(r.logic), want[s.id], `${s.id}: ${r.reason}`);
  }
  t.throws(() => checkUniqueIds([...b, b[0]!]), ConfigError);
});

// ───────────────────────────── expectations ─────────────────────────────

const upstream = (version: string, expect: unknown = 'auto'): KernelSpec => parseSpec({ id: 'k', kind: 'image', path: '/k', version, expect }, F);
const debian = (version: string, expect: unknown = 'auto'): KernelSpec =>
  parseSpec({ id: 'k', kind: 'debian-image', package: 'linux-image-x', version, expect }, F);

t.test('the accounting table is disjoint and covers every version', (t) => {
  for (let i = 0; i < ACCOUNTING_TABLE.length; i++) {
    for (let j = i + 1; j < ACCOUNTING_TABLE.length; j++) {
      t.notOk(semver.intersects(ACCOUNTING_TABLE[i]!.range, ACCOUNTING_TABLE[j]!.range), `rows ${i} and ${j} are disjoint`);
    }
  }
  let checked = 0;
  for (const [major, minors] of [[2, 40], [3, 20], [4, 20], [5, 19], [6, 30], [7, 5]] as const) {
    for (let minor = 0; minor <= minors; minor++) {
      for (const patch of [0, 1, 2, 3, 8, 9, 18, 19, 102, 103, 170, 171, 213, 214, 400]) {
        const v = `${major}.${minor}.${patch}`;
        const n = ACCOUNTING_TABLE.filter((r) => semver.satisfies(v, r.range)).length;
        if (n !== 1) t.fail(`${v} matches ${n} rows`);
        checked++;
      }
    }
  }
  t.pass(`${checked} versions each match exactly one row`);
  t.end();
});

t.test('resolveExpect at every table boundary', (t) => {
  const cases: [KernelSpec, string, string][] = [
    [upstream('4.8.17'), '4.8.17', 'V0/shared'],
    [upstream('4.9.213'), '4.9.213', 'V0/shared'],
    [upstream('4.9.214'), '4.9.214', 'V3/shared'],
    [upstream('4.13.0'), '4.13.0', 'V0/shared'],
    [upstream('4.14.170'), '4.14.170', 'V0/shared'],
    [upstream('4.14.171'), '4.14.171', 'V3/shared'],
    [upstream('4.18.20'), '4.18.20', 'V0/shared'],
    [upstream('4.19.102'), '4.19.102', 'V0/shared'],
    [upstream('4.19.103'), '4.19.103', 'V3/shared'],
    [upstream('4.19.325'), '4.19.325', 'V3/shared'],
    [upstream('4.20.0'), '4.20.0', 'V0/shared'],
    [upstream('5.3.1'), '5.3.1', 'V0/shared'],
    [upstream('5.3.8'), '5.3.8', 'V0/shared'],
    [upstream('5.3.9'), '5.3.9', 'V1a/shared'],
    [upstream('5.3.18'), '5.3.18', 'V1a/shared'],
    [upstream('5.4'), '5.4', 'V1a/shared'],
    [upstream('5.4.18'), '5.4.18', 'V1b/shared'],
    [upstream('5.4.19'), '5.4.19', 'V3/shared'],
    [upstream('5.5.0'), '5.5.0', 'V2/shared'],
    [upstream('5.5.2'), '5.5.2', 'V2/shared'],
    [upstream('5.5.3'), '5.5.3', 'V3/shared'],
    [upstream('5.6.0'), '5.6.0', 'V3/shared'],
    [upstream('6.14.11'), '6.14.11', 'V3/shared'],
    [upstream('6.15.0'), '6.15.0', 'V4/shared'],
    [upstream('6.18.44-fc-v509'), '6.18.44-fc-v509', 'V4/shared'],
    [debian('6.1.190'), '6.1.190', 'V3/shared'],
    [debian('6.1.191'), '6.1.191', 'V3/perf'], // stable 6.1.191 brought the split (Debian skipped that release)
    [debian('6.1.192'), '6.1.192', 'V3/perf'],
    [debian('6.1.200'), '6.1.200', 'V3/perf'],
    [debian('6.12.111'), '6.12.111', 'V3/shared'],
    [debian('6.12.114'), '6.12.114', 'V3/shared'],
    [debian('6.12.115'), '6.12.115', 'V3/perf'],
    [debian('6.12.117'), '6.12.117', 'V3/perf'],
    [debian('6.6.100'), '6.6.100', 'V3/unknown'], // nothing known for 6.6.y
    [debian('6.16.3'), '6.16.3', 'V4/shared'],
    [upstream('6.1.192'), '6.1.192', 'V3/perf'], // keyed on the upstream line, not the distro
    [parseSpec({ id: 'k', kind: 'image', path: '/k', version: '6.12.115', distro: 'debian' }, F), '6.12.115', 'V3/perf'],
    [parseSpec({ id: 'h', kind: 'host', distro: 'debian' }, F), '6.1.192-2', 'V3/perf'],
  ];
  for (const [spec, v, want] of cases) {
    const r = resolveExpect(spec, v);
    t.equal(r.logic && logicLabel(r.logic), want, `${spec.distro ?? 'upstream'} ${v}: ${r.reason}`);
  }
  t.equal(
    resolveExpect(debian('6.1.190'), '6.1.190').reason,
    '6.1.190: >= 5.6 and < 6.15 -> V3 (003461559ef7, v5.6-rc1); "perf: Track the perf mlock gift separately" not in this release (mainline from v7.3, stables 6.1.191, 6.12.115, 7.2.13) -> shared user->locked_vm',
    'the reason cites the table rows',
  );
  t.match(resolveExpect(upstream('6.18.44-fc-v509'), '6.18.44-fc-v509').reason, /^6\.18\.44-fc-v509 \(6\.18\.44\): >= 6\.15 -> V4/);
  t.match(resolveExpect(upstream('4.19.102'), '4.19.102').reason, /< 4\.19\.103 -> V0/);
  t.end();
});

t.test('resolveExpect: unknown, explicit labels, accounting-only labels', (t) => {
  t.same(resolveExpect(upstream('5.3.1', 'unknown'), '5.3.1'), { logic: null, reason: 'expect "unknown": classify only' });
  const full = resolveExpect(debian('6.1.190', 'V2/perf'), '6.1.190');
  t.same(full.logic, { accounting: 'V2', counter: 'perf' }, 'a full label wins over the table');
  t.same(resolveExpect(upstream('5.3.1', { accounting: 'V3', counter: 'perf' }), '5.3.1').logic, { accounting: 'V3', counter: 'perf' });
  const acc = resolveExpect(debian('6.1.192', 'V0'), '6.1.192');
  t.same(acc.logic, { accounting: 'V0', counter: 'perf' }, 'accounting-only takes the counter from the table');
  t.match(acc.reason, /explicit "V0".*separate user->perf_mlock/);
  t.same(resolveExpect(debian('6.1.190', { accounting: 'V1' }), '6.1.190').logic, { accounting: 'V1', counter: 'shared' });
  isConfigErrorOn(t, catchErr(() => resolveExpect(parseSpec({ id: 'h', kind: 'host' }, F), 'not-a-version')), 'expect');
  t.end();
});

// ───────────────────────────── artifacts ─────────────────────────────

/** A minimal x86 bzImage header: "HdrS" at 0x202, kernel_version pointing at a banner. */
const fakeBzImage = (banner: string, size = 8192): Buffer => {
  const b = Buffer.alloc(size, 0x5a);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x200, 0x20e); // string at 0x200 + 0x200
  b.write(`${banner}\0`, 0x400, 'latin1');
  return b;
};

t.test('defaultCacheDir', (t) => {
  t.equal(defaultCacheDir({ LOCKSTEP_CACHE: '/c/x', XDG_CACHE_HOME: '/xdg' }), '/c/x');
  t.equal(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' }), '/xdg/lockstep');
  t.match(defaultCacheDir({ XDG_CACHE_HOME: 'relative' }), /\/\.cache\/lockstep$/, 'relative XDG ignored');
  t.match(defaultCacheDir({}), /\/\.cache\/lockstep$/);
  t.end();
});

t.test('host artifact', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const [host] = (await builtinSpecs()).filter((s) => s.kind === 'host');
  const a = await ensureKernel(host!, { cacheDir: d.path, log: () => {} });
  t.match(a, { id: 'host', kind: 'host', vmlinuz: null, sha256: null, release: osRelease(), cached: false });
  t.equal(a.version, semver.coerce(osRelease())!.version);
  t.ok(resolveExpect(host!, a.version).logic, `host ${a.release}: ${resolveExpect(host!, a.version).reason}`);
  const src = parseSpec({ id: 's', kind: 'source', version: '6.1', source: { tarball: 'https://example.org/linux.tar.xz', sha256: '0'.repeat(64) } }, F);
  isConfigErrorOn(t, await catchAsync(ensureKernel(src, { cacheDir: d.path, log: () => {} })), 'source.tarball');
});

t.test('image by path: checks, sha256, banner', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const good = join(d.path, 'bzImage');
  const bytes = fakeBzImage('5.3.1-test (me@here) #1 SMP');
  await writeFile(good, bytes);
  const notBz = join(d.path, 'vmlinux');
  await writeFile(notBz, Buffer.alloc(4096));
  const logs: string[] = [];
  const opts = { cacheDir: d.path, log: (m: string) => logs.push(m) };
  const spec = (over: object) => parseSpec({ id: 'img', kind: 'image', version: '5.3.1', path: good, ...over }, join(d.path, 'k.json'));

  const a = await ensureKernel(spec({}), opts);
  t.match(a, { vmlinuz: good, version: '5.3.1', release: '5.3.1-test', sha256: await sha256File(good), cached: false });
  t.equal(await bzImageVersionString(good), '5.3.1-test (me@here) #1 SMP');
  const sha = (await sha256File(good)).toUpperCase();
  t.equal((await ensureKernel(spec({ sha256: sha }), opts)).sha256, sha.toLowerCase(), 'matching sha256 accepted');
  isConfigErrorOn(t, await catchAsync(ensureKernel(spec({ sha256: '0'.repeat(64) }), opts)), 'sha256', /has sha256/);
  isConfigErrorOn(t, await catchAsync(ensureKernel(spec({ path: join(d.path, 'missing') }), opts)), 'path', /does not exist/);
  isConfigErrorOn(t, await catchAsync(ensureKernel(spec({ path: d.path }), opts)), 'path', /not a regular file/);
  isConfigErrorOn(t, await catchAsync(ensureKernel(spec({ path: notBz }), opts)), 'path', /not an x86 bzImage/);
  await ensureKernel(spec({ version: '6.1.0' }), opts);
  t.match(logs.join('\n'), /the image says it is 5\.3\.1-test, the spec says version 6\.1\.0/, 'version disagreement is logged');
});

t.test('image by url: download, verify, cache, lock, no network', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const body = fakeBzImage('6.9.0-url (x@y) #1', 256 * 1024);
  const sha = (await import('node:crypto')).createHash('sha256').update(body).digest('hex');
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    if (req.url === '/missing') {
      res.writeHead(404).end();
      return;
    }
    // Slow enough that a second caller arrives while the first is downloading.
    setTimeout(() => res.writeHead(200, { 'content-length': body.length }).end(body), 300);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const logs: string[] = [];
  const opts = { cacheDir: d.path, log: (m: string) => logs.push(m) };
  const spec = (over: object = {}) => parseSpec({ id: 'u', kind: 'image', version: '6.9.0', url: `${base}/bzImage`, sha256: sha, ...over }, F);

  const [a, b] = await Promise.all([ensureKernel(spec(), opts), ensureKernel(spec(), opts)]);
  t.equal(requests, 1, 'two concurrent callers, one download');
  // Which caller downloads is not fixed; that exactly one did, and both got the same entry, is.
  t.same([a.cached, b.cached].sort(), [false, true], 'one caller fetched, the other used its result');
  t.same({ ...a, cached: null }, { ...b, cached: null }, 'both results equal (but for cached)');
  t.equal(a.vmlinuz, join(d.path, 'kernels', 'image', sha, 'vmlinuz'));
  t.equal(await sha256File(a.vmlinuz!), sha);
  t.equal(a.release, '6.9.0-url');

  const c = await ensureKernel(spec(), opts);
  t.equal(c.cached, true);
  t.equal(requests, 1, 'warm: no request');

  // Corrupt the cached file: detected, refetched.
  const fh = await open(a.vmlinuz!, 'r+');
  await fh.write(Buffer.from([0xff, 0xfe]), 0, 2, 0x1000);
  await fh.close();
  const e = await ensureKernel(spec(), opts);
  t.equal(e.cached, false);
  t.equal(requests, 2, 'refetched after corruption');
  t.equal(await sha256File(e.vmlinuz!), sha);
  t.match(logs.join('\n'), /is corrupt .*deleting it and fetching again/);

  // A stale lock (its holder stopped refreshing it: the process died) is taken over.
  const lock = join(d.path, 'kernels', 'image', `${'1'.repeat(64)}.lock`);
  await mkdir(lock, { recursive: true });
  const old = new Date(Date.now() - 3600_000);
  await utimes(lock, old, old);
  // Same bytes, another expected hash: a ConfigError once the stale lock is broken.
  isConfigErrorOn(t, await catchAsync(ensureKernel(spec({ sha256: '1'.repeat(64) }), opts)), 'sha256', /has sha256/);
  t.match(logs.join('\n'), /removed a stale lock \(holder gone for more than \d+ s\)/);
  t.notOk(await stat(lock).catch(() => null), 'lock released');
  t.notOk(await stat(join(d.path, 'kernels', 'image', '1'.repeat(64))).catch(() => null), 'no entry for a bad download');
  t.same((await readdir(join(d.path, 'kernels', 'image'))).filter((n) => n.startsWith('.tmp-')), [], 'no staging dir left');

  // A live holder is waited for.
  const release = await acquireLock(join(d.path, 'kernels', 'image', `${sha}.lock`), 'test', { log: () => {} });
  const before = logs.length;
  await import('node:fs/promises').then((fs) => fs.rm(join(d.path, 'kernels', 'image', sha), { recursive: true }));
  const waiting = ensureKernel(spec(), opts);
  await new Promise((r) => setTimeout(r, 400));
  t.match(logs.slice(before).join('\n'), /waiting for another lockstep/);
  await release();
  t.equal((await waiting).cached, false);

  // Content-addressed: another URL with the same sha256 is the same entry.
  t.equal((await ensureKernel(spec({ url: `${base}/missing` }), opts)).cached, true, 'same sha256, other url: cache hit');
  isConfigErrorOn(t, await catchAsync(ensureKernel(spec({ url: `${base}/missing`, sha256: '2'.repeat(64) }), opts)), 'url', /HTTP 404/);
  // No network: a port nobody listens on.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const off = await catchAsync(ensureKernel(spec({ url: `http://127.0.0.1:${port}/bzImage`, sha256: '3'.repeat(64) }), opts));
  isConfigErrorOn(t, off, 'url', /cannot download .*ECONNREFUSED.*use "path"/);
});
