// Source-kernel build speed: a cold build of the 6.1 base (fresh cache, fresh
// ccache: unpack + configure + full build), each extra variant on the shared
// object tree (recompile core.c + relink), and a warm re-run (cache hits, each
// with its bzImage hash check). Prints a table. Measured here, never asserted
// in tests.
//
//   node --import tsx bench/build.ts [--cache DIR] [--keep] [--kernels id,..]
//   (npm run bench:build)
//
// Without --cache it works in a fresh temporary cache with its own ccache, so
// the first build is really cold (10-30 min on 2 busy cores).

import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureKernel } from '../src/kernels/artifact.ts';
import { builtinSpecs, type SourceSpec } from '../src/kernels/spec.ts';

const { values: args } = parseArgs({ options: { cache: { type: 'string' }, keep: { type: 'boolean' }, kernels: { type: 'string' } } });
const ids = args.kernels?.split(',') ?? ['current-6.1', 'pre-fix', 'fix-1', 'fix-4', 'fix-5', 'remmap-charge'];
const all = (await builtinSpecs()).filter((s): s is SourceSpec => s.kind === 'source');
const specs = ids.map((id) => {
  const s = all.find((x) => x.id === id);
  if (!s) throw new Error(`no source kernel ${id}`);
  return s;
});

const cacheDir = args.cache ? resolve(args.cache) : await mkdtemp(join(tmpdir(), 'lockstep-bench-build-'));
// The build uses <cacheDir>/ccache unless CCACHE_DIR says otherwise: a fresh cache dir is a cold ccache.
if (!args.cache) delete process.env.CCACHE_DIR;
const rows: [string, string, string, string][] = [];
const t = (ms: number) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);

try {
  console.error(`bench:build: cache ${cacheDir}, ${cpus().length} CPUs, load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (const [i, s] of specs.entries()) {
    const t0 = Date.now();
    const a = await ensureKernel(s, { cacheDir, log: (m) => console.error(`[${s.id}] ${m}`) });
    const phase = a.cached ? 'cached already' : i === 0 ? 'cold base build' : 'extra variant';
    rows.push([phase, s.id, t(Date.now() - t0), `${a.release ?? ''} ${a.sha256!.slice(0, 12)}`]);
  }
  for (const s of specs) {
    const t0 = Date.now();
    const a = await ensureKernel(s, { cacheDir, log: (m) => console.error(`[${s.id}] ${m}`) });
    rows.push([a.cached ? 'warm re-run (cache hit)' : 'warm re-run (BUILT?!)', s.id, t(Date.now() - t0), 'hash verified']);
  }
} finally {
  if (!args.cache && !args.keep) await rm(cacheDir, { recursive: true, force: true });
}

const w = [24, 14, 9];
console.log(`| ${'phase'.padEnd(w[0]!)} | ${'kernel'.padEnd(w[1]!)} | ${'time'.padStart(w[2]!)} | note |`);
console.log(`|${'-'.repeat(w[0]! + 2)}|${'-'.repeat(w[1]! + 2)}|${'-'.repeat(w[2]! + 1)}:|------|`);
for (const [p, k, s, n] of rows) console.log(`| ${p.padEnd(w[0]!)} | ${k.padEnd(w[1]!)} | ${s.padStart(w[2]!)} | ${n} |`);
console.log(`\nload average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (${cpus().length} CPUs, shared)`);
