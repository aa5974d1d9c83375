// The scenario file format: what users write (harness/scenarios/README.md).
// A strict zod schema from untrusted JSON to a typed source scenario with
// defaults filled in; `lockstep schema scenario` publishes it as JSON Schema
// (schemas/scenario.schema.json). Sugar (counts, "each", "L") is kept here
// and compiled away by compile.ts, which also checks the script's flow (buffer
// names, online CPUs, op count). Pure: no I/O.
//
// Every bad input is a ConfigError(file, field path, problem, fix); nothing
// else may escape validateScenario() for any input value.
//
// Adding an op: its fields' schema in OP_SCHEMAS (built from the blocks of
// src/util/validate.ts), its SourceOp member, its compile step in compile.ts (COMPILE_HANDLERS).

import { z } from 'zod';
import { ConfigError } from '../util/errors.ts';
import { bool, either, explain, int, oneOf, parseOrThrow, prose, quotedList, safeString, show, strictObject } from '../util/validate.ts';
import type { SysctlName } from './ops.ts';

export { show, typeName } from '../util/validate.ts';

// ---------------------------------------------------------------------------
// Limits and defaults

export const SCENARIO_DEFAULTS = {
  perf_event_mlock_kb: 516,
  paranoid: 2,
  /** The default hard RLIMIT_MEMLOCK: root here cannot raise its hard limit above it. */
  rlimit_memlock_kb: 8192,
  cap_ipc_lock: false,
  uid: 'fresh' as 'fresh' | 'root',
  fault_injection: false,
} as const;

export const SCENARIO_LIMITS = {
  /**
   * compiled ops per scenario (after counts and "each" are expanded): what
   * `simulate --logic all` runs in about a second (14 logics x 20,000 ops;
   * at 200,000 it took 15-20 s here, issue 26)
   */
  maxOps: 20_000,
  /** -smp of a VM; num_online_cpus() */
  minCpus: 1,
  maxCpus: 256,
  /** perf_event_mlock_kb, at start and in sysctl ops */
  maxMlockKb: 2 ** 30,
  minParanoid: -1,
  maxParanoid: 4,
  /** RLIMIT_MEMLOCK in kB (2^42 kB = 4 PiB, still far below RLIM_INFINITY) */
  maxRlimitKb: 2 ** 42,
  /** data pages of one ring buffer */
  maxDataPages: 65536,
  /** pages of one ballast op (16 GiB: the helper really allocates them) */
  maxBallastPages: 2 ** 22,
  /**
   * entries of an explicit perf ballast `buffers` list: the reproducer's
   * fixed table (harness/lockstep-limits.h is generated from this value by
   * `lockstep schema --write`; test/json-schema.test.ts keeps them equal)
   */
  maxBallastBuffers: 1024,
  /** `count` of map / remap (at most maxOps compiled ops anyway) */
  maxCount: 20_000,
  /** seconds of a `hang` op */
  maxHangSeconds: 3600,
  maxDescription: 200,
} as const;

/** Identifiers (scenario ids, buffer names), as the reproducer accepts them. */
export const IDENT_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const SYSRQ_KEY_RE = /^[A-Za-z0-9]$/;
/** `pages` relative to user_lock_limit: "L", "L+N", "L-N". */
const L_RE = /^L(?:([+-])(0|[1-9][0-9]{0,8}))?$/;

/**
 * harness/lockstep-limits.h: the limits the reproducer shares with the
 * scenario schema, so a scenario that loads never meets a smaller limit in C.
 */
export function limitsHeader(): string {
  return [
    '/* Generated from SCENARIO_LIMITS (src/scenario/schema.ts) by `lockstep schema --write`: do not edit. */',
    '#ifndef LOCKSTEP_LIMITS_H',
    '#define LOCKSTEP_LIMITS_H',
    `#define MAX_BALLAST_BUFS ${SCENARIO_LIMITS.maxBallastBuffers}`,
    '#endif',
    '',
  ].join('\n');
}

export const SYSCTL_NAMES: readonly SysctlName[] = ['perf_event_mlock_kb', 'perf_event_paranoid'];
export const OP_NAMES = ['ballast', 'map', 'remap', 'unmap', 'unmap_part', 'map_output', 'uring', 'probe', 'exit', 'rlimit', 'sysctl', 'cpu', 'hang', 'sysrq', 'aux_ring', 'aux_map', 'aux_unmap', 'handoff', 'kill', 'cap'] as const;
/** Ballast kinds: who charges what (see ops.ts). */
export const BALLAST_VIAS = ['perf', 'io_uring', 'bpf', 'memfd_secret'] as const;
export type SourceOpName = (typeof OP_NAMES)[number];

// ---------------------------------------------------------------------------
// The validated source

/**
 * A page count, one relative to user_lock_limit at that point of the script
 * ("L-4" = { fromL: -4 }), or a size in bytes ("bytes": N = { bytes: N }),
 * compiled to pages at the kernel's page size (ceil(N / PAGE_SIZE)).
 */
export type PagesSpec = number | { fromL: number } | { bytes: number };

/**
 * The data part of a ring: a page count (0 or a power of two), or a size in
 * bytes ("data_bytes") compiled at the kernel's page size to the smallest
 * power-of-two page count holding it, as `perf record -m SIZE` rounds.
 */
export type DataPagesSpec = number | { bytes: number };

/** Which CPU(s) a `map` uses: one CPU id, one buffer per online CPU, or `count` buffers spread over the online CPUs. */
export type CpuSpec = number | 'each' | 'round-robin';

export type SourceOp =
  | { op: 'ballast'; via: 'perf'; pages: PagesSpec; helper?: string }
  | { op: 'ballast'; via: 'perf'; buffers: number[]; helper?: string }
  | { op: 'ballast'; via: 'io_uring' | 'bpf' | 'memfd_secret'; pages: PagesSpec; helper?: string }
  /** fd hand-off: a helper (CAP_IPC_LOCK) maps a ring and passes the fd to the worker, which maps it again; one helper per ring */
  | { op: 'handoff'; buf: string; cpu: CpuSpec; data_pages: DataPagesSpec; count?: number; helper?: string }
  /** end a named helper ('*': every live helper) */
  | { op: 'kill'; helper: string }
  /** the worker's CAP_IPC_LOCK from now on, and optionally its RLIMIT_MEMLOCK */
  | { op: 'cap'; cap_ipc_lock: boolean; rlimit_memlock_kb?: number | null }
  | { op: 'uring'; pages: number }
  | { op: 'unmap_part'; buf: string }
  | { op: 'map_output'; buf: string; to: string }
  /** the worker exits; `last`: as the uid's last process (its per-user record is freed, except root's) */
  | { op: 'exit'; last?: true }
  | { op: 'map'; buf: string; cpu: CpuSpec; data_pages: DataPagesSpec; count?: number }
  | { op: 'remap'; buf: string; count?: number }
  | { op: 'unmap'; buf: string }
  | { op: 'probe' }
  | { op: 'rlimit'; rlimit_memlock_kb: number | null }
  | { op: 'sysctl'; name: SysctlName; value: number }
  | { op: 'cpu'; cpu: number; online: boolean }
  | { op: 'hang'; seconds: number }
  | { op: 'sysrq'; key: string }
  | { op: 'aux_ring'; buf: string; cpu: number; data_pages: number }
  | { op: 'aux_map'; buf: string; pages: number }
  | { op: 'aux_unmap'; buf: string };

/** A scenario file after validation, defaults filled in, sugar still in place. */
export interface ScenarioSource {
  id: string;
  description: string;
  /** online CPUs the scenario needs, or 'any': its point does not depend on the count (compiled at each count it runs at) */
  cpus: number | 'any';
  /** kernel.perf_event_mlock_kb at start (kB) */
  perf_event_mlock_kb: number;
  paranoid: number;
  /** the worker's soft RLIMIT_MEMLOCK at start (kB; null = unlimited) */
  rlimit_memlock_kb: number | null;
  cap_ipc_lock: boolean;
  /**
   * whose processes the worker and helpers are: 'fresh' = a uid no process
   * has (the default), 'root' = uid 0, whose per-user record (root_user) is
   * never freed and is shared by every root process: VM runtimes only
   */
  uid: 'fresh' | 'root';
  /** must be true for `hang` and `sysrq` ops (they exist to test the runner; sysrq can crash the machine) */
  fault_injection: boolean;
  ops: SourceOp[];
}


// ---------------------------------------------------------------------------
// The schema

const L = SCENARIO_LIMITS;
const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

const ident = (what: string, example = '"a"') =>
  safeString(what, example, { re: IDENT_RE, problem: (v) => `${what} ${show(v)} is not 1..64 of A-Z a-z 0-9 _ . -`, fix: 'rename it using only letters, digits, "_", "." and "-" (at most 64)' });
const bufName = ident('buffer name');

/** data pages of a ring buffer: 0 or a power of two, at most maxDataPages. */
const dataPages = int('data_pages', 0, L.maxDataPages, '2').superRefine((n, ctx) => {
  if (n !== 0 && !isPowerOfTwo(n)) ctx.addIssue({ code: 'custom', message: explain(`data_pages ${n} is neither 0 nor a power of two (perf_mmap() refuses it with EINVAL)`, `use 0 (header only) or one of 1, 2, 4, ..., ${L.maxDataPages}`) });
});

/** `pages`: a whole number or "L", "L+N", "L-N". */
const pagesSpec = either(
  [
    int('pages', 0, L.maxBallastPages, '100'),
    z.string().regex(L_RE, { error: (iss) => explain(`pages ${show(iss.input)} is neither a number nor "L", "L+N" or "L-N"`, 'write a page count such as 256, or "L" to fill the per-user counter to user_lock_limit (optionally "L-4", "L+100")') }),
  ],
  (v) => (typeof v === 'string' ? 1 : 0),
).transform((v): PagesSpec => {
  if (typeof v === 'number') return v;
  const m = L_RE.exec(v)!;
  const off = m[2] === undefined ? 0 : Number(m[2]);
  return { fromL: m[1] === '-' && off !== 0 ? -off : off };
});

const cpuId = (what: string) => int(what, 0, L.maxCpus - 1, '1');
const count = int('count', 1, L.maxCount, '4');
const memlockKb = (what: string) => int(`${what} (null = unlimited)`, 0, L.maxRlimitKb, '64').nullable();
const op = <N extends SourceOpName>(name: N) => z.literal(name);
const helperName = ident('helper name', '"old-agent"');

/** Sizes in bytes: up to the largest ring / ballast at 4 kB pages (the smallest page). */
const ringBytes = int('data_bytes', 1, L.maxDataPages * 4096, '8192');
const ballastBytes = int('bytes', 0, L.maxBallastPages * 4096, '134217728');

/** The fields of the ring-making ops (map, handoff): a buffer name, where, how many, how big (data_pages or data_bytes). */
const ringFields = {
  buf: bufName,
  cpu: either([oneOf(['each', 'round-robin'], 'cpu'), cpuId('cpu (a CPU id, "each" or "round-robin")')], (v) => (typeof v === 'string' ? 0 : 1)),
  data_pages: dataPages.optional(),
  data_bytes: ringBytes.optional(),
  count: count.optional(),
};
/** Exactly one of data_pages / data_bytes. */
const ringSize = (o: { data_pages?: number; data_bytes?: number }, ctx: z.RefinementCtx): void => {
  if (o.data_pages !== undefined && o.data_bytes !== undefined) ctx.addIssue({ code: 'custom', path: ['data_bytes'], message: explain('a ring takes "data_pages" or "data_bytes", not both', 'keep one: pages for a fixed page count, bytes to follow the kernel\'s page size') });
  if (o.data_pages === undefined && o.data_bytes === undefined) ctx.addIssue({ code: 'custom', path: ['data_pages'], message: explain('missing', 'add "data_pages": 2 (a power of two), or "data_bytes": 8192 (rounded up to a power-of-two page count at the kernel\'s page size)') });
};
const ringSizeOf = (o: { data_pages?: number; data_bytes?: number }): DataPagesSpec => (o.data_bytes !== undefined ? { bytes: o.data_bytes } : o.data_pages!);
/** "each" takes no count, "round-robin" needs one. */
const ringCount = (o: { cpu: CpuSpec; count?: number }, ctx: z.RefinementCtx): void => {
  if (o.cpu === 'each' && o.count !== undefined) ctx.addIssue({ code: 'custom', path: ['count'], message: explain('"cpu": "each" maps one buffer per online CPU, so it takes no "count"', 'remove "count", or use "cpu": "round-robin" with a count') });
  if (o.cpu === 'round-robin' && o.count === undefined) ctx.addIssue({ code: 'custom', path: ['count'], message: explain('"cpu": "round-robin" needs a "count"', 'add "count": N (buffers named BUF0..BUF{N-1}), or use "cpu": "each"') });
};

/** One schema per op: its fields (strict), checks across them, and the SourceOp it reads as. */
const OP_SCHEMAS = {
  ballast: strictObject({ op: op('ballast'), via: oneOf(BALLAST_VIAS, 'via'), helper: helperName.optional(), pages: pagesSpec.optional(), bytes: ballastBytes.optional(), buffers: z.array(dataPages, { error: (iss) => explain(`buffers must be an array of data-page counts, got ${show(iss.input)}`, 'write e.g. "buffers": [256, 0]') }).max(L.maxBallastBuffers, { error: (iss) => explain(`${(iss.input as unknown[]).length} buffers is more than ${L.maxBallastBuffers}`, `use "pages" instead, or at most ${L.maxBallastBuffers} entries`) }).optional() }, 'a "ballast" op', 'write {"op": "ballast", "via": "perf", "pages": 100}')
    .superRefine((o, ctx) => {
      const fail = (path: string, problem: string, fix: string): void => ctx.addIssue({ code: 'custom', path: [path], message: explain(problem, fix) });
      if (o.bytes !== undefined && (o.pages !== undefined || o.buffers !== undefined)) {
        fail('bytes', `a ballast takes one of "pages", "bytes"${o.via === 'perf' ? ', "buffers"' : ''}`, 'keep one: "bytes" follows the kernel\'s page size');
        return;
      }
      const hasPages = o.pages !== undefined || o.bytes !== undefined;
      const hasBuffers = o.buffers !== undefined;
      if (o.via !== 'perf') {
        if (hasBuffers) fail('buffers', `an ${o.via} ballast takes "pages", not "buffers"`, 'remove "buffers" and give "pages"');
        else if (!hasPages) fail('pages', `missing "pages" of an ${o.via} ballast`, 'add "pages": 100');
      } else if (hasPages === hasBuffers) {
        fail(hasPages ? 'buffers' : 'pages', hasPages ? 'a perf ballast takes "pages" or "buffers", not both' : 'missing "pages" (or "buffers") of a perf ballast', 'give either "pages": N or "L", or "buffers": [data pages of each ring buffer]');
      } else if (hasBuffers) {
        const total = o.buffers!.reduce((a, d) => a + d + 1, 0);
        if (total > L.maxBallastPages) fail('buffers', `the buffers cost ${total} pages, more than ${L.maxBallastPages}`, `ballast at most ${L.maxBallastPages} pages per op`);
      }
    })
    .transform((o): SourceOp => ({
      ...(o.via === 'perf' && o.buffers !== undefined ? { op: 'ballast', via: 'perf', buffers: o.buffers } : ({ op: 'ballast', via: o.via, pages: o.bytes !== undefined ? { bytes: o.bytes } : o.pages! } as SourceOp)),
      ...(o.helper === undefined ? {} : { helper: o.helper }),
    }) as SourceOp),
  map: strictObject({ op: op('map'), ...ringFields }, 'a "map" op', 'write {"op": "map", "buf": "a", "cpu": 0, "data_pages": 2}')
    .superRefine(ringCount).superRefine(ringSize)
    .transform((o): SourceOp => (o.count === undefined ? { op: 'map', buf: o.buf, cpu: o.cpu, data_pages: ringSizeOf(o) } : { op: 'map', buf: o.buf, cpu: o.cpu, data_pages: ringSizeOf(o), count: o.count })),
  handoff: strictObject({ op: op('handoff'), ...ringFields, helper: helperName.optional() }, 'a "handoff" op', 'write {"op": "handoff", "buf": "t", "cpu": 0, "data_pages": 8}')
    .superRefine(ringCount).superRefine(ringSize)
    .transform((o): SourceOp => ({ op: 'handoff', buf: o.buf, cpu: o.cpu, data_pages: ringSizeOf(o), ...(o.count === undefined ? {} : { count: o.count }), ...(o.helper === undefined ? {} : { helper: o.helper }) })),
  kill: strictObject({ op: op('kill'), helper: either([z.literal('*'), ident('helper name (or "*" for every live helper)', '"old-agent"')], (v) => (v === '*' ? 0 : 1)) }, 'a "kill" op', 'write {"op": "kill", "helper": "old-agent"}'),
  cap: strictObject({ op: op('cap'), cap_ipc_lock: bool('cap_ipc_lock'), rlimit_memlock_kb: memlockKb('rlimit_memlock_kb').optional() }, 'a "cap" op', 'write {"op": "cap", "cap_ipc_lock": true}')
    .transform((o): SourceOp => (o.rlimit_memlock_kb === undefined ? { op: 'cap', cap_ipc_lock: o.cap_ipc_lock } : { op: 'cap', cap_ipc_lock: o.cap_ipc_lock, rlimit_memlock_kb: o.rlimit_memlock_kb })),
  remap: strictObject({ op: op('remap'), buf: either([z.literal('*'), ident('buffer name (or "*" for every open buffer)')], (v) => (v === '*' ? 0 : 1)), count: count.optional() }, 'a "remap" op', 'write {"op": "remap", "buf": "a"}')
    .transform((o): SourceOp => (o.count === undefined ? { op: 'remap', buf: o.buf } : { op: 'remap', buf: o.buf, count: o.count })),
  unmap: strictObject({ op: op('unmap'), buf: either([z.literal('*'), ident('buffer name (or "*" for all)')], (v) => (v === '*' ? 0 : 1)) }, 'an "unmap" op', 'write {"op": "unmap", "buf": "a"}'),
  unmap_part: strictObject({ op: op('unmap_part'), buf: bufName }, 'an "unmap_part" op', 'write {"op": "unmap_part", "buf": "a"}'),
  map_output: strictObject({ op: op('map_output'), buf: bufName, to: ident('buffer name to redirect to') }, 'a "map_output" op', 'write {"op": "map_output", "buf": "b", "to": "a"}'),
  uring: strictObject({ op: op('uring'), pages: int('pages', 1, L.maxBallastPages, '100') }, 'a "uring" op', 'write {"op": "uring", "pages": 100}'),
  probe: strictObject({ op: op('probe') }, 'a "probe" op', 'write {"op": "probe"}'),
  exit: strictObject({ op: op('exit'), last: bool('last', 'true').optional() }, 'an "exit" op', 'write {"op": "exit"} or {"op": "exit", "last": true}')
    .transform((o): SourceOp => (o.last === true ? { op: 'exit', last: true } : { op: 'exit' })),
  rlimit: strictObject({ op: op('rlimit'), rlimit_memlock_kb: memlockKb('rlimit_memlock_kb') }, 'an "rlimit" op', 'write {"op": "rlimit", "rlimit_memlock_kb": 64}'),
  sysctl: strictObject({ op: op('sysctl'), name: oneOf(SYSCTL_NAMES as unknown as readonly [SysctlName, SysctlName], 'sysctl name'), value: z.number({ error: (iss) => (iss.input === undefined ? explain('missing "value" of a "sysctl" op', 'add "value": 260') : undefined) }) }, 'a "sysctl" op', 'write {"op": "sysctl", "name": "perf_event_mlock_kb", "value": 260}')
    .transform((o, ctx): SourceOp => {
      const range = o.name === 'perf_event_mlock_kb' ? int('perf_event_mlock_kb', 0, L.maxMlockKb) : int('perf_event_paranoid', L.minParanoid, L.maxParanoid);
      const r = range.safeParse(o.value);
      if (!r.success) {
        ctx.addIssue({ code: 'custom', path: ['value'], message: r.error.issues[0]!.message });
        return z.NEVER;
      }
      return { op: 'sysctl', name: o.name, value: r.data };
    }),
  cpu: strictObject({ op: op('cpu'), cpu: cpuId('cpu'), online: bool('online') }, 'a "cpu" op', 'write {"op": "cpu", "cpu": 1, "online": false}'),
  hang: strictObject({ op: op('hang'), seconds: int('seconds', 0, L.maxHangSeconds, '5') }, 'a "hang" op', 'write {"op": "hang", "seconds": 5}'),
  sysrq: strictObject({
    op: op('sysrq'),
    key: safeString('sysrq key', '"c"', { re: SYSRQ_KEY_RE, problem: (v) => `sysrq key ${show(v)} is not one letter or digit`, fix: 'use one letter or digit, e.g. "c"' }),
  }, 'a "sysrq" op', 'write {"op": "sysrq", "key": "c"}'),
  aux_ring: strictObject({ op: op('aux_ring'), buf: bufName, cpu: cpuId('cpu'), data_pages: dataPages }, 'an "aux_ring" op', 'write {"op": "aux_ring", "buf": "t", "cpu": 0, "data_pages": 2}'),
  aux_map: strictObject({ op: op('aux_map'), buf: bufName, pages: int('pages', 1, L.maxDataPages, '4') }, 'an "aux_map" op', 'write {"op": "aux_map", "buf": "t", "pages": 4}')
    .superRefine((o, ctx) => {
      if (!isPowerOfTwo(o.pages)) ctx.addIssue({ code: 'custom', path: ['pages'], message: explain(`an AUX area of ${o.pages} pages is not a power of two (perf_mmap() refuses it with EINVAL)`, `use one of 1, 2, 4, ..., ${L.maxDataPages}`) });
    }),
  aux_unmap: strictObject({ op: op('aux_unmap'), buf: bufName }, 'an "aux_unmap" op', 'write {"op": "aux_unmap", "buf": "t"}'),
} satisfies Record<SourceOpName, z.ZodType>;

const opSchema = z.discriminatedUnion('op', Object.values(OP_SCHEMAS) as unknown as [typeof OP_SCHEMAS.probe, ...(typeof OP_SCHEMAS)[SourceOpName][]], {
  error: (iss) => {
    const v = iss.input as Record<string, unknown> | undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return explain(`an op must be a JSON object, got ${show(v)}`, `write {"op": one of ${quotedList(OP_NAMES)}, ...}`);
    return oneOf(OP_NAMES, 'op').safeParse(v.op).error?.issues[0]?.message;
  },
});

/** The top level of a scenario file. */
export const scenarioSchema = strictObject({
  id: ident('id', '"my-scenario"'),
  description: prose('description', SCENARIO_LIMITS.maxDescription, '"what it reproduces and which logics it tells apart"'),
  cpus: either([
    z.literal('any', { error: (iss) => explain(`cpus ${show(iss.input)} is neither a count nor "any"`, `write a number in ${L.minCpus}..${L.maxCpus} without quotes, or "any" when the scenario's point does not depend on the count`) }),
    int('cpus', L.minCpus, L.maxCpus, '2 (or "any" when the scenario\'s point does not depend on the count)'),
  ], (v) => (typeof v === 'string' && !/^[0-9]+$/.test(v) ? 0 : 1)),
  perf_event_mlock_kb: int('perf_event_mlock_kb', 0, L.maxMlockKb, '516').default(SCENARIO_DEFAULTS.perf_event_mlock_kb),
  paranoid: int('paranoid', L.minParanoid, L.maxParanoid, '2').default(SCENARIO_DEFAULTS.paranoid),
  rlimit_memlock_kb: memlockKb('rlimit_memlock_kb').default(SCENARIO_DEFAULTS.rlimit_memlock_kb),
  cap_ipc_lock: bool('cap_ipc_lock').default(SCENARIO_DEFAULTS.cap_ipc_lock),
  uid: oneOf(['fresh', 'root'] as const, 'uid').default(SCENARIO_DEFAULTS.uid),
  fault_injection: bool('fault_injection').default(SCENARIO_DEFAULTS.fault_injection),
  ops: z
    .array(opSchema, { error: (iss) => (iss.input === undefined ? explain('missing op list', 'add "ops": [{"op": "probe"}]') : explain(`ops must be an array, got ${show(iss.input)}`, 'write "ops": [ {"op": ...}, ... ]')) })
    .min(1, { error: explain('ops is empty', 'add at least one op, e.g. {"op": "probe"}') })
    .max(L.maxOps, { error: (iss) => explain(`${(iss.input as unknown[]).length} ops is more than ${L.maxOps}`, `split the scenario; at most ${L.maxOps} ops each`) }),
}, 'a scenario', 'write {"id": ..., "description": ..., "cpus": ..., "ops": [...]}')
  .superRefine((s, ctx) => {
    if (s.fault_injection) return;
    s.ops.forEach((o, i) => {
      if (o.op !== 'hang' && o.op !== 'sysrq') return;
      ctx.addIssue({ code: 'custom', path: ['ops', i, 'op'], message: explain(`"${o.op}" is a fault-injection op (it exists to test the runner${o.op === 'sysrq' ? ' and can crash the machine' : ''})`, 'remove it, or set "fault_injection": true at the top of a scenario meant only for VMs') });
    });
  });

/**
 * Field names older scenario files use, and the kernel's names that replaced
 * them (#11: perf_event_mlock_kb is the sysctl, RLIMIT_MEMLOCK the rlimit).
 * Still read, with a deprecation notice.
 */
export const DEPRECATED_FIELDS = {
  top: { mlock_kb: 'perf_event_mlock_kb', rlimit_kb: 'rlimit_memlock_kb' },
  rlimit: { memlock_kb: 'rlimit_memlock_kb' },
} as const;

/**
 * A copy of a parsed scenario object with deprecated field names replaced,
 * and one notice line per replacement ("<file>: <field>: ... is deprecated;
 * use ..."). Giving both names of one field is a ConfigError. Pure.
 */
export function renameDeprecated(obj: unknown, file: string): { obj: unknown; notices: string[]; renamed: Map<string, string> } {
  const notices: string[] = [];
  /** new field path -> the path the file wrote */
  const renamed = new Map<string, string>();
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const rename = (o: Record<string, unknown>, table: Record<string, string>, at: string): Record<string, unknown> => {
    let out = o;
    for (const [old, now] of Object.entries(table)) {
      if (!Object.prototype.hasOwnProperty.call(o, old)) continue;
      const field = at === '' ? old : `${at}.${old}`;
      if (Object.prototype.hasOwnProperty.call(o, now)) throw new ConfigError(file, field, `both "${old}" and its new name "${now}" are given`, `keep only "${now}"`);
      if (out === o) out = { ...o };
      out[now] = out[old];
      delete out[old];
      notices.push(`${file}: ${field}: "${old}" is deprecated; use "${now}" (the kernel's name)`);
      renamed.set(at === '' ? now : `${at}.${now}`, field);
    }
    return out;
  };
  if (!isObj(obj)) return { obj, notices, renamed };
  const top = rename(obj, DEPRECATED_FIELDS.top, '');
  if (Array.isArray(top.ops) && top.ops.some((o) => isObj(o) && o.op === 'rlimit')) {
    top.ops = (top.ops as unknown[]).map((o, i) => (isObj(o) && o.op === 'rlimit' ? rename(o, DEPRECATED_FIELDS.rlimit, `ops[${i}]`) : o));
    if (top === obj) return { obj: { ...top }, notices, renamed };
  }
  return { obj: top, notices, renamed };
}

/**
 * Validate one parsed scenario file. `file` names it in errors. Returns the
 * source with defaults filled, and the deprecation notices of old field
 * names (renameDeprecated); throws ConfigError on anything else.
 */
export function validateScenarioWithNotices(obj: unknown, file: string): { source: ScenarioSource; notices: string[] } {
  const r = renameDeprecated(obj, file);
  try {
    return { source: parseOrThrow(scenarioSchema, r.obj, file) as ScenarioSource, notices: r.notices };
  } catch (e) {
    // an error in a renamed field names the field as the file wrote it
    const old = e instanceof ConfigError ? r.renamed.get(e.field) : undefined;
    if (old === undefined || !(e instanceof ConfigError)) throw e;
    throw new ConfigError(e.file, old, e.problem, e.fix);
  }
}

/** validateScenarioWithNotices without the notices. */
export function validateScenario(obj: unknown, file: string): ScenarioSource {
  return validateScenarioWithNotices(obj, file).source;
}
