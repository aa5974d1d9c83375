// What `lockstep simulate` prints: the op-by-op table of one logic, and the
// per-logic summary of `--logic all` (refused calls, final VmPin, probe
// headroom, and the op where logics part). Pure: strings in, strings out.

import type { CompiledScenario, Op } from '../scenario/ops.ts';
import { DEFAULT_PAGE_KB, type ExpectedOp, type Logic, PROBE_MAX_PAGES, logicLabel } from '../model/index.ts';

/**
 * One op as a compact, space-free word: its JSON without braces and quotes,
 * e.g. `map,buf:a,cpu:0,data_pages:2`. Never cut (the table's column is as
 * wide as its longest op).
 */
export const describeOp = (op: Op): string => JSON.stringify(op).replace(/[{}"]/g, '').replace(/^op:/, '');

/** One refused op: where and why. */
export interface Refusal {
  /** op index in the compiled script (0-based, as in the op table) */
  i: number;
  op: Op['op'];
  /** for a `map`: its call number among the script's `map` ops (1-based; `#5` in table.md) */
  call?: number;
  errno: ExpectedOp['errno'];
}

/** A probe's predicted headroom. */
export interface ProbePoint {
  i: number;
  /** fresh 1-page maps that did not spill (pages), PROBE_MAX_PAGES when it stopped without a spill */
  headroom: number;
  /** false: even the spilling map was refused (EPERM) */
  ok: boolean;
}

/** What one logic predicts for a whole scenario, in brief. */
export interface LogicSummary {
  logic: string;
  /** every op the logic predicts to fail, in op order */
  refused: Refusal[];
  /** call number of the first `map` refused with EPERM (as results' first_eperm), or null */
  first_eperm: number | null;
  /** the worker's mm->pinned_vm after the last op, in native pages and in kB (VmPin) */
  vmpin_pages: number;
  vmpin_kb: number;
  /** perf's per-user counter U after the last op (pages) */
  user_pages: number;
  probes: ProbePoint[];
  /** the worker's pinned_vm after each `map` op (pages), in call order */
  pinned: number[];
}

/**
 * Summarise `e` = simulate(s, logic) (one entry per op of `s`). `pageKb` is
 * the kernel's page size in kB (default 4) for VmPin in kB.
 * Throws RangeError when `e` does not have one entry per op.
 */
export function summarize(s: CompiledScenario, logic: Logic, e: readonly ExpectedOp[], pageKb = DEFAULT_PAGE_KB): LogicSummary {
  if (e.length !== s.ops.length) throw new RangeError(`${e.length} predictions for ${s.ops.length} ops of ${s.id}`);
  const refused: Refusal[] = [];
  const probes: ProbePoint[] = [];
  const pinned: number[] = [];
  let call = 0;
  s.ops.forEach((op, i) => {
    const x = e[i]!;
    if (op.op === 'map') { call++; pinned.push(x.pinned); }
    if (!x.ok) refused.push({ i, op: op.op, ...(op.op === 'map' ? { call } : {}), errno: x.errno });
    if (op.op === 'probe') probes.push({ i, headroom: x.headroom ?? 0, ok: x.ok });
  });
  const last = e[e.length - 1];
  const vmpin = last?.pinned ?? 0;
  return {
    logic: logicLabel(logic),
    refused,
    first_eperm: refused.find((r) => r.op === 'map' && r.errno === 'EPERM')?.call ?? null,
    vmpin_pages: vmpin,
    vmpin_kb: vmpin * pageKb,
    user_pages: last?.user ?? 0,
    probes,
    pinned,
  };
}

/**
 * Refusals as runs: consecutive `map` calls with one errno become `#a-#b`
 * (call numbers, with their op indices), other ops consecutive in the script
 * `ops 4-6`; runs of one op and errno share a head:
 * "map EPERM #1-#12 (ops 3-14), #14-#24 (ops 18-28); probe EPERM op 72".
 * "none" when nothing is refused.
 */
export function refusedText(refused: readonly Refusal[]): string {
  if (!refused.length) return 'none';
  const runs: { first: Refusal; last: Refusal }[] = [];
  for (const r of refused) {
    const run = runs[runs.length - 1];
    const p = run?.last;
    const joins = p !== undefined && p.op === r.op && p.errno === r.errno &&
      (r.call !== undefined && p.call !== undefined ? r.call === p.call + 1 : r.i === p.i + 1);
    if (run && joins) run.last = r;
    else runs.push({ first: r, last: r });
  }
  const span = (a: number, b: number, pre: string): string => (a === b ? `${pre}${a}` : `${pre}${a}-${pre}${b}`);
  const parts: { head: string; items: string[] }[] = [];
  for (const { first, last } of runs) {
    const head = `${first.op} ${first.errno}`;
    const ops = first.i === last.i ? `op ${first.i}` : `ops ${first.i}-${last.i}`;
    const item = first.call !== undefined ? `${span(first.call, last.call!, '#')} (${ops})` : ops;
    const prev = parts[parts.length - 1];
    if (prev?.head === head) prev.items.push(item);
    else parts.push({ head, items: [item] });
  }
  return parts.map((p) => `${p.head} ${p.items.join(', ')}`).join('; ');
}

/** Probe headroom as "op 0: 258, op 3: 171 (EPERM)"; ">=262144" (PROBE_MAX_PAGES) when the probe stopped without a spill. */
export function probesText(probes: readonly ProbePoint[]): string {
  if (!probes.length) return 'no probe';
  return probes.map((p) => `op ${p.i}: ${p.headroom >= PROBE_MAX_PAGES ? `>=${PROBE_MAX_PAGES}` : p.headroom}${p.ok ? '' : ' (EPERM)'}`).join(', ');
}

/**
 * The observable fields of a prediction, by name: the result (ok or the
 * errno) and every other field but `check` (the kernel's intermediate
 * values, which differ between logics that observe the same). Generic, so a
 * field the model adds is compared too.
 */
function observed(x: ExpectedOp | undefined): Map<string, string> {
  const m = new Map<string, string>();
  if (x === undefined) return m;
  m.set('result', x.ok ? 'ok' : x.errno);
  for (const k of Object.keys(x).sort()) {
    if (k === 'ok' || k === 'errno' || k === 'check') continue;
    const val = (x as unknown as Record<string, unknown>)[k];
    if (val !== undefined) m.set(k, JSON.stringify(val));
  }
  return m;
}

/** The fields of two predictions of one op that differ, as "user 90 (V0/shared: 3)"; the result bare: "ok (V0/shared: ENOMEM)". */
function differences(a: ExpectedOp, b: ExpectedOp, bLabel: string): string {
  const oa = observed(a);
  const ob = observed(b);
  const keys = [...new Set([...oa.keys(), ...ob.keys()])].filter((k) => oa.get(k) !== ob.get(k));
  return keys.map((k) => `${k === 'result' ? '' : `${k} `}${oa.get(k) ?? '-'} (${bLabel}: ${ob.get(k) ?? '-'})`).join(', ');
}

/** Index of the first op where two prediction lists differ in an observable field (not `check`), or null when they agree. */
export function firstDifference(a: readonly ExpectedOp[], b: readonly ExpectedOp[]): number | null {
  return firstKeyDifference(a.map(observedKey), b.map(observedKey));
}

/** One op's observable fields as one comparable string. */
function observedKey(x: ExpectedOp | undefined): string {
  if (x === undefined) return '';
  let out = x.ok ? 'ok' : String(x.errno);
  const rec = x as unknown as Record<string, unknown>;
  for (const k of Object.keys(x).sort()) {
    if (k === 'ok' || k === 'errno' || k === 'check' || rec[k] === undefined) continue;
    const val = rec[k];
    out += `|${k}=${typeof val === 'number' ? val : JSON.stringify(val)}`;
  }
  return out;
}

/** firstDifference over precomputed observedKey lists. */
function firstKeyDifference(a: readonly string[], b: readonly string[]): number | null {
  const n = Math.max(a.length, b.length);
  const none = observedKey(undefined);
  for (let i = 0; i < n; i++) if ((a[i] ?? none) !== (b[i] ?? none)) return i;
  return null;
}

/** Logics that predict the same for every op, with where the group parts from an earlier one. */
export interface LogicGroup {
  logics: string[];
  summary: LogicSummary;
  /** null for the first group; else the earlier group this one follows longest and the op where they part */
  parts: { from: string; i: number; what: string; how: string } | null;
}

/** The `--logic all` view of one scenario. */
export interface AllView {
  scenario: string;
  /** the first op where any two logics predict differently (null: all the same) */
  part_op: number | null;
  groups: LogicGroup[];
}

/**
 * Compare the predictions of several logics for `s` (`runs`: each logic with
 * simulate(s, logic)). Logics with identical predictions for every op form one
 * group (in `runs` order); each later group says which earlier group it
 * follows longest and at which op it parts from it, with the fields that
 * differ there.
 */
export function compareLogics(s: CompiledScenario, runs: readonly { logic: Logic; e: readonly ExpectedOp[] }[], pageKb = DEFAULT_PAGE_KB): AllView {
  // each prediction's observable keys computed once (200,000 ops x 14 logics stays fast)
  const groups: (LogicGroup & { e: readonly ExpectedOp[]; keys: string[] })[] = [];
  for (const r of runs) {
    const keys = r.e.map(observedKey);
    const same = groups.find((g) => firstKeyDifference(g.keys, keys) === null);
    if (same) { same.logics.push(logicLabel(r.logic)); continue; }
    let parts: LogicGroup['parts'] = null;
    for (const g of groups) {
      const i = firstKeyDifference(g.keys, keys)!;
      if (parts === null || i > parts.i) {
        parts = { from: g.logics[0]!, i, what: s.ops[i] ? describeOp(s.ops[i]!) : '', how: differences(r.e[i]!, g.e[i]!, g.logics[0]!) };
      }
    }
    groups.push({ logics: [logicLabel(r.logic)], summary: summarize(s, r.logic, r.e, pageKb), parts, e: r.e, keys });
  }
  const partOp = groups.slice(1).reduce<number | null>((m, g) => (m === null || g.parts!.i < m ? g.parts!.i : m), null);
  return { scenario: s.id, part_op: partOp, groups: groups.map(({ e: _e, keys: _k, ...g }) => g) };
}

/** The scenario's starting conditions in one line. */
export const conditionsText = (s: CompiledScenario): string =>
  `${s.cpus} CPUs, mlock_kb ${s.mlock_kb}, RLIMIT_MEMLOCK ${s.rlimit_kb === null ? 'unlimited' : `${s.rlimit_kb} kB`}, CAP_IPC_LOCK ${s.cap_ipc_lock ? 'kept' : 'dropped'}, paranoid ${s.paranoid}`;

/** The text of `--logic all`: a header, where logics part, then one block per group of identical logics. */
export function renderAll(s: CompiledScenario, v: AllView, pageKb = DEFAULT_PAGE_KB): string[] {
  const n = v.groups.reduce((k, g) => k + g.logics.length, 0);
  const out = [`${s.id} under ${n} logics: ${conditionsText(s)}; ${s.ops.length} ops, pages of ${pageKb} kB`];
  if (v.part_op === null) out.push(`every logic predicts the same for every op`);
  else out.push(`logics part at op ${v.part_op} (${describeOp(s.ops[v.part_op]!)}); ${v.groups.length} different predictions`);
  for (const g of v.groups) {
    const m = g.summary;
    out.push('');
    out.push(`${g.logics.join(' ')}${g.logics.length > 1 ? `  (${g.logics.length} logics, same prediction)` : ''}`);
    if (g.parts) out.push(`  parts from ${g.parts.from} at op ${g.parts.i} (${g.parts.what}): ${g.parts.how}`);
    out.push(`  refused:        ${refusedText(m.refused)}`);
    out.push(`  final pinned:   pinned_vm ${m.vmpin_pages} pages = VmPin ${m.vmpin_kb} kB; per-user counter U ${m.user_pages} pages`);
    out.push(`  probe headroom: ${probesText(m.probes)}`);
  }
  return out;
}

/**
 * The op-by-op table of one logic, then a summary line (refused calls, final
 * VmPin, probe headroom). The `what` column is as wide as its longest op.
 */
export function renderOps(s: CompiledScenario, logic: Logic, e: readonly ExpectedOp[], pageKb = DEFAULT_PAGE_KB): string[] {
  const whats = s.ops.map(describeOp);
  // a loop, not Math.max(...whats): a spread of 200,000 ops overflows the stack (issue 26)
  const w = whats.reduce((m, x) => Math.max(m, x.length), 4);
  const out = [`${s.id} under ${logicLabel(logic)}: ${conditionsText(s)}`];
  out.push(` op  ${'what'.padEnd(w)} result   pinned   user   check (user_locked extra pinned+extra / limit)`);
  s.ops.forEach((_op, i) => {
    const x = e[i]!;
    const chk = x.check ? `${x.check.userLocked} ${x.check.extra} ${x.check.locked} / ${x.check.lockLimit}` : x.headroom !== undefined ? `headroom ${x.headroom}` : '';
    out.push(`${String(i).padStart(3)}  ${whats[i]!.padEnd(w)} ${(x.ok ? 'ok' : x.errno).padEnd(8)} ${String(x.pinned).padStart(6)} ${String(x.user).padStart(6)}   ${chk}`.trimEnd());
  });
  const m = summarize(s, logic, e, pageKb);
  out.push(`refused: ${refusedText(m.refused)}; final pinned_vm ${m.vmpin_pages} pages = VmPin ${m.vmpin_kb} kB, U ${m.user_pages} pages; probe headroom: ${probesText(m.probes)}`);
  return out;
}
