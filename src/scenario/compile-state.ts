// The state of a scenario's script while it compiles (compile.ts drives it,
// one handler per source op): the compiled ops so far, which buffer names are
// open or closed, which CPUs are online, which helpers live, the live
// perf_event_mlock_kb. Its checks are the flow checks of the file format: a
// script the reproducer or the simulator could not run is a ConfigError
// naming the op's path, the problem and the fix. Pure: no I/O.

import { ConfigError } from '../util/errors.ts';
import { type Op, userLockLimit } from './ops.ts';
import { type CpuSpec, type DataPagesSpec, type PagesSpec, SCENARIO_LIMITS, type ScenarioSource, show } from './schema.ts';

/** The live state of one compile of `src` for `nCpus` online CPUs and `pageKb` kB pages. */
export class CompileState {
  /** the compiled ops so far (at most SCENARIO_LIMITS.maxOps: see room) */
  readonly out: Op[] = [];
  /** kernel.perf_event_mlock_kb at this point of the script */
  mlockKb: number;
  /** helpers (same uid) in start order (ballast and handoff ops): alive until a kill or the scenario's end */
  readonly helperLive: boolean[] = [];
  /** helper name -> its compiled indices (a handoff over several CPUs starts one helper per ring) and the op that named it */
  readonly helperNames = new Map<string, { indices: number[]; path: string }>();
  /** CPU id -> online at this point */
  readonly online: boolean[];
  /** CPU id -> the op that took it offline */
  readonly offlinedBy = new Map<number, string>();
  /** open buffer name -> op path that opened it */
  readonly open = new Map<string, string>();
  /** closed buffer name -> op path that closed it */
  readonly closed = new Map<string, string>();
  /** open buffer name -> its data pages */
  readonly dataPagesOf = new Map<string, number>();
  /** aux_ring buffers still open -> AUX mappings the script made and has not unmapped */
  readonly auxLive = new Map<string, number>();
  /** buffers opened by map_output: may fail (EBUSY) depending on the kernel, so later ops cannot name them */
  readonly outputs = new Map<string, string>();

  constructor(
    readonly src: ScenarioSource,
    readonly file: string,
    readonly nCpus: number,
    readonly pageKb: number,
  ) {
    this.mlockKb = src.perf_event_mlock_kb;
    this.online = Array.from({ length: nCpus }, () => true);
  }

  /** Throws ConfigError(file, field, problem, fix). */
  fail(field: string, problem: string, fix: string): never {
    throw new ConfigError(this.file, field, problem, fix);
  }

  /** ConfigError unless `n` more compiled ops fit under SCENARIO_LIMITS.maxOps. */
  room(path: string, n: number): void {
    const max = SCENARIO_LIMITS.maxOps;
    const out = this.out;
    if (out.length + n > max) {
      this.fail(path, `the scenario compiles to more than ${max} ops (${out.length} before this one, which adds ${n})`, `lower the counts; at most ${max} compiled ops per scenario`);
    }
  }

  /** Some helper of the uid is alive. */
  helperAlive(): boolean {
    return this.helperLive.includes(true);
  }

  /** `n` helpers start; `name` (if given, and not used before) names them all. */
  startHelpers(path: string, name: string | undefined, n: number): void {
    const indices = Array.from({ length: n }, (_, k) => this.helperLive.length + k);
    for (let k = 0; k < n; k++) this.helperLive.push(true);
    if (name === undefined) return;
    const by = this.helperNames.get(name);
    if (by !== undefined) this.fail(`${path}.helper`, `helper name ${show(name)} is already used by ${by.path}`, 'give each helper its own name');
    this.helperNames.set(name, { indices, path });
  }

  /** The online CPU ids, ascending. */
  onlineCpus(): number[] {
    return this.online.flatMap((on, c) => (on ? [c] : []));
  }

  /** ConfigError if `name` is an open map_output buffer (its mmap fails with EBUSY on some kernels). */
  notOutput(path: string, name: string, what: string): void {
    const by = this.outputs.get(name);
    if (by !== undefined && this.open.has(name)) {
      this.fail(`${path}.buf`, `${what} of buffer ${show(name)}, which ${by} mapped with map_output (its mmap fails with EBUSY on some kernels)`, 'release it with {"op": "unmap", "buf": "*"} or an exit, or name a buffer mapped with map');
    }
  }

  /** Open buffer `name` at op `path`; ConfigError if it is still open. */
  openBuf(path: string, name: string): void {
    const by = this.open.get(name);
    if (by !== undefined) {
      this.fail(`${path}.buf`, `buffer ${show(name)} is still open (mapped by ${by})`, `unmap it first ({"op": "unmap", "buf": ${JSON.stringify(name)}}) or use another name`);
    }
    this.open.set(name, path);
    this.closed.delete(name);
  }

  /** ConfigError unless buffer `name` is open (`what` names the op in the message, `field` the op's field). */
  needOpen(path: string, name: string, what: string, field = 'buf'): void {
    if (this.open.has(name)) return;
    const by = this.closed.get(name);
    this.fail(
      `${path}.${field}`,
      by === undefined ? `${what} of buffer ${show(name)}, which no earlier op maps` : `${what} of buffer ${show(name)}, which ${by} already unmapped`,
      `map it first ({"op": "map", "buf": ${JSON.stringify(name)}, ...}) or name an open buffer`,
    );
  }

  /** ConfigError unless CPU `cpu` exists in the scenario (an "any" scenario: at the count compiled for). */
  needOnline(path: string, cpu: number): void {
    const { nCpus, src } = this;
    if (cpu >= nCpus) {
      this.fail(path, `CPU ${cpu} does not exist: the scenario has cpus ${src.cpus === 'any' ? `"any" (checked at ${nCpus})` : nCpus} (ids 0..${nCpus - 1})`,
        src.cpus === 'any' ? 'an "any" scenario runs on 1 CPU too: use CPU 0, "each" or "round-robin", or pin "cpus"' : `use a CPU id below ${nCpus}, or raise "cpus"`);
    }
  }

  /**
   * A ballast's page count at this point: a number as is, "bytes" in pages of
   * pageKb, "L+n" from user_lock_limit = (perf_event_mlock_kb >> (PAGE_SHIFT - 10))
   * * online CPUs. ConfigError below 0 or above SCENARIO_LIMITS.maxBallastPages.
   */
  pagesOf(path: string, p: PagesSpec): number {
    if (typeof p === 'number') return p;
    if ('bytes' in p) return Math.ceil(p.bytes / (this.pageKb * 1024));
    const L = userLockLimit(this.mlockKb, this.onlineCpus().length, this.pageKb);
    const n = L + p.fromL;
    const lim = SCENARIO_LIMITS.maxBallastPages;
    if (n < 0) this.fail(path, `"L${p.fromL < 0 ? p.fromL : `+${p.fromL}`}" is ${n} pages here (user_lock_limit is ${L} pages at this point)`, `use an offset of at least -${L}`);
    if (n > lim) this.fail(path, `"L${p.fromL < 0 ? p.fromL : `+${p.fromL}`}" is ${n} pages here, more than ${lim}`, `ballast at most ${lim} pages per op`);
    return n;
  }

  /** The CPU of each ring a `map` / `handoff` makes: one CPU `count` times, one per online CPU, or `count` round-robin. */
  cpusOf(path: string, cpu: CpuSpec, count: number | undefined): number[] {
    const up = this.onlineCpus();
    if (cpu === 'each') return up;
    if (cpu === 'round-robin') {
      this.room(path, count!);
      return Array.from({ length: count! }, (_, j) => up[j % up.length]!);
    }
    this.needOnline(`${path}.cpu`, cpu);
    if (!this.online[cpu]) {
      this.fail(`${path}.cpu`, `CPU ${cpu} is offline at this point (${this.offlinedBy.get(cpu)} took it offline); perf_event_open() would fail with ENODEV`, `map on an online CPU (${up.join(', ')}), or bring CPU ${cpu} back first ({"op": "cpu", "cpu": ${cpu}, "online": true})`);
    }
    this.room(path, count ?? 1);
    return Array.from({ length: count ?? 1 }, () => cpu);
  }

  /** A ring's data pages at this page size: data_bytes rounded up to a power-of-two page count (as perf record -m rounds). */
  dataPagesAt(path: string, d: DataPagesSpec): number {
    if (typeof d === 'number') return d;
    const pageKb = this.pageKb;
    const n = Math.max(1, 2 ** Math.ceil(Math.log2(Math.ceil(d.bytes / (pageKb * 1024)))));
    if (n > SCENARIO_LIMITS.maxDataPages) this.fail(`${path}.data_bytes`, `${d.bytes} bytes are ${n} pages of ${pageKb} kB, more than ${SCENARIO_LIMITS.maxDataPages}`, 'use a smaller ring');
    return n;
  }

  /** The rings a `map` / `handoff` opens: [buffer name, CPU] each, names suffixed with the index for a count or "each"; checks and opens the names. */
  rings(path: string, op: { buf: string; cpu: CpuSpec; count?: number; data_pages: number }): [string, number][] {
    const cpus = this.cpusOf(path, op.cpu, op.count);
    this.room(path, cpus.length);
    const suffixed = op.count !== undefined || op.cpu === 'each';
    return cpus.map((cpu, j) => {
      const name = suffixed ? `${op.buf}${j}` : op.buf;
      if (name.length > 64) this.fail(`${path}.buf`, `buffer name ${show(op.buf)} plus the index ${j} is longer than 64 characters`, 'use a shorter name');
      this.openBuf(path, name);
      this.dataPagesOf.set(name, op.data_pages);
      return [name, cpu];
    });
  }

  /** Every open buffer closes at op `path` (an unmap of "*" or the worker's exit). */
  closeAll(path: string): void {
    for (const name of this.open.keys()) this.closed.set(name, path);
    this.open.clear();
    this.auxLive.clear();
  }
}
