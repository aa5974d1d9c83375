// Tarballs whose entries escape their directory: the scanner (node-tar's
// parser) and our per-entry check in src/kernels/obtain/source/tarsafe.ts against archives written by real tools (GNU tar,
// Python's tarfile for the malicious ones), cross-checked with `tar -t`,
// and what GNU tar itself does with the same archive.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type TarEntry, tarEntries, tarEntryProblem, TarFormatError, tarProblems } from '../../src/kernels/obtain/source/tarsafe.ts';
import { lockstep, ROOT, specFile, tmp } from '../lib/faults-util.ts';

const dir = tmp('tar');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const scan = tarEntries;

// A tree shaped like a kernel's: long paths, relative symlinks inside the tree.
const tree = join(dir, 'linux-6.1');
const deep = join(tree, 'scripts', 'dtc', 'include-prefixes', 'x'.repeat(60), 'y'.repeat(60));
mkdirSync(deep, { recursive: true });
mkdirSync(join(tree, 'arch', 'arm', 'boot', 'dts'), { recursive: true });
writeFileSync(join(tree, 'Makefile'), 'VERSION = 6\n');
writeFileSync(join(deep, 'a-file-with-a-long-name-' + 'z'.repeat(80)), 'x'.repeat(1000));
symlinkSync('../../../arch/arm/boot/dts', join(tree, 'scripts', 'dtc', 'include-prefixes', 'arm'));
symlinkSync('Makefile', join(tree, 'Makefile.link'));

for (const format of ['gnu', 'pax', 'ustar'] as const) {
  t.test(`a clean tree packed by GNU tar (--format=${format}): every entry read, none refused`, async (t) => {
    const file = join(dir, `clean-${format}.tar`);
    // ustar cannot hold the 140-character file name: leave that one out there
    const args = ['-cf', file, `--format=${format}`, '-C', dir, ...(format === 'ustar' ? ['--exclude', 'a-file-with-*'] : []), 'linux-6.1'];
    execFileSync('tar', args);
    const data = readFileSync(file);
    const entries = await scan(data);
    const listed = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
    t.same(entries.map((e) => e.name.replace(/\/$/, '')), listed.map((n) => n.replace(/\/$/, '')), 'same names as tar -t, in order');
    t.same(entries.filter((e) => e.type === 'symlink').map((e) => e.link).sort(), ['../../../arch/arm/boot/dts', 'Makefile']);
    t.same(await tarProblems(data, 1), [], 'nothing refused (with --strip-components=1 as the build unpacks)');
    t.same(await tarProblems(data, 0), []);
    t.same((await scan(data, 37)).map((e) => e.name), entries.map((e) => e.name), 'chunking does not matter');
  });
}

t.test('a .tar.gz, decompressed by the caller, scans the same', async (t) => {
  const file = join(dir, 'clean.tar.gz');
  execFileSync('tar', ['-czf', file, '-C', dir, 'linux-6.1']);
  const entries = await scan(gunzipSync(readFileSync(file)), 4096);
  t.ok(entries.some((e) => e.name.endsWith('Makefile') && e.type === 'file'));
});

t.test('entries escaping the directory are refused, one reason each', async (t) => {
  const file = join(dir, 'evil.tar');
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'target'), 'target\n');
  // Python's tarfile writes what GNU tar would refuse to create.
  execFileSync('python3', ['-c', `
import tarfile, io, sys
out, outside = sys.argv[1], sys.argv[2]
def add(t, name, type=tarfile.REGTYPE, link=''):
    i = tarfile.TarInfo(name); i.type = type; i.linkname = link
    if type == tarfile.REGTYPE:
        i.size = 1; t.addfile(i, io.BytesIO(b'x'))
    else:
        t.addfile(i)
with tarfile.open(out, 'w', format=tarfile.GNU_FORMAT) as t:
    add(t, 'linux-x/Makefile')
    add(t, 'linux-x/../../escape-dotdot')
    add(t, outside + '/abs-escape')
    add(t, 'linux-x/lnk', tarfile.SYMTYPE, outside)
    add(t, 'linux-x/lnk/through-symlink')
    add(t, 'linux-x/rel', tarfile.SYMTYPE, '../../outside')
    add(t, 'linux-x/ok', tarfile.SYMTYPE, 'Makefile')
    add(t, 'linux-x/hl', tarfile.LNKTYPE, outside + '/target')
    add(t, 'linux-x/dev', tarfile.CHRTYPE)
    add(t, 'linux-x/' + 'd' * 150 + '/../../../long-escape')
`, file, outside]);
  const problems = await tarProblems(readFileSync(file), 1);
  t.same(problems, [
    'entry "linux-x/../../escape-dotdot" has a ".." component',
    `entry ${JSON.stringify(`${outside}/abs-escape`)} is an absolute path`,
    `symlink "linux-x/lnk" points at the absolute path ${JSON.stringify(outside)}`,
    'symlink "linux-x/rel" -> "../../outside" leads out of the tree',
    `hard link "linux-x/hl" points at ${JSON.stringify(`${outside}/target`)}, outside the tree`,
    'entry "linux-x/dev" is a device or fifo (a source tree has none)',
    `entry ${JSON.stringify(`${`linux-x/${'d'.repeat(150)}`.slice(0, 117)}...`)} has a ".." component`,
  ]);
  // "through-symlink" itself looks harmless; it is refused through its symlink above.
  // GNU tar, as src/kernels/build.ts runs it, refuses part of this and fails,
  // but leaves symlinks out of the tree behind: why the check comes first.
  const dest = join(dir, 'dest');
  mkdirSync(dest);
  let tarFailed = false;
  try { execFileSync('tar', ['-xf', file, '--strip-components=1', '--no-same-owner', '-C', dest], { stdio: 'pipe' }); } catch { tarFailed = true; }
  t.ok(tarFailed, 'GNU tar exits non-zero on this archive');
  t.same(readdirSync(outside), ['target'], 'nothing was written outside (GNU tar\'s own guards)');
  t.ok(existsSync(join(dest, 'lnk')), 'but GNU tar left a symlink pointing out of the tree');
});

t.test('entry checks one by one', async (t) => {
  const e = (name: string, type: TarEntry['type'] = 'file', link = ''): TarEntry => ({ name, type, link, size: 0 });
  t.equal(tarEntryProblem(e('linux/a/b.c')), null);
  t.equal(tarEntryProblem(e('./linux/a')), null);
  t.equal(tarEntryProblem(e('linux/a/..b')), null, '"..b" is a name, not ".."');
  t.match(tarEntryProblem(e('linux/\nx')), /control character/);
  t.match(tarEntryProblem(e('linux/fifo', 'fifo')), /device or fifo/);
  t.equal(tarEntryProblem(e('linux/a/b/l', 'symlink', '../../c')), null, 'to the tree root, still inside');
  t.match(tarEntryProblem(e('linux/a/b/l', 'symlink', '../../../c'), 1), /leads out of the tree/, 'with one component stripped, the root is linux/');
  t.equal(tarEntryProblem(e('linux/a/b/l', 'symlink', '../../../c'), 0), null, 'unstripped, linux/ is inside');
  t.equal(tarEntryProblem(e('linux/a/l', 'symlink', 'x/../../y'), 1), null);
  t.match(tarEntryProblem(e('linux/l', 'symlink', 'x/../../y'), 1), /leads out/);
  t.equal(tarEntryProblem(e('linux/h', 'hardlink', 'linux/Makefile')), null);
});

t.test('damaged archives: a TarFormatError, never anything else, never a hang', async (t) => {
  const good = readFileSync(join(dir, 'clean-gnu.tar'));
  await t.rejects(scan(good.subarray(0, 700)), { name: 'TarFormatError', message: /truncated/i }, 'truncated mid-entry');
  await t.rejects(scan(Buffer.from('not a tar archive at all'.repeat(40))), { name: 'TarFormatError' }, 'not a tar');
  let seed = 99;
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  let other = 0;
  let n = 0;
  for (; n < 2000; n++) {
    const b = Buffer.from(good);
    for (let k = 1 + rnd(8); k > 0; k--) b[rnd(Math.min(b.length, 4096))] = rnd(256);
    const cut = rnd(3) === 0 ? b.subarray(0, rnd(b.length)) : b;
    try { await scan(cut, 1 + rnd(600)); } catch (e) { if (!(e instanceof TarFormatError)) { other++; t.fail(String((e as Error).stack)); break; } }
  }
  t.equal(other, 0, `${n} damaged archives: only TarFormatError`);
});

t.test('a source kernel from a tarball with an escaping entry: exit 2 naming the field, nothing unpacked', async (t) => {
  // Served from loopback, as a tarball URL would be; built by Python's tarfile (GNU tar will not write "..").
  const evil = join(dir, 'evil-src.tar.gz');
  execFileSync('python3', ['-c', `
import tarfile, io
with tarfile.open(${JSON.stringify(evil)}, 'w:gz') as tf:
    for name, data in [('linux-6.1/Makefile', b'VERSION = 6\\n'), ('linux-6.1/../../escaped-by-lockstep-test', b'x')]:
        ti = tarfile.TarInfo(name); ti.size = len(data); tf.addfile(ti, io.BytesIO(data))
`]);
  const { createHash } = await import('node:crypto');
  const { createServer } = await import('node:http');
  const body = readFileSync(evil);
  const server = createServer((_req, res) => { res.end(body); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const specPath = specFile(dir, 'evil-spec.json', {
    id: 'evil-tarball', kind: 'source', version: '6.1.0', expect: 'V3',
    source: { tarball: `http://127.0.0.1:${port}/linux.tar.gz`, sha256: createHash('sha256').update(body).digest('hex') },
    config: join(ROOT, 'kernels', 'config', 'lockstep-guest.config'),
  });
  const cache = tmp('tar-cache');
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  const r = await lockstep(['kernels', 'build', 'evil-tarball', '--no-builtin-kernels', '--kernel-spec', specPath, '--cache', cache], { killAfterMs: 120_000 });
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /source\.tarball: .* is unsafe to unpack: entry ".*escaped-by-lockstep-test" has a "\.\." component\. Fix: /);
  t.equal(r.stderr.trim().split('\n').filter((l) => /^lockstep /.test(l)).length, 1, 'one error line');
  t.notOk(existsSync(join(cache, '..', 'escaped-by-lockstep-test')), 'nothing written outside');
});
