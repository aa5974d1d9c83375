// The test tiers themselves: every test file is in exactly one tier folder,
// unit files never reach the real runners, and the nightly's integration
// shards (test/lib/tier-files.ts) cover every file exactly once.

import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_WEIGHT_S, fileWeight, parseShardArg, shardFiles, TIERS, tierFiles } from '../lib/tier-files.ts';

const ROOT = join(import.meta.dirname, '../..');

t.test('every test file is in exactly one tier; none is left at the top of test/', (t) => {
  t.same(readdirSync(join(ROOT, 'test')).filter((f) => f.endsWith('.test.ts')), [], 'no test/*.test.ts');
  const byName = new Map<string, string[]>();
  for (const tier of TIERS) {
    const files = tierFiles(tier, ROOT);
    t.ok(files.length > 0, `${tier} has test files`);
    for (const f of files) byName.set(f, [...(byName.get(f) ?? []), tier]);
  }
  for (const [f, tiers] of byName) t.equal(tiers.length, 1, `${f} in one tier`);
  t.end();
});

t.test('unit files never import what boots or builds', (t) => {
  // Modules whose import means real work: the matrix executor (boots, host
  // runs, containers), the shared smoke run, the kernel history tree (builds),
  // the Debian archive fetcher.
  const real = [/src\/matrix\/run\.ts'/, /lib\/smoke-run\.ts'/, /lib\/bisect-tree\.ts'/, /lib\/debian-archive\.ts'/];
  for (const f of tierFiles('unit', ROOT)) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    const imports = text.split('\n').filter((l) => /^import |await import\(/.test(l.trim()));
    const hits = real.filter((re) => imports.some((l) => re.test(l)));
    t.same(hits.map(String), [], `${f} imports nothing real`);
  }
  t.end();
});

t.test('integration shards: every file in exactly one shard, independent of list order; bad shard values refused', (t) => {
  const files = tierFiles('integration', ROOT);
  for (const n of [1, 2, 3, 4, files.length, files.length + 2]) {
    const shards = Array.from({ length: n }, (_, i) => shardFiles(files, i + 1, n, fileWeight));
    t.same(shards.flat().sort(), [...files].sort(), `${n} shards: every file once`);
    const reversed = Array.from({ length: n }, (_, i) => shardFiles([...files].reverse(), i + 1, n, fileWeight));
    t.same(reversed, shards, `${n} shards: the same split for any input order`);
  }
  // balance: heaviest first onto the lightest shard
  const w = (f: string) => ({ a: 10, b: 6, c: 5, d: 4 } as Record<string, number>)[f]!;
  t.same([1, 2].map((i) => shardFiles(['a', 'b', 'c', 'd'], i, 2, w)), [['a', 'd'], ['b', 'c']]);
  t.equal(fileWeight('test/integration/virtme.test.ts'), 1033);
  t.equal(fileWeight('test/integration/not-measured.test.ts'), DEFAULT_WEIGHT_S);
  t.same(parseShardArg('2/3'), { index: 2, count: 3 });
  for (const bad of ['0/3', '4/3', '1/0', '1', 'a/b', '-1/2', '1/3 ']) t.throws(() => parseShardArg(bad), { message: /expected i\/n with 1 <= i <= n/ }, bad);
  t.end();
});
