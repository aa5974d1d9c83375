// Tier: smoke (its subtests moved unchanged from test/kernels.test.ts; the rest is in test/unit/kernels.test.ts).
import t from 'tap';
import { mkdir, open, readFile, readdir, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir as tmpDir } from 'tmp-promise';
import { ConfigError } from '../../src/util/errors.ts';
import {
  builtinSpecs,
  parseSpec,
  specToJson,
} from '../../src/kernels/spec.ts';
import { ensureKernel } from '../../src/kernels/artifact.ts';
import { bzImageVersionString, isBzImage, sha256File } from '../../src/kernels/obtain/files.ts';

const F = 'spec.json';

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

// ───────────────────────────── expectations ─────────────────────────────

// ───────────────────────────── artifacts ─────────────────────────────

t.test('debian-image: real apt-get fetch, cache hit, corruption, apt errors', async (t) => {
  const d = await tmpDir({ unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  const logs: string[] = [];
  const opts = { cacheDir: d.path, log: (m: string) => logs.push(m) };
  const spec = (await builtinSpecs()).find((s) => s.id === 'debian-6.1.190')!;

  let t0 = performance.now();
  const both = await Promise.all([ensureKernel(spec, opts), ensureKernel(spec, opts)]);
  const cold = performance.now() - t0;
  t.comment(`cold fetch of ${spec.id}: ${(cold / 1000).toFixed(2)} s`);
  // Either caller may be the one that downloads: assert what the lock guarantees, not an order.
  t.same(both.map((x) => x.cached).sort(), [false, true], 'one caller fetched, the other waited and used its result');
  t.equal(logs.filter((l) => l.startsWith('fetching')).length, 1, 'one apt-get download');
  t.same({ ...both[0], cached: null }, { ...both[1], cached: null }, 'both results equal (but for cached)');
  const a = both.find((x) => !x.cached)!;
  const entry = join(d.path, 'kernels', 'debian', 'linux-image-6.1.0-54-cloud-amd64-unsigned_6.1.190-1');
  t.match(a, { kind: 'debian-image', vmlinuz: join(entry, 'vmlinuz'), version: '6.1.190', release: '6.1.0-54-cloud-amd64', cached: false });
  const fh = await open(a.vmlinuz!, 'r');
  const magic = Buffer.alloc(4);
  await fh.read(magic, 0, 4, 0x202);
  await fh.close();
  t.equal(magic.toString('latin1'), 'HdrS', 'vmlinuz is a bzImage');
  t.ok(await isBzImage(a.vmlinuz!));
  t.match(await bzImageVersionString(a.vmlinuz!), /^6\.1\.0-54-cloud-amd64 /);
  const meta = JSON.parse(await readFile(join(entry, 'meta.json'), 'utf8'));
  t.match(meta, { package: 'linux-image-6.1.0-54-cloud-amd64-unsigned', package_version: '6.1.190-1', vmlinuz_sha256: a.sha256, deb_sha256: /^[0-9a-f]{64}$/, fetched_at: String });
  t.match(await readFile(join(entry, 'config'), 'utf8'), /CONFIG_PERF_EVENTS=y/);
  t.same((await readdir(join(d.path, 'kernels', 'debian'))).sort(), ['linux-image-6.1.0-54-cloud-amd64-unsigned_6.1.190-1'], 'no lock or staging left');

  t0 = performance.now();
  const b = await ensureKernel(spec, opts);
  t.comment(`warm hit of ${spec.id}: ${((performance.now() - t0) / 1000).toFixed(3)} s`);
  t.equal(b.cached, true, 'second call is a cache hit');
  t.equal(b.sha256, a.sha256);

  // Unpinned: the key comes from apt-cache policy's candidate (6.1.190-1) -> same entry.
  const unpinned = parseSpec({ id: 'u', kind: 'debian-image', package: 'linux-image-6.1.0-54-cloud-amd64-unsigned', version: '6.1.190' }, F);
  const u = await ensureKernel(unpinned, opts);
  t.match(u, { cached: true, vmlinuz: a.vmlinuz });

  // Flip bytes of the cached vmlinuz: detected, deleted, refetched.
  const w = await open(a.vmlinuz!, 'r+');
  const buf = Buffer.alloc(16);
  await w.read(buf, 0, 16, 4096);
  for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! ^ 0xff;
  await w.write(buf, 0, 16, 4096);
  await w.close();
  t.not(await sha256File(a.vmlinuz!), a.sha256, 'corrupted');
  t0 = performance.now();
  const c = await ensureKernel(spec, opts);
  t.comment(`refetch after corruption: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  t.equal(c.cached, false, 'refetched');
  t.equal(c.sha256, a.sha256);
  t.equal(await sha256File(c.vmlinuz!), a.sha256, 'sha256 matches again');
  t.match(logs.join('\n'), /linux-image-6\.1\.0-54-cloud-amd64-unsigned=6\.1\.190-1 is corrupt \(vmlinuz sha256 [0-9a-f]+ != recorded/);

  // Offline re-run: apt knows no candidate, the cache holds exactly one entry for the package.
  const fake = 'linux-image-0.0.0-lockstep-test-unsigned';
  const fakeEntry = join(d.path, 'kernels', 'debian', `${fake}_6.1.190-9`);
  await mkdir(fakeEntry);
  await copyFile(join(entry, 'vmlinuz'), join(fakeEntry, 'vmlinuz'));
  await copyFile(join(entry, 'config'), join(fakeEntry, 'config'));
  await writeFile(join(fakeEntry, 'meta.json'), JSON.stringify({ ...meta, package: fake, package_version: '6.1.190-9' }));
  const offline = parseSpec({ id: 'o', kind: 'debian-image', package: fake, version: '6.1.190' }, F);
  const o = await ensureKernel(offline, opts);
  t.match(o, { cached: true, vmlinuz: join(fakeEntry, 'vmlinuz') });
  t.match(logs.join('\n'), /apt-cache has no candidate for linux-image-0\.0\.0-lockstep-test-unsigned; using the only cached version 6\.1\.190-9/);

  // Unknown package, no cache entry: a ConfigError telling how to list the real ones.
  const unknown = parseSpec({ id: 'x', kind: 'debian-image', package: 'linux-image-0.0.0-nonexistent-unsigned', version: '6.1.190' }, F);
  isConfigErrorOn(t, await catchAsync(ensureKernel(unknown, opts)), 'package', /the machine's apt sources .* has no package linux-image-0\.0\.0-nonexistent-unsigned; nearest there: linux-image-6\.1\.\d+-\d+-cloud-amd64-unsigned=6\.1\..*apt-get update/);
  const unknownPinned = parseSpec({ ...specToJson(unknown), package_version: '6.1.190-1' }, F);
  isConfigErrorOn(t, await catchAsync(ensureKernel(unknownPinned, opts)), 'package', /has no linux-image-0\.0\.0-nonexistent-unsigned=6\.1\.190-1.*apt-get update/);
  const badVersion = parseSpec({ ...specToJson(spec), package_version: '6.1.190-99' }, F);
  isConfigErrorOn(t, await catchAsync(ensureKernel(badVersion, opts)), 'package_version', /has no linux-image-6\.1\.0-54-cloud-amd64-unsigned=6\.1\.190-99; nearest there: linux-image-6\.1\.0-54-cloud-amd64-unsigned=6\.1\.190-1/);
});
