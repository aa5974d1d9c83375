// The kernel cache under stress, through real `lockstep run` processes:
// two runs at once on a cold cache fetch the kernel once and both finish;
// a cached vmlinuz with flipped bytes is caught by its hash and fetched
// again, never booted.

import t from 'tap';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { sha256File } from '../../src/kernels/obtain/files.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import { cell, DEBIAN_ID, DEBIAN_SPEC, lockstep, OK_SCENARIO, readResults, runArgs, scenarioFile, specFile, tmp } from '../lib/faults-util.ts';

const dir = tmp('cache');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const deb = specFile(dir, 'debian.json', DEBIAN_SPEC);
const ok = scenarioFile(dir, OK_SCENARIO);
// the fetch's progress line (src/kernels/obtain/debian.ts): one per apt-get download
const FETCH = /fetching linux-image-\S+ (?:and \S+ \(its config\) )?from /g;

/** Files of a Debian cache dir that must not outlive a run: locks and staging dirs. */
const leftovers = (cache: string): string[] => readdirSync(join(cache, 'kernels', 'debian')).filter((n) => n.endsWith('.lock') || n.startsWith('.tmp-') || n.includes('.stale-'));

t.test('two runs at once on a cold cache: one download, both complete, the entry verifies', async (t) => {
  const cache = join(dir, 'cold');
  const runs = await Promise.all([0, 1].map((k) =>
    lockstep(runArgs({ specs: [deb], scenarios: [ok], out: join(dir, `r-cold-${k}`), progress: true, extra: ['--cache', cache, '--timeout', '120'] }))));
  for (const [k, r] of runs.entries()) {
    t.equal(r.code, 0, `run ${k} completes\n${r.stderr}`);
    t.equal(cell(readResults(join(dir, `r-cold-${k}`)), 'a-ok')?.verdict, 'MATCH');
  }
  const fetches = runs.map((r) => (r.stderr.match(FETCH) ?? []).length);
  t.same(fetches.sort(), [0, 1], `exactly one apt-get download between the two runs (${fetches})`);
  const other = runs.find((r) => !(r.stderr.match(FETCH) ?? []).length)!;
  t.comment(/waiting for another lockstep/.test(other.stderr) ? 'the other run waited on the lock' : 'the other run found the entry already published');
  const entries = readdirSync(join(cache, 'kernels', 'debian')).filter((n) => !n.startsWith('.') && !n.endsWith('.lock'));
  t.equal(entries.length, 1);
  const entry = join(cache, 'kernels', 'debian', entries[0]);
  const meta = JSON.parse(readFileSync(join(entry, 'meta.json'), 'utf8')) as { vmlinuz_sha256: string };
  t.equal(await sha256File(join(entry, 'vmlinuz')), meta.vmlinuz_sha256, 'the cached vmlinuz matches its recorded hash');
  t.same(leftovers(cache), [], 'no lock or staging dir left');
  for (const k of [0, 1]) {
    const res = readResults(join(dir, `r-cold-${k}`)) as unknown as { kernels: { artifact_sha256: string }[] };
    t.equal(res.kernels[0].artifact_sha256, meta.vmlinuz_sha256, `run ${k} booted the verified image`);
  }
});

t.test('a cached vmlinuz with flipped bytes: detected by hash, fetched again, never booted', async (t) => {
  const good = await ensureKernel(parseSpec(DEBIAN_SPEC, 'test'), { cacheDir: defaultCacheDir(), log: () => {} });
  const goodSha = good.sha256!;
  const cache = join(dir, 'corrupt');
  const src = String(good.meta.cache_entry);
  const entry = join(cache, 'kernels', 'debian', src.split('/').pop()!);
  cpSync(src, entry, { recursive: true });
  // Flip bytes inside the compressed payload: booting this image would stop in the decompressor.
  const img = readFileSync(join(entry, 'vmlinuz'));
  const start = ((img[0x1f1] || 4) + 1) * 512 + img.readUInt32LE(0x248) + 100_000;
  for (let k = start; k < start + 64; k++) img[k] ^= 0x5a;
  writeFileSync(join(entry, 'vmlinuz'), img);
  t.not(await sha256File(join(entry, 'vmlinuz')), goodSha);

  const out = join(dir, 'r-corrupt');
  const r = await lockstep(runArgs({ specs: [deb], scenarios: [ok], out, progress: true, extra: ['--cache', cache, '--timeout', '120'] }));
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, new RegExp(`\\[${DEBIAN_ID}\\] cache entry for \\S+ is corrupt \\(vmlinuz sha256 [0-9a-f]{64} != recorded ${goodSha}\\); deleting it and fetching again`));
  t.equal((r.stderr.match(FETCH) ?? []).length, 1, 'fetched again');
  t.ok(r.stderr.indexOf('is corrupt') < r.stderr.search(/a-ok=MATCH/), 'caught before the boot');
  t.equal(await sha256File(join(entry, 'vmlinuz')), goodSha, 'the entry holds the good image again');
  const res = readResults(out) as unknown as { kernels: { artifact_sha256: string }[]; cells: { verdict: string }[] };
  t.equal(res.kernels[0].artifact_sha256, goodSha, 'the booted artifact is the good one');
  t.equal(cell(readResults(out), 'a-ok')?.verdict, 'MATCH', 'the boot ran the scenario (the damaged image could not have)');
  t.notMatch(readFileSync(join(out, 'logs', `${DEBIAN_ID}@2cpu`, 'console.log'), 'utf8'), /Decoding failed|System halted/);
  t.same(leftovers(cache), []);
});
