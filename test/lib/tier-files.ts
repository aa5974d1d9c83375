// The test files of one tier, and the slice of them one CI shard runs.
// tap 21 has no --shard option, so the nightly's integration jobs pass each
// shard its own file list:
//   node --import tsx test/lib/tier-files.ts integration 2/3
// prints shard 2 of 3 of test/integration/*.test.ts, one path a line.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The tiers, each a folder under test/. */
export const TIERS = ['unit', 'smoke', 'integration'] as const;
export type Tier = (typeof TIERS)[number];

/**
 * Seconds a file took in the suite measured with an empty cache (README "Tests",
 * 30 November 2026), used only to balance shards; a file not listed weighs
 * DEFAULT_WEIGHT_S. A wrong weight makes shards uneven, never drops a file.
 */
export const WEIGHT_S: Readonly<Record<string, number>> = {
  'virtme.test.ts': 1033, 'build.test.ts': 529, 'aux-pmu.test.ts': 484, 'oldtree.test.ts': 475,
  'arm64.test.ts': 447, 'bisect-git.test.ts': 283, 'classify.test.ts': 281, 'creproducer.test.ts': 250, 'kselftest.test.ts': 100, 'repro-guest.test.ts': 450, 'kselftest-guest.test.ts': 30,
  // split from virtme.test.ts on 7 December 2026 (whose 1033 s included it): 150 s then, the cache warm
  'virtme-faults.test.ts': 150,
};
export const DEFAULT_WEIGHT_S = 120;

/** test/<tier>/*.test.ts, repo-relative, sorted by name (independent of directory order). */
export function tierFiles(tier: Tier, root = ROOT): string[] {
  return readdirSync(join(root, 'test', tier)).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${tier}/${f}`);
}

/**
 * Parse "i/n" (1 <= i <= n). Throws an Error naming the value and the form
 * expected. Same form as `lockstep run --shard`.
 */
export function parseShardArg(s: string): { index: number; count: number } {
  const m = /^([1-9]\d*)\/([1-9]\d*)$/.exec(s);
  if (!m || Number(m[1]) > Number(m[2])) throw new Error(`shard "${s}": expected i/n with 1 <= i <= n, e.g. 1/3`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/**
 * Split files over `count` shards: heaviest first, each onto the lightest
 * shard so far (ties: the lower shard; equal weights: by name). Every file is
 * in exactly one shard; the result does not depend on the input order.
 * Returns the files of shard `index` (1-based), sorted by name.
 */
export function shardFiles(files: readonly string[], index: number, count: number, weight: (f: string) => number): string[] {
  const load = Array.from({ length: count }, () => 0);
  const shards: string[][] = Array.from({ length: count }, () => []);
  const order = [...new Set(files)].sort((a, b) => weight(b) - weight(a) || (a < b ? -1 : a > b ? 1 : 0));
  for (const f of order) {
    const k = load.indexOf(Math.min(...load));
    load[k]! += weight(f);
    shards[k]!.push(f);
  }
  return shards[index - 1]!.sort();
}

/** The weight of a repo-relative test path from WEIGHT_S by its file name. */
export const fileWeight = (f: string): number => WEIGHT_S[f.slice(f.lastIndexOf('/') + 1)] ?? DEFAULT_WEIGHT_S;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [tier, shard] = process.argv.slice(2);
  if (!TIERS.includes(tier as Tier)) {
    process.stderr.write(`tier-files: tier "${tier}": expected one of ${TIERS.join(', ')}\n`);
    process.exit(2);
  }
  const files = tierFiles(tier as Tier);
  try {
    const { index, count } = shard ? parseShardArg(shard) : { index: 1, count: 1 };
    process.stdout.write(shardFiles(files, index, count, fileWeight).map((f) => `${f}\n`).join(''));
  } catch (e) {
    process.stderr.write(`tier-files: ${(e as Error).message}\n`);
    process.exit(2);
  }
}
