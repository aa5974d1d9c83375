// A validated scenario source to its CompiledScenario: the sugar compiled away
// (counts, "each"/"round-robin", "L" and "bytes" sizes, named helpers) while
// the script's flow is checked the way the reproducer and the simulator would
// meet it (CompileState). One handler per source op, in a table by op name.
// Pure: no I/O. load.ts validates and loads; this file compiles.

import { type CompiledScenario, ballastBuffers } from './ops.ts';
import { SCENARIO_LIMITS, type ScenarioSource, type SourceOp, type SourceOpName, show } from './schema.ts';
import { CompileState } from './compile-state.ts';

/** The count a `"cpus": "any"` scenario is compiled for when no run says otherwise (VM boots, `simulate`). */
export const DEFAULT_ANY_CPUS = 2;

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

/** The source op of name K. */
type SourceOpOf<K extends SourceOpName> = Extract<SourceOp, { op: K }>;
/** A handler: check source op `path` against the state, push its compiled ops to c.out, update the state. */
type CompileHandler<K extends SourceOpName> = (c: CompileState, op: SourceOpOf<K>, path: string) => void;

const ballast: CompileHandler<'ballast'> = (c, op, path) => {
  c.room(path, 1);
  c.startHelpers(path, op.helper, 1);
  if (op.via !== 'perf') c.out.push({ op: 'ballast', via: op.via, pages: c.pagesOf(`${path}.pages`, op.pages) });
  else if ('buffers' in op) c.out.push({ op: 'ballast', via: 'perf', buffers: op.buffers.slice() });
  else c.out.push({ op: 'ballast', via: 'perf', buffers: cappedBallastBuffers(c.pagesOf(`${path}.pages`, op.pages)) });
};

const map: CompileHandler<'map'> = (c, op, path) => {
  const data_pages = c.dataPagesAt(path, op.data_pages);
  for (const [buf, cpu] of c.rings(path, { ...op, data_pages })) c.out.push({ op: 'map', buf, cpu, data_pages });
};

const remap: CompileHandler<'remap'> = (c, op, path) => {
  const n = op.count ?? 1;
  if (op.buf === '*') {
    // every open buffer in map order, except map_output ones (their mmap may have failed)
    const names = [...c.open.keys()].filter((b) => !c.outputs.has(b));
    if (names.length === 0) c.fail(`${path}.buf`, 'remap of "*" with no open buffer (map_output buffers do not count)', 'map a buffer first, or remove the op');
    c.room(path, n * names.length);
    for (const name of names) for (let j = 0; j < n; j++) c.out.push({ op: 'remap', buf: name });
    return;
  }
  c.room(path, n);
  c.needOpen(path, op.buf, 'remap');
  c.notOutput(path, op.buf, 'remap');
  for (let j = 0; j < n; j++) c.out.push({ op: 'remap', buf: op.buf });
};

const handoff: CompileHandler<'handoff'> = (c, op, path) => {
  const data_pages = c.dataPagesAt(path, op.data_pages);
  const r = c.rings(path, { ...op, data_pages });
  c.startHelpers(path, op.helper, r.length);
  for (const [buf, cpu] of r) c.out.push({ op: 'handoff', buf, cpu, data_pages });
};

const kill: CompileHandler<'kill'> = (c, op, path) => {
  let indices: number[];
  if (op.helper === '*') {
    indices = c.helperLive.flatMap((live, k) => (live ? [k] : []));
    if (indices.length === 0) c.fail(`${path}.helper`, 'kill of "*" while no helper is alive', 'start one with a ballast or handoff op first, or remove the op');
    c.room(path, 1);
    c.out.push({ op: 'kill_helper', helper: '*' });
  } else {
    const h = c.helperNames.get(op.helper);
    if (h === undefined) c.fail(`${path}.helper`, `no helper is named ${show(op.helper)}`, `name one with "helper": ${JSON.stringify(op.helper)} on a ballast or handoff op before this one${c.helperNames.size ? `; named: ${[...c.helperNames.keys()].map((x) => show(x)).join(', ')}` : ''}`);
    indices = h!.indices.filter((k) => c.helperLive[k]);
    if (indices.length === 0) c.fail(`${path}.helper`, `helper ${show(op.helper)} (${h!.path}) was killed already`, 'remove this op, or kill another helper');
    c.room(path, indices.length);
    for (const k of indices) c.out.push({ op: 'kill_helper', helper: k });
  }
  for (const k of indices) c.helperLive[k] = false;
};

const unmap: CompileHandler<'unmap'> = (c, op, path) => {
  c.room(path, 1);
  if (op.buf === '*') {
    c.closeAll(path);
  } else {
    c.needOpen(path, op.buf, 'unmap');
    c.notOutput(path, op.buf, 'unmap');
    c.open.delete(op.buf);
    c.auxLive.delete(op.buf);
    c.closed.set(op.buf, path);
  }
  c.out.push({ op: 'unmap', buf: op.buf });
};

const unmapPart: CompileHandler<'unmap_part'> = (c, op, path) => {
  c.room(path, 1);
  c.needOpen(path, op.buf, 'unmap_part');
  c.notOutput(path, op.buf, 'unmap_part');
  if ((c.dataPagesOf.get(op.buf) ?? 0) === 0) c.fail(`${path}.buf`, `buffer ${show(op.buf)} is header-only (data_pages 0): it has no part to unmap`, 'map it with data_pages 1 or more');
  c.out.push({ op: 'unmap_part', buf: op.buf });
};

const mapOutput: CompileHandler<'map_output'> = (c, op, path) => {
  c.room(path, 1);
  c.needOpen(path, op.to, 'map_output to', 'to');
  c.notOutput(path, op.to, 'map_output to');
  c.openBuf(path, op.buf);
  c.outputs.set(op.buf, path);
  c.dataPagesOf.set(op.buf, c.dataPagesOf.get(op.to) ?? 0);
  c.out.push({ op: 'map_output', buf: op.buf, to: op.to });
};

const auxRing: CompileHandler<'aux_ring'> = (c, op, path) => {
  c.room(path, 1);
  c.needOnline(`${path}.cpu`, op.cpu);
  if (!c.online[op.cpu]) c.fail(`${path}.cpu`, `CPU ${op.cpu} is offline at this point (${c.offlinedBy.get(op.cpu)} took it offline)`, `use an online CPU (${c.onlineCpus().join(', ')})`);
  c.openBuf(path, op.buf);
  c.dataPagesOf.set(op.buf, op.data_pages);
  c.auxLive.set(op.buf, 0);
  c.out.push({ op: 'aux_ring', buf: op.buf, cpu: op.cpu, data_pages: op.data_pages });
};

/** aux_map / aux_unmap: of an open aux_ring buffer; an aux_unmap needs a live AUX mapping. */
function auxMapOrUnmap(c: CompileState, op: SourceOpOf<'aux_map' | 'aux_unmap'>, path: string): void {
  c.room(path, 1);
  c.needOpen(path, op.buf, op.op);
  const live = c.auxLive.get(op.buf);
  if (live === undefined) c.fail(`${path}.buf`, `${op.op} of buffer ${show(op.buf)}, which is not an aux_ring buffer (only the lockstep_aux PMU's events have an AUX area)`, `open it with {"op": "aux_ring", "buf": ${JSON.stringify(op.buf)}, "cpu": 0, "data_pages": 1}`);
  if (op.op === 'aux_unmap' && live === 0) c.fail(`${path}.buf`, `aux_unmap of buffer ${show(op.buf)}, whose AUX area no earlier aux_map maps (or all its mappings are gone)`, 'put an aux_map before it');
  c.auxLive.set(op.buf, live! + (op.op === 'aux_map' ? 1 : -1));
  c.out.push(op.op === 'aux_map' ? { op: 'aux_map', buf: op.buf, pages: op.pages } : { op: 'aux_unmap', buf: op.buf });
}

const exit: CompileHandler<'exit'> = (c, op, path) => {
  c.room(path, 1);
  if (op.last === true && c.helperAlive()) {
    c.fail(`${path}.last`, 'the worker exits as the uid\'s last process, but a helper of the uid is still alive',
      'end the helpers first with {"op": "kill", "helper": "*"}, or drop "last" to keep the per-user counter alive through them');
  }
  if (op.last !== true && !c.helperAlive() && c.src.uid !== 'root') {
    c.fail(`${path}.op`, 'the worker exits while no other process of the uid is alive: the per-user counter would die with it (RCU-delayed, so a later op would see it or not at random)',
      'say {"op": "exit", "last": true} to wait for the kernel to free the uid\'s record, or put a ballast before it to keep the uid alive, e.g. {"op": "ballast", "via": "perf", "buffers": []} (a helper that maps nothing)');
  }
  c.closeAll(path);
  c.out.push(op.last === true ? { op: 'exit', last: true } : { op: 'exit' });
};

const cpu: CompileHandler<'cpu'> = (c, op, path) => {
  c.room(path, 1);
  c.needOnline(`${path}.cpu`, op.cpu);
  if (op.cpu === 0 && !op.online) {
    c.fail(`${path}.cpu`, 'CPU 0 cannot be taken offline (x86 kernels have no cpu0/online file, so a scenario that runs on every arch keeps the boot CPU online)', 'offline another CPU (1..cpus-1)');
  }
  c.online[op.cpu] = op.online;
  if (op.online) c.offlinedBy.delete(op.cpu);
  else c.offlinedBy.set(op.cpu, path);
  c.out.push({ op: 'cpu', cpu: op.cpu, online: op.online });
};

/** Every source op's compile step, by op name. */
const COMPILE_HANDLERS: { readonly [K in SourceOpName]: CompileHandler<K> } = {
  ballast,
  map,
  remap,
  handoff,
  kill,
  cap: (c, op, path) => {
    c.room(path, op.rlimit_memlock_kb === undefined ? 1 : 2);
    c.out.push({ op: 'cap_ipc_lock', value: op.cap_ipc_lock });
    if (op.rlimit_memlock_kb !== undefined) c.out.push({ op: 'rlimit', memlock_kb: op.rlimit_memlock_kb });
  },
  unmap,
  unmap_part: unmapPart,
  map_output: mapOutput,
  aux_ring: auxRing,
  aux_map: auxMapOrUnmap,
  aux_unmap: auxMapOrUnmap,
  uring: (c, op, path) => {
    c.room(path, 1);
    c.out.push({ op: 'uring', pages: op.pages });
  },
  probe: (c, _op, path) => {
    c.room(path, 1);
    c.out.push({ op: 'probe' });
  },
  exit,
  rlimit: (c, op, path) => {
    c.room(path, 1);
    c.out.push({ op: 'rlimit', memlock_kb: op.rlimit_memlock_kb });
  },
  sysctl: (c, op, path) => {
    c.room(path, 1);
    if (op.name === 'perf_event_mlock_kb') c.mlockKb = op.value;
    c.out.push({ op: 'sysctl', name: op.name, value: op.value });
  },
  cpu,
  hang: (c, op, path) => {
    c.room(path, 1);
    c.out.push({ op: 'hang', seconds: op.seconds });
  },
  sysrq: (c, op, path) => {
    c.room(path, 1);
    c.out.push({ op: 'sysrq', key: op.key });
  },
};

/**
 * Compile a validated source for `cpusAt` online CPUs (used when its "cpus"
 * is "any"; a pinned count wins) and `pageKb` kB pages (4, 16, 64): one
 * compiled op list, its flow checked op by op. Throws ConfigError(file,
 * "ops[i]...", problem, fix) at the first op the reproducer could not run.
 */
export function compileValidated(src: ScenarioSource, file: string, cpusAt: number = DEFAULT_ANY_CPUS, pageKb = 4): CompiledScenario {
  const nCpus = src.cpus === 'any' ? cpusAt : src.cpus;
  const c = new CompileState(src, file, nCpus, pageKb);
  const handlers = COMPILE_HANDLERS as unknown as Readonly<Record<string, ((c: CompileState, op: SourceOp, path: string) => void) | undefined>>;
  for (let i = 0; i < src.ops.length; i++) {
    const op = src.ops[i]!;
    // a validated source names no other op (schema.ts); an unknown one would compile to nothing
    if (Object.hasOwn(COMPILE_HANDLERS, op.op)) handlers[op.op]!(c, op, `ops[${i}]`);
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
    ops: c.out,
  };
}
