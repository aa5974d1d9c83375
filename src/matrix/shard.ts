// Sharding a matrix over CI runners, and joining the shards again. Pure.
//
// The unit of work is a group (one kernel x one CPU count = one boot), so a
// boot is never split. Assignment depends only on the set of groups, never on
// the order kernels or scenarios were listed or on when groups finish: groups
// are sorted by estimated cost (then key) and each goes to the least loaded
// shard (lowest index on ties), the classic longest-processing-time greedy.

import { createHash } from 'node:crypto';
import { canonicalJson } from '../scenario/load.ts';
import { ConfigError } from '../util/errors.ts';
import type { CellResult, Results } from '../results/schema.ts';
import type { PlannedGroup } from './plan.ts';

export interface ShardSpec { index: number; count: number }

/** "i/n" with 1 <= i <= n. */
export function parseShard(text: string, where = 'command line', field = '--shard'): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const fix = 'pass --shard I/N with 1 <= I <= N, e.g. --shard 2/4';
  if (!m) throw new ConfigError(where, field, `${JSON.stringify(text)} is not I/N`, fix);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > 1000 || index < 1 || index > count) throw new ConfigError(where, field, `${JSON.stringify(text)}: need 1 <= I <= N <= 1000`, fix);
  return { index, count };
}

/** The matrix's identity: kernel ids and scenario (id, content hash), order-independent. */
export function matrixIdentity(kernels: readonly string[], scenarios: readonly { id: string; hash: string }[]): { hash: string; kernels: string[]; scenarios: string[] } {
  const k = [...kernels].sort();
  const s = [...scenarios].map((x) => `${x.id}@${x.hash}`).sort();
  return { hash: createHash('sha256').update(canonicalJson({ kernels: k, scenarios: s })).digest('hex'), kernels: [...kernels], scenarios: scenarios.map((x) => x.id) };
}

/**
 * Rough relative cost of a group, in "seconds": a VM boot under TCG grows
 * with its vCPUs; each scenario and op adds a little. Only the ranking
 * matters, so it need not be accurate.
 */
export function groupCost(g: Pick<PlannedGroup, 'runtime' | 'cpus' | 'scenarios'>): number {
  const ops = g.scenarios.reduce((n, s) => n + s.ops.length, 0);
  const boot = g.runtime === 'host' ? 0 : 2 + 0.7 * g.cpus;
  return boot + 0.5 * g.scenarios.length + 0.01 * ops;
}

/** Shard number (1-based) of every group key. */
export function assignShards<G extends Pick<PlannedGroup, 'key' | 'runtime' | 'cpus' | 'scenarios'>>(groups: readonly G[], count: number): Map<string, number> {
  const sorted = [...groups].map((g) => ({ key: g.key, cost: groupCost(g) }))
    .sort((a, b) => b.cost - a.cost || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const load = new Array<number>(count).fill(0);
  const out = new Map<string, number>();
  for (const g of sorted) {
    let best = 0;
    for (let i = 1; i < count; i++) if (load[i]! < load[best]!) best = i;
    load[best]! += g.cost;
    out.set(g.key, best + 1);
  }
  return out;
}

/** The groups of shard `s`, in their original order. */
export function shardGroups<G extends Pick<PlannedGroup, 'key' | 'runtime' | 'cpus' | 'scenarios'>>(groups: readonly G[], s: ShardSpec): G[] {
  const a = assignShards(groups, s.count);
  return groups.filter((g) => a.get(g.key) === s.index);
}

export interface ShardInput { path: string; results: Results }

const cellKey = (c: Pick<CellResult, 'kernel' | 'scenario'>): string => `${c.kernel}\0${c.scenario}`;

/**
 * Join shard results into one. Refuses shards of different matrices (matrix
 * hash), a results file without a matrix identity, and two shards holding the
 * same cell. The merge is complete only when every shard 1..n is present and
 * complete.
 */
export function mergeResults(inputs: readonly ShardInput[]): { merged: Results; warnings: string[] } {
  if (!inputs.length) throw new ConfigError('command line', 'A B ..', 'no results to merge', 'give the shard directories, e.g. `lockstep merge shard-1 shard-2 --out merged`');
  for (const i of inputs) {
    if (!i.results.matrix) {
      throw new ConfigError(i.path, 'matrix', 'has no matrix identity (written before sharding existed?)', 'merge only results written by `lockstep run` of this version');
    }
  }
  const first = inputs[0]!;
  const m0 = first.results.matrix!;
  for (const i of inputs.slice(1)) {
    const m = i.results.matrix!;
    if (m.hash !== m0.hash) {
      const kDiff = [...new Set([...m.kernels, ...m0.kernels])].filter((k) => m.kernels.includes(k) !== m0.kernels.includes(k));
      const sDiff = [...new Set([...m.scenarios, ...m0.scenarios])].filter((k) => m.scenarios.includes(k) !== m0.scenarios.includes(k));
      const why = kDiff.length || sDiff.length
        ? `kernels differing: ${kDiff.join(', ') || 'none'}; scenarios differing: ${sDiff.join(', ') || 'none'}`
        : 'same ids but different scenario contents';
      throw new ConfigError(i.path, 'matrix.hash', `is from a different matrix than ${first.path} (${m.hash.slice(0, 12)} vs ${m0.hash.slice(0, 12)}: ${why})`,
        'merge only shards of one `lockstep run --shard I/N` invocation set (same kernels, same scenarios)');
    }
  }
  const owner = new Map<string, string>();
  const cells: CellResult[] = [];
  for (const i of inputs) {
    for (const c of i.results.cells) {
      const prev = owner.get(cellKey(c));
      if (prev !== undefined) {
        throw new ConfigError(i.path, 'cells', `cell ${c.kernel} x ${c.scenario} is also in ${prev}`,
          'each shard must be a different --shard I/N of the same N; do not merge a shard twice or a whole run with a shard');
      }
      owner.set(cellKey(c), i.path);
      cells.push(c);
    }
  }
  const warnings: string[] = [];
  const counts = new Set(inputs.map((i) => i.results.shard?.count ?? 1));
  const seenShards = new Set(inputs.map((i) => i.results.shard?.index ?? 1));
  let covered = counts.size === 1;
  if (counts.size > 1) warnings.push(`shards of different counts (${[...counts].join(', ')}): merged anyway, cells do not overlap`);
  else {
    const n = [...counts][0]!;
    const missing = Array.from({ length: n }, (_, k) => k + 1).filter((k) => !seenShards.has(k));
    if (missing.length) { covered = false; warnings.push(`missing shard(s) ${missing.map((k) => `${k}/${n}`).join(', ')}: the merged results are incomplete`); }
  }
  const incomplete = inputs.filter((i) => !i.results.complete);
  for (const i of incomplete) warnings.push(`${i.path} is an incomplete (interrupted) run`);

  const order = m0.kernels;
  const kernels = new Map<string, Results['kernels'][number]>();
  for (const i of inputs) for (const k of i.results.kernels) if (!kernels.has(k.id)) kernels.set(k.id, k);
  const rank = (id: string): number => { const r = order.indexOf(id); return r < 0 ? order.length : r; };
  cells.sort((a, b) => rank(a.kernel) - rank(b.kernel) || (a.kernel < b.kernel ? -1 : a.kernel > b.kernel ? 1 : 0) || (a.scenario < b.scenario ? -1 : a.scenario > b.scenario ? 1 : 0));
  const times = inputs.map((i) => i.results.started_at).sort();
  const ends = inputs.map((i) => i.results.finished_at).filter((x): x is string => Boolean(x)).sort();
  const merged: Results = {
    schema: first.results.schema,
    lockstep_version: first.results.lockstep_version,
    started_at: times[0]!,
    finished_at: ends.at(-1),
    complete: covered && !incomplete.length,
    host: first.results.host,
    kernels: [...kernels.values()].sort((a, b) => rank(a.id) - rank(b.id)),
    scenarios: first.results.scenarios,
    matrix: m0,
    merged_from: inputs.map((i) => ({ path: i.path, shard: i.results.shard ? { index: i.results.shard.index, count: i.results.shard.count } : null, host: i.results.host, started_at: i.results.started_at })),
    cells,
  };
  return { merged, warnings };
}
