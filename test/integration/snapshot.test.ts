// Issue 29: groups restore a saved guest instead of booting. Real QEMU,
// real kernels, real snapshots in the real cache:
// - the smoke set (host + Debian 6.1.190 at 2 and 4 vCPUs, the base
//   recipe's five scenarios) gives the same verdict, first EPERM, VmPin
//   series and op results restored as booted (--no-snapshot);
// - two root scenarios in a row on a V4 kernel (remmap-charge: root_user
//   keeps 27 leaked pages) both restore the same snapshot and neither sees
//   the other's leak;
// - a damaged snapshot is detected, dropped and saved again, and the run
//   after that restores the new one.

import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { type Cell, lockstep, readResults, type ResultsJson, scenarioFile, tmp } from '../lib/faults-util.ts';
import { BASE_RECIPE, recipeKernelFlags } from '../lib/smoke-run.ts';

const dir = tmp('snapshot');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Snap { how: string; key: string; sha256: string }
const snapOf = (c: Cell | undefined): Snap | null | undefined => c?.vm_snapshot as Snap | null | undefined;
const vmCells = (r: ResultsJson): Cell[] => r.cells.filter((c) => c.runtime === 'qemu' && c.verdict !== 'SKIP');

async function run(name: string, args: string[]): Promise<{ r: ResultsJson; stderr: string; code: number | null }> {
  const out = join(dir, name);
  const p = await lockstep(['run', ...args, '--attempts', '1', '--out', out], { killAfterMs: 900_000 });
  return { r: readResults(out), stderr: p.stderr, code: p.code };
}

/** What a cell measured, for comparing two runs of it. */
const measuredOf = (c: Cell): unknown => ({
  verdict: c.verdict, first_eperm: c.first_eperm_measured, pinned: c.pinned_measured,
  ops: ((c.measured ?? []) as Record<string, unknown>[]).map((m) => [m.op, m.ok, m.errno, m.vmpin_kb, m.headroom ?? null]),
});

const smoke = [...recipeKernelFlags(BASE_RECIPE), '--scenarios', BASE_RECIPE.scenarios.join(','), '--cpus', '2,4'];

t.test('the smoke set: restored guests measure what booted ones do', async (t) => {
  const booted = await run('booted', [...smoke, '--no-snapshot']);
  t.equal(booted.code, 0, `booted run: exit 0\n${booted.stderr.slice(-2000)}`);
  t.ok(vmCells(booted.r).length >= 8, `${vmCells(booted.r).length} QEMU cells ran`);
  for (const c of vmCells(booted.r)) t.notOk(snapOf(c), `${c.kernel}@${c.scenario}: --no-snapshot records no snapshot`);
  await run('save', smoke); // saves what the cache lacks
  const restored = await run('restored', smoke);
  t.equal(restored.code, 0, `restored run: exit 0\n${restored.stderr.slice(-2000)}`);
  t.equal(restored.r.cells.length, booted.r.cells.length, 'same cells');
  for (const c of vmCells(restored.r)) t.equal(snapOf(c)?.how, 'restored', `${c.scenario} (${c.console_log}): restored`);
  const key = (c: Cell): string => `${c.kernel} ${c.scenario} ${c.console_log}`;
  const byKey = new Map(booted.r.cells.map((c) => [key(c), c]));
  for (const c of restored.r.cells) {
    const b = byKey.get(key(c));
    t.ok(b, `${key(c)} in both runs`);
    if (b) t.strictSame(measuredOf(c), measuredOf(b), `${key(c)}: same verdict, first EPERM, VmPin series and ops`);
  }
});

t.test('root scenarios restore the same snapshot and never see each other\'s root_user', async (t) => {
  const again = scenarioFile(dir, {
    id: 'root-record-2', description: 'root-record once more, right after it', cpus: 'any', uid: 'root',
    ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'remap', buf: 'a', count: 9 }, { op: 'unmap', buf: 'a' }, { op: 'probe' }, { op: 'exit', last: true }, { op: 'probe' }],
  });
  const args = ['--kernels', 'remmap-charge', '--scenarios', 'root-record,root-record-2', '--scenario-file', again];
  await run('root-save', args);
  const { r, code, stderr } = await run('root', args);
  t.equal(code, 0, `exit 0\n${stderr.slice(-2000)}`);
  const cells = ['root-record', 'root-record-2'].map((s) => r.cells.find((c) => c.scenario === s)!);
  const probes = (c: Cell): unknown[] => ((c.measured ?? []) as Record<string, unknown>[]).filter((m) => m.op === 'probe').map((m) => m.headroom);
  for (const c of cells) {
    t.equal(c.verdict, 'MATCH', `${c.scenario}: MATCH`);
    t.equal(snapOf(c)?.how, 'restored', `${c.scenario}: ran in a restored guest, no boot of its own`);
    t.strictSame(probes(c), [231, 231], `${c.scenario}: 27 pages leaked onto a fresh root_user, and kept`);
  }
  t.equal(snapOf(cells[0])?.sha256, snapOf(cells[1])?.sha256, 'both from the same snapshot');
  t.not(cells[0].console_log, cells[1].console_log, 'in two guests');
});

/** A run of remmap on Debian 6.1.190 and the cache files of the snapshot its cell used (null when it used none). */
async function savedEntry(name: string): Promise<{ snap: Snap; metaPath: string; statePath: string; meta: { file: string; sha256: string; bytes: number } } | null> {
  const first = await run(name, ['--kernels', 'debian-6.1.190', '--scenarios', 'remmap']);
  const snap = snapOf(first.r.cells[0]);
  if (!snap) return null;
  const root = join(process.env.LOCKSTEP_CACHE ?? defaultCacheDir(), 'snapshots');
  const slot = readdirSync(root).find((s) => readdirSync(join(root, s)).includes(`${snap.key}.json`));
  if (!slot) return null;
  const metaPath = join(root, slot, `${snap.key}.json`);
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { file: string; sha256: string; bytes: number };
  return { snap, metaPath, statePath: join(root, slot, meta.file), meta };
}

/** savedEntry(name), asserting on `t` that the cell recorded a snapshot whose meta and state file are in the cache. */
async function checkedEntry(t: Test, name: string): ReturnType<typeof savedEntry> {
  const entry = await savedEntry(name);
  t.ok(entry, 'the cell records its snapshot, and its meta is in the cache');
  if (entry) t.ok(existsSync(entry.statePath), 'and so is its state file');
  return entry;
}

t.test('a damaged snapshot is detected, dropped and saved again', async (t) => {
  const args = ['--kernels', 'debian-6.1.190', '--scenarios', 'remmap'];
  const entry = await checkedEntry(t, 'damage-1');
  if (!entry) return;
  const state = entry.statePath;
  const b = readFileSync(state);
  b[Math.floor(b.length / 2)] ^= 0x5a;
  writeFileSync(state, b);
  const second = await run('damage-2', args);
  t.equal(second.code, 0, 'the run goes on');
  t.match(second.stderr, /does not match its sha256 \(damaged or truncated\): dropped; booting instead/, 'says so');
  t.equal(second.r.cells[0].verdict, 'MATCH', 'and measures');
  t.equal(snapOf(second.r.cells[0])?.how, 'saved', 'booted and saved a new snapshot');
  t.not(snapOf(second.r.cells[0])?.sha256, undefined);
  const third = await run('damage-3', args);
  t.equal(snapOf(third.r.cells[0])?.how, 'restored', 'the next run restores the new one');
  t.equal(snapOf(third.r.cells[0])?.sha256, snapOf(second.r.cells[0])?.sha256, 'the one just saved');
});

t.test('a snapshot QEMU cannot load falls back to a boot, never a verdict', async (t) => {
  const args = ['--kernels', 'debian-6.1.190', '--scenarios', 'remmap'];
  const entry = await checkedEntry(t, 'unloadable-1');
  if (!entry) return;
  const { metaPath, meta, statePath: state } = entry;
  // a state file that passes its own check (its meta rewritten to match) but is not a QEMU migration stream
  const junk = Buffer.alloc(4096, 0x42);
  writeFileSync(state, junk);
  writeFileSync(metaPath, JSON.stringify({ ...meta, sha256: createHash('sha256').update(junk).digest('hex'), bytes: junk.length, checked_stat: undefined }));
  const second = await run('unloadable-2', args);
  t.equal(second.code, 0, `exit 0\n${second.stderr.slice(-1500)}`);
  t.match(second.stderr, /snapshot [0-9a-f]{16} did not restore \(.*\): dropped, booting instead/, 'says the restore failed and what it does');
  t.equal(second.r.cells[0].verdict, 'MATCH', 'the cell is measured, not an infrastructure failure');
  t.equal(snapOf(second.r.cells[0])?.how, 'saved', 'from a boot that saved a good snapshot');
});
