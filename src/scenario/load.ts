// Scenario files to CompiledScenario: validation (schema.ts), then the sugar
// compiled away (counts, "each"/"round-robin", "L" ballasts) while the
// script's flow is checked the way the reproducer and the simulator would
// meet it: buffer names open/closed, CPUs online, the live user_lock_limit.
// Loaders for one file, a directory and the built-in set; a stable hash.

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELPER_RLIMIT_MEMLOCK_KB } from './ops.ts';
import { ConfigError } from '../util/errors.ts';
import { parseJsonStrict } from '../util/json.ts';
import { type CompiledScenario, type Feature, type Op, type SysctlName, ballastBuffers, hasFaultInjection, userLockLimit } from './ops.ts';
import { type DataPagesSpec, type PagesSpec, SCENARIO_LIMITS, type ScenarioSource, show, validateScenarioWithNotices } from './schema.ts';

/** A scenario file, loaded: its source (defaults filled) and what it compiles to. */
export interface LoadedScenario {
  id: string;
  description: string;
  /** absolute path of the file (or the name given to compileScenario) */
  file: string;
  source: ScenarioSource;
  compiled: CompiledScenario;
  /** scenarioHash(compiled) */
  hash: string;
  needs: ScenarioNeeds;
}

/** What a machine must offer to run a compiled scenario (src/scenario/skip.ts compares it with an Offer). */
export interface ScenarioNeeds {
  /** num_online_cpus() at start */
  cpus: number;
  /** the count is open ("cpus": "any"): any online count fits */
  cpusAny: boolean;
  /** CPUs whose online state the scenario changes (CPU hotplug: VM only in practice) */
  hotplugCpus: number[];
  /** largest RLIMIT_MEMLOCK in kB the worker sets (start or rlimit op), and the helpers' HELPER_RLIMIT_MEMLOCK_KB when the scenario starts any; ignoring unlimited; null if none is finite */
  rlimitKbMax: number | null;
  /** the worker asks for an unlimited RLIMIT_MEMLOCK somewhere */
  rlimitUnlimited: boolean;
  /** the sysctl values the scenario starts at (always written where sysctls are writable) */
  start: { perf_event_mlock_kb: number; perf_event_paranoid: number };
  /** sysctls the scenario writes mid-run */
  sysctls: SysctlName[];
  /** kernel features its ops use: io_uring (ballast via io_uring, uring), bpf, memfd_secret */
  features: Feature[];
  /** an io_uring ballast or uring op (needs io_uring enabled) */
  ioUring: boolean;
  /** hang / sysrq ops: never on a host */
  faultInjection: boolean;
  /** runs as uid 0 ("uid": "root"): a guest only (root's per-user record is the machine's and lives until reboot) */
  rootUid: boolean;
}

/** Larger single ring buffers than this are not asked of a ballast helper (see SCENARIO_LIMITS.maxDataPages). */
const MAX_BALLAST_DATA = SCENARIO_LIMITS.maxDataPages;

/**
 * ballastBuffers(n) with no buffer above MAX_BALLAST_DATA data pages: equal
 * to ballastBuffers(n) for n <= 2 * 65536 + 1 (the greedy split never picks
 * more there); above, whole 65537-page buffers first.
 */
export function cappedBallastBuffers(pages: number): number[] {
  const out: number[] = [];
  let left = pages;
  while (left > 2 * MAX_BALLAST_DATA + 1) {
    out.push(MAX_BALLAST_DATA);
    left -= MAX_BALLAST_DATA + 1;
  }
  for (const d of ballastBuffers(left)) out.push(d);
  return out;
}

/** The count a `"cpus": "any"` scenario is compiled for when no run says otherwise (VM boots, `simulate`). */
export const DEFAULT_ANY_CPUS = 2;

/** compiled scenario -> its source and file, so compileAtCpus / compileAtPageSize can recompile it */
const anySources = new WeakMap<CompiledScenario, { source: ScenarioSource; file: string }>();

/**
 * Validate and compile; returns the source too. A `"cpus": "any"` scenario is
 * compiled for DEFAULT_ANY_CPUS (and checked to compile for 1 CPU, so its ops
 * name no CPU a 1-CPU machine lacks). Throws ConfigError only.
 */
export function compileSource(obj: unknown, file: string): { source: ScenarioSource; compiled: CompiledScenario; notices: string[] } {
  const { source, notices } = validateScenarioWithNotices(obj, file);
  if (source.cpus === 'any') compileValidated(source, file, 1);
  const compiled = compileValidated(source, file);
  anySources.set(compiled, { source, file });
  return { source, compiled, notices };
}

/**
 * The scenario compiled for a kernel with `pageKb` kB pages (4, 16, 64):
 * "L" ballasts follow user_lock_limit = (perf_event_mlock_kb >> (PAGE_SHIFT - 10))
 * * num_online_cpus() (kernel/events/core.c perf_mmap()), "bytes" and
 * "data_bytes" sizes become pages of that size. A scenario whose ops do not
 * depend on the page size comes back as it is (same hash); one that does
 * carries `page_kb`. Throws ConfigError when its source is not at hand (a
 * results file's stored def) or a size does not fit at that page size.
 */
export function compileAtPageSize(s: CompiledScenario, pageKb: number): CompiledScenario {
  if ((s.page_kb ?? 4) === pageKb) return s;
  const from = anySources.get(s);
  if (!from) throw new ConfigError(s.id, 'page_kb', `scenario ${s.id} is not at hand as a source to compile it for ${pageKb} kB pages`, 'load it from its scenario file');
  const compile = (kb: number): CompiledScenario => {
    const c = compileValidated(from.source, from.file, s.cpus, kb);
    anySources.set(c, from);
    return c;
  };
  // the 4 kB compile is the page-independent form: a scenario whose ops do not change keeps it (and its hash)
  const at4 = (s.page_kb ?? 4) === 4 ? s : compile(4);
  if (pageKb === 4) return at4;
  const out = compile(pageKb);
  return canonicalJson(out.ops) === canonicalJson(at4.ops) ? at4 : out;
}

/**
 * The scenario compiled for `cpus` online CPUs: a `cpus_any` scenario is
 * recompiled (its "each" spreads and "L" ballasts follow the count: user_lock_limit =
 * (perf_event_mlock_kb >> (PAGE_SHIFT - 10)) * num_online_cpus(), kernel/events/core.c perf_mmap()),
 * a pinned one is returned as is. Throws ConfigError when an "any" scenario
 * did not come from compileSource (e.g. a results file's stored def) and the count differs.
 */
export function compileAtCpus(s: CompiledScenario, cpus: number): CompiledScenario {
  if (!s.cpus_any || s.cpus === cpus) return s;
  const from = anySources.get(s);
  if (!from) throw new ConfigError(s.id, 'cpus', `scenario ${s.id} says "cpus": "any" but its source is not at hand to compile it for ${cpus} CPUs`, 'load it from its scenario file');
  const out = compileValidated(from.source, from.file, cpus, s.page_kb ?? 4);
  anySources.set(out, from);
  return out;
}

/** Validate a parsed scenario object (from JSON) and compile it. `file` names it in errors. */
export function compileScenario(obj: unknown, file: string): CompiledScenario {
  return compileSource(obj, file).compiled;
}

function compileValidated(src: ScenarioSource, file: string, cpusAt: number = DEFAULT_ANY_CPUS, pageKb = 4): CompiledScenario {
  const nCpus = src.cpus === 'any' ? cpusAt : src.cpus;
  const fail = (field: string, problem: string, fix: string): never => {
    throw new ConfigError(file, field, problem, fix);
  };
  const max = SCENARIO_LIMITS.maxOps;
  const out: Op[] = [];
  const room = (path: string, n: number): void => {
    if (out.length + n > max) {
      fail(path, `the scenario compiles to more than ${max} ops (${out.length} before this one, which adds ${n})`, `lower the counts; at most ${max} compiled ops per scenario`);
    }
  };

  // Live state, as the script runs.
  let mlockKb = src.perf_event_mlock_kb;
  /** helpers (same uid) in start order (ballast and handoff ops): alive until a kill or the scenario's end */
  const helperLive: boolean[] = [];
  const helperAlive = (): boolean => helperLive.includes(true);
  /** helper name -> its compiled indices (a handoff over several CPUs starts one helper per ring) and the op that named it */
  const helperNames = new Map<string, { indices: number[]; path: string }>();
  const startHelpers = (path: string, name: string | undefined, n: number): void => {
    const indices = Array.from({ length: n }, (_, k) => helperLive.length + k);
    for (let k = 0; k < n; k++) helperLive.push(true);
    if (name === undefined) return;
    const by = helperNames.get(name);
    if (by !== undefined) fail(`${path}.helper`, `helper name ${show(name)} is already used by ${by.path}`, 'give each helper its own name');
    helperNames.set(name, { indices, path });
  };
  const online: boolean[] = Array.from({ length: nCpus }, () => true);
  /** CPU id -> the op that took it offline */
  const offlinedBy = new Map<number, string>();
  const onlineCpus = (): number[] => online.flatMap((on, c) => (on ? [c] : []));
  /** open buffer name -> op path that opened it */
  const open = new Map<string, string>();
  /** closed buffer name -> op path that closed it */
  const closed = new Map<string, string>();
  /** open buffer name -> its data pages */
  const dataPagesOf = new Map<string, number>();
  /** aux_ring buffers still open -> AUX mappings the script made and has not unmapped */
  const auxLive = new Map<string, number>();
  /** buffers opened by map_output: may fail (EBUSY) depending on the kernel, so later ops cannot name them */
  const outputs = new Map<string, string>();
  const notOutput = (path: string, name: string, what: string): void => {
    const by = outputs.get(name);
    if (by !== undefined && open.has(name)) {
      fail(`${path}.buf`, `${what} of buffer ${show(name)}, which ${by} mapped with map_output (its mmap fails with EBUSY on some kernels)`, 'release it with {"op": "unmap", "buf": "*"} or an exit, or name a buffer mapped with map');
    }
  };

  const openBuf = (path: string, name: string): void => {
    const by = open.get(name);
    if (by !== undefined) {
      fail(`${path}.buf`, `buffer ${show(name)} is still open (mapped by ${by})`, `unmap it first ({"op": "unmap", "buf": ${JSON.stringify(name)}}) or use another name`);
    }
    open.set(name, path);
    closed.delete(name);
  };
  const needOpen = (path: string, name: string, what: string, field = 'buf'): void => {
    if (open.has(name)) return;
    const by = closed.get(name);
    fail(
      `${path}.${field}`,
      by === undefined ? `${what} of buffer ${show(name)}, which no earlier op maps` : `${what} of buffer ${show(name)}, which ${by} already unmapped`,
      `map it first ({"op": "map", "buf": ${JSON.stringify(name)}, ...}) or name an open buffer`,
    );
  };
  const needOnline = (path: string, cpu: number): void => {
    if (cpu >= nCpus) {
      fail(path, `CPU ${cpu} does not exist: the scenario has cpus ${src.cpus === 'any' ? `"any" (checked at ${nCpus})` : nCpus} (ids 0..${nCpus - 1})`,
        src.cpus === 'any' ? 'an "any" scenario runs on 1 CPU too: use CPU 0, "each" or "round-robin", or pin "cpus"' : `use a CPU id below ${nCpus}, or raise "cpus"`);
    }
  };
  const pagesOf = (path: string, p: PagesSpec): number => {
    if (typeof p === 'number') return p;
    if ('bytes' in p) return Math.ceil(p.bytes / (pageKb * 1024));
    const L = userLockLimit(mlockKb, onlineCpus().length, pageKb);
    const n = L + p.fromL;
    const lim = SCENARIO_LIMITS.maxBallastPages;
    if (n < 0) fail(path, `"L${p.fromL < 0 ? p.fromL : `+${p.fromL}`}" is ${n} pages here (user_lock_limit is ${L} pages at this point)`, `use an offset of at least -${L}`);
    if (n > lim) fail(path, `"L${p.fromL < 0 ? p.fromL : `+${p.fromL}`}" is ${n} pages here, more than ${lim}`, `ballast at most ${lim} pages per op`);
    return n;
  };

  /** The CPU of each ring a `map` / `handoff` makes: one CPU `count` times, one per online CPU, or `count` round-robin. */
  const cpusOf = (path: string, cpu: number | 'each' | 'round-robin', count: number | undefined): number[] => {
    const up = onlineCpus();
    if (cpu === 'each') return up;
    if (cpu === 'round-robin') {
      room(path, count!);
      return Array.from({ length: count! }, (_, j) => up[j % up.length]!);
    }
    needOnline(`${path}.cpu`, cpu);
    if (!online[cpu]) {
      fail(`${path}.cpu`, `CPU ${cpu} is offline at this point (${offlinedBy.get(cpu)} took it offline); perf_event_open() would fail with ENODEV`, `map on an online CPU (${up.join(', ')}), or bring CPU ${cpu} back first ({"op": "cpu", "cpu": ${cpu}, "online": true})`);
    }
    room(path, count ?? 1);
    return Array.from({ length: count ?? 1 }, () => cpu);
  };

  /** The rings a `map` / `handoff` opens: [buffer name, CPU] each, names suffixed with the index for a count or "each"; checks and opens the names. */
  /** A ring's data pages at this page size: data_bytes rounded up to a power-of-two page count (as perf record -m rounds). */
  const dataPagesAt = (path: string, d: DataPagesSpec): number => {
    if (typeof d === 'number') return d;
    const n = Math.max(1, 2 ** Math.ceil(Math.log2(Math.ceil(d.bytes / (pageKb * 1024)))));
    if (n > SCENARIO_LIMITS.maxDataPages) fail(`${path}.data_bytes`, `${d.bytes} bytes are ${n} pages of ${pageKb} kB, more than ${SCENARIO_LIMITS.maxDataPages}`, 'use a smaller ring');
    return n;
  };
  const rings = (path: string, op: { buf: string; cpu: number | 'each' | 'round-robin'; count?: number; data_pages: number }): [string, number][] => {
    const cpus = cpusOf(path, op.cpu, op.count);
    room(path, cpus.length);
    const suffixed = op.count !== undefined || op.cpu === 'each';
    return cpus.map((cpu, j) => {
      const name = suffixed ? `${op.buf}${j}` : op.buf;
      if (name.length > 64) fail(`${path}.buf`, `buffer name ${show(op.buf)} plus the index ${j} is longer than 64 characters`, 'use a shorter name');
      openBuf(path, name);
      dataPagesOf.set(name, op.data_pages);
      return [name, cpu];
    });
  };

  for (let i = 0; i < src.ops.length; i++) {
    const op = src.ops[i]!;
    const path = `ops[${i}]`;
    switch (op.op) {
      case 'ballast': {
        room(path, 1);
        startHelpers(path, op.helper, 1);
        if (op.via !== 'perf') out.push({ op: 'ballast', via: op.via, pages: pagesOf(`${path}.pages`, op.pages) });
        else if ('buffers' in op) out.push({ op: 'ballast', via: 'perf', buffers: op.buffers.slice() });
        else out.push({ op: 'ballast', via: 'perf', buffers: cappedBallastBuffers(pagesOf(`${path}.pages`, op.pages)) });
        break;
      }
      case 'map': {
        const data_pages = dataPagesAt(path, op.data_pages);
        for (const [buf, cpu] of rings(path, { ...op, data_pages })) out.push({ op: 'map', buf, cpu, data_pages });
        break;
      }
      case 'remap': {
        const n = op.count ?? 1;
        if (op.buf === '*') {
          // every open buffer in map order, except map_output ones (their mmap may have failed)
          const names = [...open.keys()].filter((b) => !outputs.has(b));
          if (names.length === 0) fail(`${path}.buf`, 'remap of "*" with no open buffer (map_output buffers do not count)', 'map a buffer first, or remove the op');
          room(path, n * names.length);
          for (const name of names) for (let j = 0; j < n; j++) out.push({ op: 'remap', buf: name });
          break;
        }
        room(path, n);
        needOpen(path, op.buf, 'remap');
        notOutput(path, op.buf, 'remap');
        for (let j = 0; j < n; j++) out.push({ op: 'remap', buf: op.buf });
        break;
      }
      case 'handoff': {
        const data_pages = dataPagesAt(path, op.data_pages);
        const r = rings(path, { ...op, data_pages });
        startHelpers(path, op.helper, r.length);
        for (const [buf, cpu] of r) out.push({ op: 'handoff', buf, cpu, data_pages });
        break;
      }
      case 'kill': {
        let indices: number[];
        if (op.helper === '*') {
          indices = helperLive.flatMap((live, k) => (live ? [k] : []));
          if (indices.length === 0) fail(`${path}.helper`, 'kill of "*" while no helper is alive', 'start one with a ballast or handoff op first, or remove the op');
          room(path, 1);
          out.push({ op: 'kill_helper', helper: '*' });
        } else {
          const h = helperNames.get(op.helper);
          if (h === undefined) fail(`${path}.helper`, `no helper is named ${show(op.helper)}`, `name one with "helper": ${JSON.stringify(op.helper)} on a ballast or handoff op before this one${helperNames.size ? `; named: ${[...helperNames.keys()].map((x) => show(x)).join(', ')}` : ''}`);
          indices = h!.indices.filter((k) => helperLive[k]);
          if (indices.length === 0) fail(`${path}.helper`, `helper ${show(op.helper)} (${h!.path}) was killed already`, 'remove this op, or kill another helper');
          room(path, indices.length);
          for (const k of indices) out.push({ op: 'kill_helper', helper: k });
        }
        for (const k of indices) helperLive[k] = false;
        break;
      }
      case 'cap':
        room(path, op.rlimit_memlock_kb === undefined ? 1 : 2);
        out.push({ op: 'cap_ipc_lock', value: op.cap_ipc_lock });
        if (op.rlimit_memlock_kb !== undefined) out.push({ op: 'rlimit', memlock_kb: op.rlimit_memlock_kb });
        break;
      case 'unmap': {
        room(path, 1);
        if (op.buf === '*') {
          for (const name of open.keys()) closed.set(name, path);
          open.clear();
          auxLive.clear();
        } else {
          needOpen(path, op.buf, 'unmap');
          notOutput(path, op.buf, 'unmap');
          open.delete(op.buf);
          auxLive.delete(op.buf);
          closed.set(op.buf, path);
        }
        out.push({ op: 'unmap', buf: op.buf });
        break;
      }
      case 'unmap_part': {
        room(path, 1);
        needOpen(path, op.buf, 'unmap_part');
        notOutput(path, op.buf, 'unmap_part');
        if ((dataPagesOf.get(op.buf) ?? 0) === 0) fail(`${path}.buf`, `buffer ${show(op.buf)} is header-only (data_pages 0): it has no part to unmap`, 'map it with data_pages 1 or more');
        out.push({ op: 'unmap_part', buf: op.buf });
        break;
      }
      case 'map_output': {
        room(path, 1);
        needOpen(path, op.to, 'map_output to', 'to');
        notOutput(path, op.to, 'map_output to');
        openBuf(path, op.buf);
        outputs.set(op.buf, path);
        dataPagesOf.set(op.buf, dataPagesOf.get(op.to) ?? 0);
        out.push({ op: 'map_output', buf: op.buf, to: op.to });
        break;
      }
      case 'aux_ring': {
        room(path, 1);
        needOnline(`${path}.cpu`, op.cpu);
        if (!online[op.cpu]) fail(`${path}.cpu`, `CPU ${op.cpu} is offline at this point (${offlinedBy.get(op.cpu)} took it offline)`, `use an online CPU (${onlineCpus().join(', ')})`);
        openBuf(path, op.buf);
        dataPagesOf.set(op.buf, op.data_pages);
        auxLive.set(op.buf, 0);
        out.push({ op: 'aux_ring', buf: op.buf, cpu: op.cpu, data_pages: op.data_pages });
        break;
      }
      case 'aux_map':
      case 'aux_unmap': {
        room(path, 1);
        needOpen(path, op.buf, op.op);
        const live = auxLive.get(op.buf);
        if (live === undefined) fail(`${path}.buf`, `${op.op} of buffer ${show(op.buf)}, which is not an aux_ring buffer (only the lockstep_aux PMU's events have an AUX area)`, `open it with {"op": "aux_ring", "buf": ${JSON.stringify(op.buf)}, "cpu": 0, "data_pages": 1}`);
        if (op.op === 'aux_unmap' && live === 0) fail(`${path}.buf`, `aux_unmap of buffer ${show(op.buf)}, whose AUX area no earlier aux_map maps (or all its mappings are gone)`, 'put an aux_map before it');
        auxLive.set(op.buf, live! + (op.op === 'aux_map' ? 1 : -1));
        out.push(op.op === 'aux_map' ? { op: 'aux_map', buf: op.buf, pages: op.pages } : { op: 'aux_unmap', buf: op.buf });
        break;
      }
      case 'uring':
        room(path, 1);
        out.push({ op: 'uring', pages: op.pages });
        break;
      case 'probe':
        room(path, 1);
        out.push({ op: 'probe' });
        break;
      case 'exit':
        room(path, 1);
        if (op.last === true && helperAlive()) {
          fail(`${path}.last`, 'the worker exits as the uid\'s last process, but a helper of the uid is still alive',
            'end the helpers first with {"op": "kill", "helper": "*"}, or drop "last" to keep the per-user counter alive through them');
        }
        if (op.last !== true && !helperAlive() && src.uid !== 'root') {
          fail(`${path}.op`, 'the worker exits while no other process of the uid is alive: the per-user counter would die with it (RCU-delayed, so a later op would see it or not at random)',
            'say {"op": "exit", "last": true} to wait for the kernel to free the uid\'s record, or put a ballast before it to keep the uid alive, e.g. {"op": "ballast", "via": "perf", "buffers": []} (a helper that maps nothing)');
        }
        for (const name of open.keys()) closed.set(name, path);
        open.clear();
        auxLive.clear();
        out.push(op.last === true ? { op: 'exit', last: true } : { op: 'exit' });
        break;
      case 'rlimit':
        room(path, 1);
        out.push({ op: 'rlimit', memlock_kb: op.rlimit_memlock_kb });
        break;
      case 'sysctl':
        room(path, 1);
        if (op.name === 'perf_event_mlock_kb') mlockKb = op.value;
        out.push({ op: 'sysctl', name: op.name, value: op.value });
        break;
      case 'cpu': {
        room(path, 1);
        needOnline(`${path}.cpu`, op.cpu);
        if (op.cpu === 0 && !op.online) {
          fail(`${path}.cpu`, 'CPU 0 cannot be taken offline (x86 kernels have no cpu0/online file, so a scenario that runs on every arch keeps the boot CPU online)', 'offline another CPU (1..cpus-1)');
        }
        online[op.cpu] = op.online;
        if (op.online) offlinedBy.delete(op.cpu);
        else offlinedBy.set(op.cpu, path);
        out.push({ op: 'cpu', cpu: op.cpu, online: op.online });
        break;
      }
      case 'hang':
        room(path, 1);
        out.push({ op: 'hang', seconds: op.seconds });
        break;
      case 'sysrq':
        room(path, 1);
        out.push({ op: 'sysrq', key: op.key });
        break;
    }
  }

  return {
    id: src.id,
    cpus: nCpus,
    ...(src.cpus === 'any' ? { cpus_any: true as const } : {}),
    mlock_kb: src.perf_event_mlock_kb,
    paranoid: src.paranoid,
    rlimit_kb: src.rlimit_memlock_kb,
    cap_ipc_lock: src.cap_ipc_lock,
    ...(src.uid === 'root' ? { root: true as const } : {}),
    ...(pageKb !== 4 ? { page_kb: pageKb } : {}),
    ops: out,
  };
}

/** What the compiled scenario needs of the machine that runs it. */
export function scenarioNeeds(s: CompiledScenario): ScenarioNeeds {
  const hot = new Set<number>();
  const sysctls = new Set<SysctlName>();
  const features = new Set<Feature>();
  let rlimitKbMax = s.rlimit_kb;
  let rlimitUnlimited = s.rlimit_kb === null;
  for (const op of s.ops) {
    if (op.op === 'cpu') hot.add(op.cpu);
    else if (op.op === 'sysctl') sysctls.add(op.name);
    else if (op.op === 'rlimit') {
      if (op.memlock_kb === null) rlimitUnlimited = true;
      else if (rlimitKbMax === null || op.memlock_kb > rlimitKbMax) rlimitKbMax = op.memlock_kb;
    } else if (op.op === 'uring') features.add('io_uring');
    else if (op.op === 'ballast' && op.via !== 'perf') features.add(op.via);
  }
  // Helpers run with RLIMIT_MEMLOCK HELPER_RLIMIT_MEMLOCK_KB in every runtime: the machine must allow it.
  const helpers = s.ops.some((op) => op.op === 'ballast' || op.op === 'handoff');
  if (helpers && !rlimitUnlimited && (rlimitKbMax === null || rlimitKbMax < HELPER_RLIMIT_MEMLOCK_KB)) rlimitKbMax = HELPER_RLIMIT_MEMLOCK_KB;
  return {
    cpus: s.cpus,
    cpusAny: s.cpus_any === true,
    hotplugCpus: [...hot].sort((a, b) => a - b),
    rlimitKbMax,
    rlimitUnlimited,
    start: { perf_event_mlock_kb: s.mlock_kb, perf_event_paranoid: s.paranoid },
    sysctls: [...sysctls].sort(),
    features: [...features].sort(),
    ioUring: features.has('io_uring'),
    faultInjection: hasFaultInjection(s),
    rootUid: s.root === true,
  };
}

// ---------------------------------------------------------------------------
// Hash

/** JSON with object keys sorted at every level, no whitespace; -0 written as 0. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RangeError(`canonicalJson: ${v} has no JSON form`);
    return JSON.stringify(v === 0 ? 0 : v);
  }
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new RangeError(`canonicalJson: a ${typeof v} has no JSON form`);
}

/**
 * sha256 (hex) of the compiled scenario's canonical JSON: the provenance of
 * a result. Equal for equal compiled content, whatever sugar or key order the
 * file used; the description does not enter it.
 */
export function scenarioHash(s: CompiledScenario): string {
  return createHash('sha256').update(canonicalJson(s)).digest('hex');
}

// ---------------------------------------------------------------------------
// Loaders (synchronous: scenario files are small)

/** Larger scenario files are refused before parsing. */
export const MAX_SCENARIO_FILE_BYTES = 16 * 1024 * 1024;

const errnoOf = (e: unknown): string => (e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : e instanceof Error ? e.message : String(e));

/** Where deprecation notices go by default: one line each on stderr. */
export const stderrNotice = (line: string): void => {
  process.stderr.write(`lockstep: ${line}\n`);
};

/**
 * Read, parse, validate and compile one scenario file. Old field names
 * (DEPRECATED_FIELDS) load; each gives one notice line to `notice`.
 * Throws ConfigError.
 */
export function loadScenarioFile(path: string, notice: (line: string) => void = stderrNotice): LoadedScenario {
  const file = resolve(path);
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ConfigError(file, '', 'is not a regular file', 'give the path of a scenario .json file');
    if (st.size > MAX_SCENARIO_FILE_BYTES) {
      throw new ConfigError(file, '', `is ${st.size} bytes, more than ${MAX_SCENARIO_FILE_BYTES}`, 'use counts instead of spelling out every op');
    }
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(file, '', `cannot be read (${errnoOf(e)})`, 'check the path and its permissions');
  }
  let obj: unknown;
  try {
    obj = parseJsonStrict(text);
  } catch (e) {
    throw new ConfigError(file, '', `is not valid JSON (${e instanceof Error ? e.message : String(e)})`, 'fix the JSON syntax (no comments, no trailing commas)');
  }
  const { source, compiled, notices } = compileSource(obj, file);
  for (const n of notices) notice(n);
  return { id: source.id, description: source.description, file, source, compiled, hash: scenarioHash(compiled), needs: scenarioNeeds(compiled) };
}

/** Throws a ConfigError if two scenarios share an id. */
export function checkUniqueIds(list: readonly LoadedScenario[]): void {
  const seen = new Map<string, string>();
  for (const s of list) {
    const other = seen.get(s.id);
    if (other !== undefined) {
      throw new ConfigError(s.file, 'id', `duplicate scenario id ${show(s.id)} (also in ${other})`, 'give every scenario its own id (e.g. the file name without .json)');
    }
    seen.set(s.id, s.file);
  }
}

/**
 * Every *.json file of a directory (not recursive), in file-name order,
 * without letting one bad file block the others: `loaded` holds the good
 * ones, `errors` one ConfigError per bad file (including a file whose id
 * an earlier file already has). Throws ConfigError only when the directory
 * cannot be listed.
 */
export function loadScenarioDirEach(dir: string, notice?: (line: string) => void): { loaded: LoadedScenario[]; errors: ConfigError[] } {
  const d = resolve(dir);
  let names: string[];
  try {
    names = readdirSync(d, { withFileTypes: true })
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.endsWith('.json'))
      .map((e) => e.name)
      .sort();
  } catch (e) {
    throw new ConfigError(d, '', `cannot be listed (${errnoOf(e)})`, 'give a directory of scenario .json files');
  }
  const loaded: LoadedScenario[] = [];
  const errors: ConfigError[] = [];
  for (const n of names) {
    try {
      const s = loadScenarioFile(join(d, n), notice);
      checkUniqueIds([...loaded, s]);
      loaded.push(s);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      errors.push(e);
    }
  }
  return { loaded, errors };
}

/** Every *.json file of a directory (not recursive), in file-name order. The first bad file (or duplicate id) is a ConfigError. */
export function loadScenarioDir(dir: string): LoadedScenario[] {
  const { loaded, errors } = loadScenarioDirEach(dir);
  if (errors.length > 0) throw errors[0]!;
  return loaded;
}

/** harness/scenarios/ of this checkout. */
export const BUILTIN_SCENARIO_DIR = fileURLToPath(new URL('../../harness/scenarios/', import.meta.url));

/** The built-in scenarios (harness/scenarios/*.json). */
export function builtinScenarios(): LoadedScenario[] {
  return loadScenarioDir(BUILTIN_SCENARIO_DIR);
}

