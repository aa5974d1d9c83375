// The scenario file format: what users write (harness/scenarios/README.md).
// A strict, hand-written validator from untrusted JSON to a typed source
// scenario with defaults filled in. Sugar (counts, "each", "L") is kept here
// and compiled away by load.ts, which also checks the script's flow (buffer
// names, online CPUs, op count). Pure: no I/O.
//
// Every bad input is a ConfigError(file, field path, problem, fix); nothing
// else may escape validateScenario() for any input value.

import { ConfigError } from '../util/errors.ts';
import type { SysctlName } from './ops.ts';

// ---------------------------------------------------------------------------
// Limits and defaults

export const SCENARIO_DEFAULTS = {
  mlock_kb: 516,
  paranoid: 2,
  /** The default hard RLIMIT_MEMLOCK: root here cannot raise its hard limit above it. */
  rlimit_kb: 8192,
  cap_ipc_lock: false,
  fault_injection: false,
} as const;

export const SCENARIO_LIMITS = {
  /** compiled ops per scenario (after counts and "each" are expanded) */
  maxOps: 200_000,
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
  /** entries of an explicit perf ballast `buffers` list */
  maxBallastBuffers: 4096,
  /** `count` of map / remap */
  maxCount: 200_000,
  /** seconds of a `hang` op */
  maxHangSeconds: 3600,
  maxDescription: 200,
} as const;

/** Identifiers (scenario ids, buffer names), as the reproducer accepts them. */
export const IDENT_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const SYSRQ_KEY_RE = /^[A-Za-z0-9]$/;
/** `pages` relative to user_lock_limit: "L", "L+N", "L-N". */
const L_RE = /^L(?:([+-])(0|[1-9][0-9]{0,8}))?$/;
/** C0 / DEL / C1 controls and the Unicode line and paragraph separators. */
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** Characters a shell gives a meaning to (besides blanks): quoting, expansion, globbing, control operators. */
const SHELL_META_RE = /[`$;|&<>()\\'"*?!{}[\]~#]/;

export const SYSCTL_NAMES: readonly SysctlName[] = ['perf_event_mlock_kb', 'perf_event_paranoid'];
export const OP_NAMES = ['ballast', 'map', 'remap', 'unmap', 'unmap_part', 'map_output', 'uring', 'probe', 'exit', 'rlimit', 'sysctl', 'cpu', 'hang', 'sysrq', 'aux_ring', 'aux_map', 'aux_unmap'] as const;
/** Ballast kinds: who charges what (see ops.ts). */
export const BALLAST_VIAS = ['perf', 'io_uring', 'bpf', 'memfd_secret'] as const;
export type SourceOpName = (typeof OP_NAMES)[number];

// ---------------------------------------------------------------------------
// The validated source

/** A page count, or one relative to user_lock_limit at that point of the script ("L-4" = { fromL: -4 }). */
export type PagesSpec = number | { fromL: number };

/** Which CPU(s) a `map` uses: one CPU id, one buffer per online CPU, or `count` buffers spread over the online CPUs. */
export type CpuSpec = number | 'each' | 'round-robin';

export type SourceOp =
  | { op: 'ballast'; via: 'perf'; pages: PagesSpec }
  | { op: 'ballast'; via: 'perf'; buffers: number[] }
  | { op: 'ballast'; via: 'io_uring' | 'bpf' | 'memfd_secret'; pages: PagesSpec }
  | { op: 'uring'; pages: number }
  | { op: 'unmap_part'; buf: string }
  | { op: 'map_output'; buf: string; to: string }
  | { op: 'exit' }
  | { op: 'map'; buf: string; cpu: CpuSpec; data_pages: number; count?: number }
  | { op: 'remap'; buf: string; count?: number }
  | { op: 'unmap'; buf: string }
  | { op: 'probe' }
  | { op: 'rlimit'; memlock_kb: number | null }
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
  mlock_kb: number;
  paranoid: number;
  rlimit_kb: number | null;
  cap_ipc_lock: boolean;
  /** must be true for `hang` and `sysrq` ops (they exist to test the runner; sysrq can crash the machine) */
  fault_injection: boolean;
  ops: SourceOp[];
}

const TOP_FIELDS = ['id', 'description', 'cpus', 'mlock_kb', 'paranoid', 'rlimit_kb', 'cap_ipc_lock', 'fault_injection', 'ops'] as const;

/** Fields each op accepts (besides `op`); required ones first. */
const OP_FIELDS: Record<SourceOpName, { required: readonly string[]; optional: readonly string[] }> = {
  ballast: { required: ['via'], optional: ['pages', 'buffers'] },
  map: { required: ['buf', 'cpu', 'data_pages'], optional: ['count'] },
  remap: { required: ['buf'], optional: ['count'] },
  unmap: { required: ['buf'], optional: [] },
  unmap_part: { required: ['buf'], optional: [] },
  map_output: { required: ['buf', 'to'], optional: [] },
  uring: { required: ['pages'], optional: [] },
  probe: { required: [], optional: [] },
  exit: { required: [], optional: [] },
  rlimit: { required: ['memlock_kb'], optional: [] },
  sysctl: { required: ['name', 'value'], optional: [] },
  cpu: { required: ['cpu', 'online'], optional: [] },
  hang: { required: ['seconds'], optional: [] },
  sysrq: { required: ['key'], optional: [] },
  aux_ring: { required: ['buf', 'cpu', 'data_pages'], optional: [] },
  aux_map: { required: ['buf', 'pages'], optional: [] },
  aux_unmap: { required: ['buf'], optional: [] },
};

// ---------------------------------------------------------------------------
// Small helpers (exported for load.ts)

/** The JSON-ish type name of any value, for messages. */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isFinite(v) ? 'number' : String(v);
  return typeof v;
}

/** A short, printable rendering of any value for messages (control characters escaped, truncated). */
export function show(v: unknown): string {
  let s: string;
  switch (typeof v) {
    case 'string':
      s = JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
      // JSON.stringify leaves U+2028/2029 and C1 controls raw: escape them too.
      return s.replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    case 'number':
      return Object.is(v, -0) ? '0' : String(v);
    case 'boolean':
      return String(v);
    case 'undefined':
      return 'undefined';
    case 'object':
      if (v === null) return 'null';
      return Array.isArray(v) ? `an array of ${v.length}` : 'an object';
    default:
      return `a ${typeof v}`;
  }
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** Levenshtein distance, for "did you mean" on unknown fields and op names. */
function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function didYouMean(got: string, options: readonly string[]): string {
  let best: string | undefined;
  let bestD = 3;
  for (const o of options) {
    const d = editDistance(got.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return best === undefined ? '' : `did you mean "${best}"? `;
}

const list = (xs: readonly string[]): string => xs.map((x) => `"${x}"`).join(', ');

// ---------------------------------------------------------------------------
// The validator

/** Reads typed fields of one object and throws a ConfigError naming `path.field` on anything wrong. */
class Reader {
  constructor(
    readonly file: string,
    readonly path: string,
    readonly obj: Record<string, unknown>,
  ) {}

  at(field: string): string {
    return this.path === '' ? field : `${this.path}.${field}`;
  }

  fail(field: string, problem: string, fix: string): never {
    throw new ConfigError(this.file, this.at(field), problem, fix);
  }

  has(field: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.obj, field);
  }

  get(field: string): unknown {
    return this.has(field) ? this.obj[field] : undefined;
  }

  /** Every own key must be one of `allowed`. */
  onlyFields(allowed: readonly string[], what: string): void {
    for (const k of Object.keys(this.obj)) {
      if (!allowed.includes(k)) {
        this.fail(k, `unknown field ${show(k)} in ${what}`, `${didYouMean(k, allowed)}remove it; ${what} takes ${list(allowed)}`);
      }
    }
  }

  required(field: string, what: string, example: string): unknown {
    if (!this.has(field) || this.obj[field] === undefined) this.fail(field, `missing ${what}`, `add "${field}": ${example}`);
    return this.obj[field];
  }

  int(field: string, min: number, max: number, what: string, v: unknown = this.get(field)): number {
    if (typeof v !== 'number') this.fail(field, `${what} must be a whole number, got ${typeName(v)} ${show(v)}`, `write a number in ${min}..${max} without quotes`);
    if (!Number.isInteger(v)) this.fail(field, `${what} must be a whole number, got ${show(v)}`, `use a whole number in ${min}..${max}`);
    if (v < min || v > max) this.fail(field, `${what} ${show(v)} is out of range`, `use a whole number in ${min}..${max}`);
    return v === 0 ? 0 : v; // no -0
  }

  bool(field: string, what: string, v: unknown = this.get(field)): boolean {
    if (typeof v !== 'boolean') this.fail(field, `${what} must be true or false, got ${typeName(v)} ${show(v)}`, 'write true or false without quotes');
    return v;
  }

  /** A string free of control characters and shell metacharacters. */
  safeString(field: string, what: string, v: unknown = this.get(field)): string {
    if (typeof v !== 'string') this.fail(field, `${what} must be a string, got ${typeName(v)} ${show(v)}`, 'write it in double quotes');
    if (CONTROL_RE.test(v)) this.fail(field, `${what} contains a control character (newline, tab, escape...)`, 'keep it to one line of printable text');
    const m = SHELL_META_RE.exec(v);
    if (m) this.fail(field, `${what} contains the shell metacharacter ${show(m[0])}`, 'use letters, digits, blanks and . , : / + - = % @ ^ only');
    return v;
  }

  ident(field: string, what: string, v: unknown = this.get(field)): string {
    const s = this.safeString(field, what, v);
    if (!IDENT_RE.test(s)) this.fail(field, `${what} ${show(s)} is not 1..64 of A-Z a-z 0-9 _ . -`, 'rename it using only letters, digits, "_", "." and "-" (at most 64)');
    return s;
  }

  oneOf<T extends string>(field: string, options: readonly T[], what: string, v: unknown = this.get(field)): T {
    if (typeof v !== 'string') this.fail(field, `${what} must be a string, one of ${list(options)}; got ${typeName(v)} ${show(v)}`, `write one of ${list(options)}`);
    if (!(options as readonly string[]).includes(v)) this.fail(field, `${what} ${show(v)} is not one of ${list(options)}`, `${didYouMean(v, options)}use one of ${list(options)}`);
    return v as T;
  }

  /** data pages of a ring buffer: 0 or a power of two, at most maxDataPages. */
  dataPages(field: string, v: unknown = this.get(field)): number {
    const max = SCENARIO_LIMITS.maxDataPages;
    const n = this.int(field, 0, max, 'data_pages', v);
    if (n !== 0 && !isPowerOfTwo(n)) this.fail(field, `data_pages ${n} is neither 0 nor a power of two (perf_mmap() refuses it with EINVAL)`, `use 0 (header only) or one of 1, 2, 4, ..., ${max}`);
    return n;
  }

  /** `pages`: a whole number or "L", "L+N", "L-N". */
  pages(field: string): PagesSpec {
    const v = this.get(field);
    if (typeof v === 'string') {
      const m = L_RE.exec(v);
      if (!m) this.fail(field, `pages ${show(v)} is neither a number nor "L", "L+N" or "L-N"`, 'write a page count such as 256, or "L" to fill the per-user counter to user_lock_limit (optionally "L-4", "L+100")');
      const off = m[2] === undefined ? 0 : Number(m[2]);
      return { fromL: m[1] === '-' && off !== 0 ? -off : off };
    }
    return this.int(field, 0, SCENARIO_LIMITS.maxBallastPages, 'pages', v);
  }
}

function asObject(file: string, path: string, v: unknown, what: string, fix: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw new ConfigError(file, path, `${what} must be a JSON object, got ${typeName(v)}`, fix);
  return v;
}

/**
 * Validate one parsed scenario file. `file` names it in errors. Returns the
 * source with defaults filled; throws ConfigError on anything else.
 */
export function validateScenario(obj: unknown, file: string): ScenarioSource {
  const top: Reader = new Reader(file, '', asObject(file, '', obj, 'a scenario', 'write {"id": ..., "description": ..., "cpus": ..., "ops": [...]}'));
  top.onlyFields(TOP_FIELDS, 'a scenario');

  const id = top.ident('id', 'id', top.required('id', 'scenario id', '"my-scenario"'));
  const descV = top.required('description', 'description', '"one line: what it reproduces and which logics it tells apart"');
  const description = top.safeString('description', 'description', descV);
  if (description.trim() === '') top.fail('description', 'description is empty', 'say in one line what the scenario reproduces and which logics it tells apart');
  if (description.length > SCENARIO_LIMITS.maxDescription) {
    top.fail('description', `description is ${description.length} characters long`, `keep it to one line of at most ${SCENARIO_LIMITS.maxDescription}`);
  }
  const L = SCENARIO_LIMITS;
  const cpusV = top.required('cpus', 'number of online CPUs (or "any")', '2');
  const cpus: number | 'any' = cpusV === 'any' ? 'any' : top.int('cpus', L.minCpus, L.maxCpus, 'cpus (a count, or "any" when the scenario\'s point does not depend on it)', cpusV);
  const mlock_kb = top.has('mlock_kb') ? top.int('mlock_kb', 0, L.maxMlockKb, 'mlock_kb') : SCENARIO_DEFAULTS.mlock_kb;
  const paranoid = top.has('paranoid') ? top.int('paranoid', L.minParanoid, L.maxParanoid, 'paranoid') : SCENARIO_DEFAULTS.paranoid;
  let rlimit_kb: number | null = SCENARIO_DEFAULTS.rlimit_kb;
  if (top.has('rlimit_kb')) {
    const v = top.get('rlimit_kb');
    rlimit_kb = v === null ? null : top.int('rlimit_kb', 0, L.maxRlimitKb, 'rlimit_kb (null = unlimited)', v);
  }
  const cap_ipc_lock = top.has('cap_ipc_lock') ? top.bool('cap_ipc_lock', 'cap_ipc_lock') : SCENARIO_DEFAULTS.cap_ipc_lock;
  const fault_injection = top.has('fault_injection') ? top.bool('fault_injection', 'fault_injection') : SCENARIO_DEFAULTS.fault_injection;

  const opsV = top.required('ops', 'op list', '[{"op": "probe"}]');
  if (!Array.isArray(opsV)) top.fail('ops', `ops must be an array, got ${typeName(opsV)}`, 'write "ops": [ {"op": ...}, ... ]');
  if (opsV.length === 0) top.fail('ops', 'ops is empty', 'add at least one op, e.g. {"op": "probe"}');
  if (opsV.length > L.maxOps) top.fail('ops', `${opsV.length} ops is more than ${L.maxOps}`, `split the scenario; at most ${L.maxOps} ops each`);

  const ops: SourceOp[] = new Array(opsV.length);
  for (let i = 0; i < opsV.length; i++) {
    // Holes in a sparse array read as undefined: reported as a non-object.
    ops[i] = validateOp(file, `ops[${i}]`, opsV[i], fault_injection);
  }
  return { id, description, cpus, mlock_kb, paranoid, rlimit_kb, cap_ipc_lock, fault_injection, ops };
}

function validateOp(file: string, path: string, v: unknown, faultInjection: boolean): SourceOp {
  const r: Reader = new Reader(file, path, asObject(file, path, v, 'an op', `write {"op": one of ${list(OP_NAMES)}, ...}`));
  const op = r.oneOf('op', OP_NAMES, 'op', r.required('op', 'op name', '"map"'));
  const f = OP_FIELDS[op];
  r.onlyFields(['op', ...f.required, ...f.optional], `a "${op}" op`);
  for (const k of f.required) r.required(k, `"${k}" of a "${op}" op`, exampleFor(op, k));
  const L = SCENARIO_LIMITS;

  switch (op) {
    case 'ballast': {
      const via = r.oneOf('via', BALLAST_VIAS, 'via');
      const hasPages = r.has('pages');
      const hasBuffers = r.has('buffers');
      if (via !== 'perf') {
        if (hasBuffers) r.fail('buffers', `an ${via} ballast takes "pages", not "buffers"`, 'remove "buffers" and give "pages"');
        if (!hasPages) r.fail('pages', `missing "pages" of an ${via} ballast`, 'add "pages": 100');
        return { op, via, pages: r.pages('pages') };
      }
      if (hasPages === hasBuffers) {
        r.fail(hasPages ? 'buffers' : 'pages', hasPages ? 'a perf ballast takes "pages" or "buffers", not both' : 'missing "pages" (or "buffers") of a perf ballast', 'give either "pages": N or "L", or "buffers": [data pages of each ring buffer]');
      }
      if (hasPages) return { op, via, pages: r.pages('pages') };
      const bv = r.get('buffers');
      if (!Array.isArray(bv)) r.fail('buffers', `buffers must be an array of data-page counts, got ${typeName(bv)}`, 'write e.g. "buffers": [256, 0]');
      if (bv.length > L.maxBallastBuffers) r.fail('buffers', `${bv.length} buffers is more than ${L.maxBallastBuffers}`, `use "pages" instead, or at most ${L.maxBallastBuffers} entries`);
      const buffers = new Array<number>(bv.length);
      let total = 0;
      for (let k = 0; k < bv.length; k++) {
        buffers[k] = r.dataPages(`buffers[${k}]`, bv[k]);
        total += buffers[k]! + 1;
      }
      if (total > L.maxBallastPages) r.fail('buffers', `the buffers cost ${total} pages, more than ${L.maxBallastPages}`, `ballast at most ${L.maxBallastPages} pages per op`);
      return { op, via, buffers };
    }
    case 'map': {
      const buf = r.ident('buf', 'buffer name');
      const cv = r.get('cpu');
      let cpu: CpuSpec;
      if (typeof cv === 'string') cpu = r.oneOf('cpu', ['each', 'round-robin'] as const, 'cpu');
      else cpu = r.int('cpu', 0, L.maxCpus - 1, 'cpu (a CPU id, "each" or "round-robin")', cv);
      const data_pages = r.dataPages('data_pages');
      if (cpu === 'each') {
        if (r.has('count')) r.fail('count', '"cpu": "each" maps one buffer per online CPU, so it takes no "count"', 'remove "count", or use "cpu": "round-robin" with a count');
        return { op, buf, cpu, data_pages };
      }
      if (cpu === 'round-robin' && !r.has('count')) r.fail('count', '"cpu": "round-robin" needs a "count"', 'add "count": N (buffers named BUF0..BUF{N-1}), or use "cpu": "each"');
      if (!r.has('count')) return { op, buf, cpu, data_pages };
      return { op, buf, cpu, data_pages, count: r.int('count', 1, L.maxCount, 'count') };
    }
    case 'remap': {
      const buf = r.ident('buf', 'buffer name');
      if (!r.has('count')) return { op, buf };
      return { op, buf, count: r.int('count', 1, L.maxCount, 'count') };
    }
    case 'unmap_part':
      return { op, buf: r.ident('buf', 'buffer name') };
    case 'aux_ring':
      return { op, buf: r.ident('buf', 'buffer name'), cpu: r.int('cpu', 0, L.maxCpus - 1, 'cpu'), data_pages: r.dataPages('data_pages') };
    case 'aux_map': {
      const buf = r.ident('buf', 'buffer name');
      const pages = r.int('pages', 1, L.maxDataPages, 'pages');
      if (!isPowerOfTwo(pages)) r.fail('pages', `an AUX area of ${pages} pages is not a power of two (perf_mmap() refuses it with EINVAL)`, `use one of 1, 2, 4, ..., ${L.maxDataPages}`);
      return { op, buf, pages };
    }
    case 'aux_unmap':
      return { op, buf: r.ident('buf', 'buffer name') };
    case 'map_output':
      return { op, buf: r.ident('buf', 'buffer name'), to: r.ident('to', 'buffer name to redirect to') };
    case 'uring':
      return { op, pages: r.int('pages', 1, L.maxBallastPages, 'pages') };
    case 'unmap': {
      const bv = r.get('buf');
      return { op, buf: bv === '*' ? '*' : r.ident('buf', 'buffer name (or "*" for all)', bv) };
    }
    case 'probe':
    case 'exit':
      return { op };
    case 'rlimit': {
      const v = r.get('memlock_kb');
      return { op, memlock_kb: v === null ? null : r.int('memlock_kb', 0, L.maxRlimitKb, 'memlock_kb (null = unlimited)', v) };
    }
    case 'sysctl': {
      const name = r.oneOf('name', SYSCTL_NAMES, 'sysctl name');
      const value =
        name === 'perf_event_mlock_kb'
          ? r.int('value', 0, L.maxMlockKb, 'perf_event_mlock_kb')
          : r.int('value', L.minParanoid, L.maxParanoid, 'perf_event_paranoid');
      return { op, name, value };
    }
    case 'cpu':
      return { op, cpu: r.int('cpu', 0, L.maxCpus - 1, 'cpu'), online: r.bool('online', 'online') };
    case 'hang':
    case 'sysrq': {
      if (!faultInjection) r.fail('op', `"${op}" is a fault-injection op (it exists to test the runner${op === 'sysrq' ? ' and can crash the machine' : ''})`, 'remove it, or set "fault_injection": true at the top of a scenario meant only for VMs');
      if (op === 'hang') return { op, seconds: r.int('seconds', 0, L.maxHangSeconds, 'seconds') };
      const key = r.safeString('key', 'sysrq key');
      if (!SYSRQ_KEY_RE.test(key)) r.fail('key', `sysrq key ${show(key)} is not one letter or digit`, 'use one letter or digit, e.g. "c"');
      return { op, key };
    }
  }
}

function exampleFor(op: SourceOpName, field: string): string {
  const ex: Record<string, string> = {
    via: '"perf" (or "io_uring", "bpf", "memfd_secret")',
    to: '"a"',
    pages: '100',
    buf: '"a"',
    cpu: op === 'map' ? '0 (or "each", "round-robin")' : op === 'aux_ring' ? '0' : '1',
    data_pages: '2',
    memlock_kb: '64 (or null for unlimited)',
    name: '"perf_event_mlock_kb"',
    value: '260',
    online: 'false',
    seconds: '5',
    key: '"c"',
  };
  return ex[field] ?? '...';
}
