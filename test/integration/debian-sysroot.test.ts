// A Debian root with a suite's own gcc-N (real: apt, the mirror, chroot;
// no kernel build): made from apt's dependency closure without debootstrap,
// cached, and entered without a shell string; kbuild's tools are in it (awk
// through mawk, sh, make) and it sees a /proc of its own (objtool reads it).
// Uses the lockstep cache: the first run downloads ~70 MB.

import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { ensureDebianSysroot, inSysroot } from '../../src/kernels/obtain/debian-sysroot.ts';

t.test("trixie's gcc-14 in a Debian root: runs there, with kbuild's tools and a /proc", async (t) => {
  const s = await ensureDebianSysroot('gcc-14', { cacheDir: defaultCacheDir(), log: (m) => t.comment(m) });
  t.equal(s.suite, 'trixie', 'the oldest suite carrying gcc-14');
  t.match(s.cc_package, /^gcc-14=14\./);
  t.match((await inSysroot(s, ['gcc-14', '--version'])).stdout, /^gcc-14 \(Debian 14\.[^)]*\) 14\./);
  t.match((await inSysroot(s, ['make', '--version'])).stdout, /^GNU Make 4\./);
  t.equal((await inSysroot(s, ['awk', 'BEGIN { print 6 * 7 }'])).stdout.trim(), '42');
  t.match((await inSysroot(s, ['cat', '/proc/self/limits'])).stdout, /Max stack size/);
  t.equal((await inSysroot(s, ['sh', '-c', 'echo ok > /dev/null && echo done'])).stdout.trim(), 'done', '/dev/null is a device it can write');
  t.ok(existsSync(join(s.root, 'build')), 'builds go under /build');
  // a second call reuses the cached root
  t.equal((await ensureDebianSysroot('gcc-14', { cacheDir: defaultCacheDir(), log: () => {} })).root, s.root);
});

t.test('a compiler no suite carries is an error naming the suites tried', async (t) => {
  await t.rejects(ensureDebianSysroot('gcc-99', { cacheDir: defaultCacheDir(), log: () => {} }), /no Debian suite of trixie, forky, sid carries gcc-99/);
});
