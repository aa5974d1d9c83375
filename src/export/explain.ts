// `lockstep explain`: for someone whose perf mmap() got EPERM, from the
// machine's numbers alone: the first refused call, the kernel's check values
// call by call (the layout of the incident's kprobe table,
// shared/incident.md), and the smallest change of each kind that makes every
// mapping fit. Pure: the simulator (src/model) does all accounting.

import { type Logic, logicLabel, simulate, type ExpectedOp } from '../model/index.ts';
import { type CompiledScenario, type Op, ballastBuffers, userLockLimit } from '../scenario/ops.ts';

export interface ExplainInput {
  logic: Logic;
  /** why this logic (the version table's row) */
  logicWhy: string;
  /** num_online_cpus() */
  cpus: number;
  /** kernel.perf_event_mlock_kb, kB */
  mlockKb: number;
  /** RLIMIT_MEMLOCK of the mapping process, kB; null = unlimited */
  rlimitKb: number | null;
  /** user_extra of each mapping, pages (1 header page + data pages) */
  pages: number;
  /** ring buffers mapped, one per call */
  rings: number;
  /** pages the uid had already charged to perf's per-user counter before the first call */
  charged: number;
  capIpcLock: boolean;
  /** kernel.perf_event_paranoid */
  paranoid: number;
}

export interface ExplainRow {
  call: number;
  /** user_locked = U + user_extra (V3/V4: U clamped to the allowance first), pages */
  userLocked: number;
  /** pages the call charges to mm->pinned_vm */
  extra: number;
  pinnedBefore: number;
  /** pinnedBefore + extra, compared with lockLimit */
  locked: number;
  result: 'ok' | 'EPERM';
}

export interface Fix {
  what: 'sysctl' | 'rlimit' | 'capability' | 'paranoid' | 'kernel';
  /** the value that makes every call fit (kB for sysctl / rlimit), or null where none exists */
  value: number | null;
  text: string;
}

export interface Explanation {
  input: ExplainInput;
  /** user_lock_limit = (perf_event_mlock_kb >> 2) * cpus, pages */
  userLockLimit: number;
  /** RLIMIT_MEMLOCK >> PAGE_SHIFT, pages (2^52 - 1 when unlimited) */
  lockLimit: number;
  /** one row per call up to and including the first refused one */
  rows: ExplainRow[];
  /** 1-based, null when every call fits */
  firstRefused: number | null;
  fixes: Fix[];
}

/** The workload as a scenario: the uid's earlier charge, then `rings` mappings. */
export function explainScenario(i: ExplainInput): { scenario: CompiledScenario; opts: { bpfChargesUser: boolean; helperRlimitKb: null } } {
  const ops: Op[] = [];
  // Pages already in user->locked_vm: what BPF (before 5.11) and io_uring leave there; a
  // separate perf counter can only hold perf's own mappings (a CAP_IPC_LOCK helper's).
  if (i.charged > 0) ops.push(i.logic.counter === 'shared' ? { op: 'ballast', via: 'bpf', pages: i.charged } : { op: 'ballast', via: 'perf', buffers: ballastBuffers(i.charged) });
  for (let k = 0; k < i.rings; k++) ops.push({ op: 'map', buf: `rb${k}`, cpu: k % i.cpus, data_pages: i.pages - 1 });
  return {
    scenario: { id: 'explain', cpus: i.cpus, mlock_kb: i.mlockKb, paranoid: i.paranoid, rlimit_kb: i.rlimitKb, cap_ipc_lock: i.capIpcLock, ops },
    // the earlier charge is a given of the situation, made under no RLIMIT_MEMLOCK that refuses it
    // (not the reproducer's 8192 kB helper limit)
    opts: { bpfChargesUser: true, helperRlimitKb: null },
  };
}

function run(i: ExplainInput): { ops: ExpectedOp[]; maps: ExpectedOp[] } {
  const { scenario, opts } = explainScenario(i);
  const ops = simulate(scenario, i.logic, opts);
  return { ops, maps: ops.filter((_, k) => scenario.ops[k]!.op === 'map') };
}

const fits = (i: ExplainInput): boolean => run(i).maps.every((m) => m.ok);

/** Smallest v in [lo, hi] with ok(v), assuming ok is monotone; null when ok(hi) is false. */
function smallest(lo: number, hi: number, ok: (v: number) => boolean): number | null {
  if (!ok(hi)) return null;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid; else lo = mid + 1;
  }
  return lo;
}

/** The largest perf_event_mlock_kb the kernel accepts (INT_MAX kB, proc_dointvec). */
const MAX_MLOCK_KB = 2 ** 31 - 1;
/** RLIMIT_MEMLOCK values searched up to 2^42 kB (4 PiB). */
const MAX_RLIMIT_KB = 2 ** 42;

const human = (kb: number): string => (kb % (1024 * 1024) === 0 ? `${kb / 1024 / 1024}G` : kb % 1024 === 0 ? `${kb / 1024}M` : `${kb}K`);

/**
 * Explain a set of perf_mmap() calls under `input.logic`. Throws RangeError
 * for pages < 1 or a non power-of-two data size (the kernel refuses those
 * with EINVAL before any accounting).
 */
export function explain(input: ExplainInput): Explanation {
  const data = input.pages - 1;
  if (!Number.isInteger(input.pages) || input.pages < 1 || (data & (data - 1)) !== 0) throw new RangeError(`pages must be 1 + a power of two (1, 2, 3, 5, 9, ...), got ${input.pages}`);
  const { maps } = run(input);
  const k = maps.findIndex((m) => !m.ok);
  const firstRefused = k < 0 ? null : k + 1;
  const shown = k < 0 ? maps : maps.slice(0, k + 1);
  const rows = shown.map((m, n): ExplainRow => ({
    call: n + 1, userLocked: m.check!.userLocked, extra: m.check!.extra, pinnedBefore: m.check!.pinnedBefore, locked: m.check!.locked, result: m.ok ? 'ok' : 'EPERM',
  }));
  const first = maps[0]?.check;
  const fixes: Fix[] = [];
  if (firstRefused !== null) {
    const sys = smallest(input.mlockKb, MAX_MLOCK_KB, (v) => fits({ ...input, mlockKb: v }));
    fixes.push({ what: 'sysctl', value: sys, text: sys === null ? 'no perf_event_mlock_kb value is enough' : `sysctl -w kernel.perf_event_mlock_kb=${sys}   (user_lock_limit ${userLockLimit(sys, input.cpus)} pages on ${input.cpus} CPUs; was ${input.mlockKb})` });
    const rl = smallest(input.rlimitKb ?? 0, MAX_RLIMIT_KB, (v) => fits({ ...input, rlimitKb: v }));
    fixes.push({ what: 'rlimit', value: rl, text: rl === null ? 'no finite RLIMIT_MEMLOCK is enough' : `RLIMIT_MEMLOCK >= ${rl} kB (ulimit -l ${rl}; ${human(Math.ceil(rl / 1024) * 1024)} rounded up; was ${input.rlimitKb === null ? 'unlimited' : `${input.rlimitKb} kB`})` });
    fixes.push({ what: 'capability', value: fits({ ...input, capIpcLock: true }) ? 1 : null, text: 'grant CAP_IPC_LOCK in the initial user namespace (root in a container does not have it: capable() checks the init namespace)' });
    fixes.push({ what: 'paranoid', value: fits({ ...input, paranoid: -1 }) ? -1 : null, text: 'sysctl -w kernel.perf_event_paranoid=-1   (skips the RLIMIT_MEMLOCK check for everyone)' });
    if (input.logic.accounting === 'V0' && fits({ ...input, logic: { ...input.logic, accounting: 'V3' } })) {
      fixes.push({ what: 'kernel', value: null, text: 'a kernel with 003461559ef7 "perf/core: Fix mlock accounting in perf_mmap()" (v5.6, backported to 4.9.214/4.14.171/4.19.103/5.4.19): every call charges only its own pages beyond the allowance' });
    }
  }
  return { input, userLockLimit: first?.userLockLimit ?? userLockLimit(input.mlockKb, input.cpus), lockLimit: first?.lockLimit ?? 0, rows, firstRefused, fixes };
}

/** The explanation as text: the inputs, the kprobe-style table, the fixes. */
export function renderExplain(e: Explanation): string {
  const i = e.input;
  const out = [
    `logic: ${logicLabel(i.logic)} (${i.logicWhy})`,
    `user_lock_limit = (perf_event_mlock_kb ${i.mlockKb} >> 2) * ${i.cpus} CPUs = ${e.userLockLimit} pages`,
    `lock_limit = RLIMIT_MEMLOCK ${i.rlimitKb === null ? 'unlimited' : `${i.rlimitKb} kB >> 2 = ${e.lockLimit} pages`}; CAP_IPC_LOCK ${i.capIpcLock ? 'yes' : 'no'}; perf_event_paranoid ${i.paranoid}`,
    `user->locked_vm before the first call: ${i.charged} pages; each call maps ${i.pages} pages (user_extra); ${i.rings} calls`,
    '',
    '| call | user_locked | extra | pinned_vm before | locked = pinned + extra | result |',
    '|---|---|---|---|---|---|',
    ...e.rows.map((r) => `| ${r.call} | ${r.userLocked} | ${r.extra} | ${r.pinnedBefore} | ${r.locked} | ${r.result === 'ok' ? 'ok' : `EPERM (${r.locked} > ${e.lockLimit})`} |`),
    '',
  ];
  if (e.firstRefused === null) {
    out.push(`every call fits: the last one leaves pinned_vm at ${e.rows.length ? e.rows[e.rows.length - 1]!.locked : 0} pages.`);
  } else {
    out.push(`call ${e.firstRefused} is refused with EPERM: locked ${e.rows[e.rows.length - 1]!.locked} > lock_limit ${e.lockLimit}.`, '', 'Any one of these makes every call fit:');
    for (const f of e.fixes) if (f.value !== null || f.what === 'sysctl' || f.what === 'rlimit' || f.what === 'kernel') out.push(`  - ${f.what}: ${f.text}`);
  }
  return out.join('\n') + '\n';
}
