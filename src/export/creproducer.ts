// A standalone, single-file C reproducer generated from a scenario: the op
// script compiled into a table with the reference logic's prediction for
// each op (every other logic's in comments), followed by a fixed runtime
// (src/export/crepro-runtime.ts) that a maintainer runs as root on a test
// machine: it checks the machine (CPUs, page size, perf sysctls, what the
// ops need), sets the scenario's sysctls and restores them on every exit
// path, forks its worker and helpers as a fresh uid, runs each op as
// lockstep's reproducer does (harness/lockstep-repro.c), reads VmPin and
// compares. Output is KTAP (one test per op, "# " diagnostics) with the
// kselftest exit codes: 0 as predicted, 1 a divergence (the bug), 4
// (KSFT_SKIP) when the machine cannot run the scenario. Static, libc and
// kernel UAPI headers only. Pure: text in, text out.

import { type ExpectedOp, type Logic, logicLabel } from '../model/index.ts';
import type { CompiledScenario, Op } from '../scenario/ops.ts';
import { ConfigError } from '../util/errors.ts';
import { C_RUNTIME } from './crepro-runtime.ts';

export interface CReproInput {
  scenario: CompiledScenario;
  /** the logic whose predictions the program checks against (the one the report says is right) */
  reference: { logic: Logic; expected: ExpectedOp[] };
  /** other logics' predictions, shown in comments (e.g. the kernel's own expected logic) */
  others: { logic: Logic; expected: ExpectedOp[] }[];
  /** one-line title for the header comment */
  title: string;
  /** extra header comment lines (kernel, measured values) */
  notes: string[];
}

/** The runtime's op kinds (C enum names), one per op of the script; ballasts by `via`. */
const KINDS = ['SYSCTL', 'RLIMIT', 'BALLAST_PERF', 'BALLAST_URING', 'BALLAST_BPF', 'BALLAST_SECRET', 'URING', 'UNMAP_PART',
  'MAP_OUTPUT', 'EXIT', 'HANDOFF', 'KILL_HELPER', 'CAP_IPC_LOCK', 'MAP', 'REMAP', 'UNMAP', 'PROBE', 'CPU',
  'AUX_RING', 'AUX_MAP', 'AUX_UNMAP'] as const;
type Kind = typeof KINDS[number];

const BALLAST: Record<string, Kind> = { perf: 'BALLAST_PERF', io_uring: 'BALLAST_URING', bpf: 'BALLAST_BPF', memfd_secret: 'BALLAST_SECRET' };

/** A C string literal (no trigraphs). */
const cstr = (s: string): string => JSON.stringify(s).replace(/\?/g, '\\?');

const expectedText = (op: Op, e: ExpectedOp): string =>
  `${e.ok ? 'ok' : e.errno} VmPin ${e.pinned} pages${op.op === 'probe' ? ` headroom ${e.headroom}` : ''} user ${e.user}`;

/** What an op does, for the KTAP test names and comments. */
export function opLabel(op: Op): string {
  switch (op.op) {
    case 'map': return `map ${op.buf} on CPU ${op.cpu} (${op.data_pages} data pages + 1)`;
    case 'aux_ring': return `aux_ring ${op.buf} on CPU ${op.cpu} (${op.data_pages} data pages + 1)`;
    case 'handoff': return `handoff ${op.buf} on CPU ${op.cpu} (${op.data_pages} data pages + 1)`;
    case 'remap': case 'unmap': case 'unmap_part': case 'aux_unmap': return `${op.op} ${op.buf}`;
    case 'aux_map': return `aux_map ${op.buf} (${op.pages} pages)`;
    case 'map_output': return `map_output ${op.buf} to ${op.to}`;
    case 'rlimit': return `rlimit RLIMIT_MEMLOCK ${op.memlock_kb === null ? 'unlimited' : `${op.memlock_kb} kB`}`;
    case 'sysctl': return `sysctl ${op.name} = ${op.value}`;
    case 'ballast': return op.via === 'perf' ? `ballast perf (${op.buffers.length} rings)` : `ballast ${op.via} (${op.pages} pages)`;
    case 'uring': return `uring (${op.pages} pages)`;
    case 'exit': return op.last ? 'exit (the uid\'s last process)' : 'exit';
    case 'kill_helper': return `kill_helper ${op.helper}`;
    case 'cap_ipc_lock': return `cap_ipc_lock ${op.value ? 'on' : 'off'}`;
    case 'cpu': return `cpu ${op.cpu} ${op.online ? 'online' : 'offline'}`;
    default: return op.op;
  }
}

/** Words of `text` in lines of at most `width` characters (a word longer than that stands alone). */
function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > width) { out.push(line); line = w; } else line = line ? `${line} ${w}` : w;
  }
  return line ? [...out, line] : out;
}

/** Comment text: no comment terminator, no trailing blanks, at most 90 columns a line. */
const commentLines = (lines: string[]): string[] =>
  lines.flatMap((l) => (l.trim() === '' ? [''] : wrap(l.replace(/\*\//g, '* /'), 90)));

interface Row { kind: Kind; buf: number; to: number; a: number; b: number }

/** The buffer table and one row per op; throws ConfigError for ops a reproducer must not run. */
function encode(s: CompiledScenario): { rows: Row[]; bufs: string[]; ballast: number[] } {
  const bufs: string[] = [];
  const ballast: number[] = [];
  const buf = (name: string): number => {
    if (name === '*') return -1;
    if (!bufs.includes(name)) bufs.push(name);
    return bufs.indexOf(name);
  };
  const rows = s.ops.map((op, k): Row => {
    const r = (kind: Kind, b = -1, a = 0, bb = 0, to = -1): Row => ({ kind, buf: b, to, a, b: bb });
    switch (op.op) {
      case 'sysctl': return r('SYSCTL', -1, op.name === 'perf_event_paranoid' ? 1 : 0, op.value);
      case 'rlimit': return r('RLIMIT', -1, op.memlock_kb ?? -1);
      case 'ballast':
        if (op.via !== 'perf') return r(BALLAST[op.via]!, -1, op.pages);
        ballast.push(...op.buffers);
        return r('BALLAST_PERF', -1, ballast.length - op.buffers.length, op.buffers.length);
      case 'uring': return r('URING', -1, op.pages);
      case 'unmap_part': return r('UNMAP_PART', buf(op.buf));
      case 'map_output': return r('MAP_OUTPUT', buf(op.buf), 0, 0, buf(op.to));
      case 'exit': return r('EXIT', -1, op.last ? 1 : 0);
      case 'handoff': return r('HANDOFF', buf(op.buf), op.cpu, op.data_pages);
      case 'kill_helper': return r('KILL_HELPER', -1, op.helper === '*' ? -1 : op.helper);
      case 'cap_ipc_lock': return r('CAP_IPC_LOCK', -1, op.value ? 1 : 0);
      case 'map': return r('MAP', buf(op.buf), op.cpu, op.data_pages);
      case 'remap': return r('REMAP', buf(op.buf));
      case 'unmap': return r('UNMAP', buf(op.buf));
      case 'probe': return r('PROBE');
      case 'cpu': return r('CPU', -1, op.cpu, op.online ? 1 : 0);
      case 'aux_ring': return r('AUX_RING', buf(op.buf), op.cpu, op.data_pages);
      case 'aux_map': return r('AUX_MAP', buf(op.buf), op.pages);
      case 'aux_unmap': return r('AUX_UNMAP', buf(op.buf));
      default:
        throw new ConfigError(`scenario ${s.id}`, `ops[${k}]`, `a "${op.op}" op is fault injection for lockstep's runner, not part of a reproducer`, 'report a scenario without hang/sysrq ops');
    }
  });
  return { rows, bufs, ballast };
}

const ERRNO: Record<string, string> = { '': '0', EPERM: 'EPERM', ENOMEM: 'ENOMEM', EINVAL: 'EINVAL', EBUSY: 'EBUSY' };

function header(i: CReproInput): string[] {
  const s = i.scenario;
  const ref = logicLabel(i.reference.logic);
  const pageKb = s.page_kb ?? 4;
  const body = commentLines([
    i.title, '',
    `Generated by lockstep from scenario "${s.id}": the same op script lockstep's model predicts and its reproducer runs. One file, libc and the kernel's UAPI headers only.`, '',
    '  gcc -static -O2 repro.c -o repro', '  sudo ./repro', '',
    `Run it as root on a test machine with ${s.cpus} online CPUs and ${pageKb} kB pages. It sets kernel.perf_event_mlock_kb = ${s.mlock_kb} and kernel.perf_event_paranoid = ${s.paranoid} (restored on exit, also on SIGINT/SIGTERM/SIGHUP), runs its ops as ${s.root ? 'uid 0 (root_user is shared by every root process and never freed: run it once per fresh boot' : 'a fresh uid (setresuid'}; RLIMIT_MEMLOCK ${s.rlimit_kb === null ? 'unlimited' : `${s.rlimit_kb} kB`}, CAP_IPC_LOCK ${s.cap_ipc_lock ? 'kept' : 'dropped'}) and forks the helpers the ops ask for: ballast holders, the fd hand-off over a unix socket.`, '',
    `Each op prints what it measured next to what ${ref} predicts (pages: VmPin is mm->pinned_vm; a probe holds ring buffers until one more page would spill, so its headroom is L - the per-user counter, L = (perf_event_mlock_kb >> 2) * CPUs = ${(s.mlock_kb >> 2) * s.cpus} pages at start).`,
    `Output is KTAP version 1, one test per op. Exit 0: everything as ${ref} predicts; 1: a divergence (a "# BUG" line); 4 (KSFT_SKIP): this machine cannot run the scenario.`,
    ...i.notes,
  ]);
  return ['// SPDX-License-Identifier: GPL-2.0', '/*', ...body.map((l) => (l ? ` * ${l}` : ' *')), ' */'];
}

function opTable(i: CReproInput, rows: Row[]): string[] {
  const s = i.scenario;
  return s.ops.flatMap((op, k) => {
    const e = i.reference.expected[k]!;
    const r = rows[k]!;
    const cmt = commentLines([`op ${k}: ${opLabel(op)}`, ...[{ logic: i.reference.logic, expected: i.reference.expected }, ...i.others]
      .map((o) => `${logicLabel(o.logic)}: ${expectedText(op, o.expected[k]!)}`)]);
    const helper = (op.op === 'ballast' && op.via === 'perf') || op.op === 'handoff' ? e.helperPinned ?? -1 : -1;
    const vals = [`OP_${r.kind}`, r.buf, r.to, r.a, r.b, e.ok ? 1 : 0, ERRNO[e.errno] ?? '0', e.pinned, e.headroom ?? -1, helper];
    if (vals.some((v) => typeof v === 'number' && !Number.isSafeInteger(v))) throw new RangeError(`op ${k}: a value is not an integer`);
    return ['\t/*', ...cmt.map((l) => (l ? `\t * ${l}` : '\t *')), '\t */', `\t{ ${vals.join(', ')},`, `\t  ${cstr(opLabel(op))} },`];
  });
}

/**
 * The C source of a standalone reproducer of `i.scenario`, checking
 * `i.reference`'s predictions (pages of this kernel's PAGE_SIZE, as
 * simulate() gives them). Every built-in scenario exports; throws
 * ConfigError for fault-injection ops (hang, sysrq) and RangeError when the
 * predictions do not cover the ops.
 */
export function generateCReproducer(i: CReproInput): string {
  const s = i.scenario;
  if (i.reference.expected.length !== s.ops.length) throw new RangeError('reference predictions do not match the ops');
  const { rows, bufs, ballast } = encode(s);
  const has = (...ops: Op['op'][]): boolean => s.ops.some((op) => ops.includes(op.op));
  const via = (v: string): boolean => s.ops.some((op) => op.op === 'ballast' && op.via === v);
  const consts: [string, string | number][] = [
    ['SCEN_ID', cstr(s.id)], ['REF_LOGIC', cstr(logicLabel(i.reference.logic))], ['SCEN_CPUS', s.cpus], ['SCEN_PAGE_KB', s.page_kb ?? 4],
    ['SCEN_MLOCK_KB', s.mlock_kb], ['SCEN_PARANOID', s.paranoid], ['SCEN_RLIMIT_KB', s.rlimit_kb === null ? -1 : s.rlimit_kb],
    ['SCEN_CAP_IPC_LOCK', s.cap_ipc_lock ? 1 : 0], ['SCEN_ROOT', s.root ? 1 : 0], ['NEEDS_AUX', has('aux_ring') ? 1 : 0],
    ['NEEDS_URING', has('uring') || via('io_uring') ? 1 : 0], ['NEEDS_SECRET', via('memfd_secret') ? 1 : 0],
    ['NOPS', s.ops.length], ['NBUFS', Math.max(1, bufs.length)], ['KSFT_PASS', 0], ['KSFT_FAIL', 1], ['KSFT_SKIP', 4],
  ];
  const includes = ['dirent.h', 'errno.h', 'fcntl.h', 'grp.h', 'signal.h', 'stdio.h', 'stdlib.h', 'string.h', 'time.h', 'unistd.h',
    'sys/ioctl.h', 'sys/mman.h', 'sys/prctl.h', 'sys/resource.h', 'sys/socket.h', 'sys/syscall.h', 'sys/types.h', 'sys/uio.h', 'sys/wait.h',
    'linux/bpf.h', 'linux/capability.h', 'linux/io_uring.h', 'linux/perf_event.h'];
  const ballastRows = ballast.length ? wrap(ballast.join(', ') + ',', 80).map((l) => `\t${l}`) : ['\t0,'];
  return [
    ...header(i),
    '#define _GNU_SOURCE',
    ...includes.map((h) => `#include <${h}>`),
    '',
    ...consts.map(([k, v]) => `#define ${k} ${v}`),
    '',
    `enum op_kind {\n${KINDS.map((k) => `\tOP_${k},`).join('\n')}\n};`,
    '',
    'struct op {\n\tint kind;\n\tint buf;\n\tint to;\n\tlong long a;\n\tlong long b;\n\tint ok;\n\tint err;\n\tlong long pinned;\n\tlong long headroom;\n\tlong long helper;\n\tconst char *what;\n};',
    '',
    '/* data pages of each ring a perf ballast maps (ops[].a: first, ops[].b: how many) */',
    'static const long long ballast[] = {', ...ballastRows, '};',
    '',
    '/* kind, buffer, map_output target, a, b; the prediction: ok, errno, VmPin pages, headroom, helper VmPin */',
    'static const struct op ops[NOPS] = {', ...opTable(i, rows), '};',
    '',
    C_RUNTIME,
  ].join('\n');
}
