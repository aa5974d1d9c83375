// Where a run's cells go: the in-memory results, the progress events, and
// results.json written atomically after every group (table.md every 10 s
// and at the end), so an interrupted or crashed run keeps every cell it finished.

import { join } from 'node:path';
import type { CellResult, KernelRecord, Results } from '../results/schema.ts';
import { renderTable } from '../results/table.ts';
import { serializeResults, writeAtomic } from '../results/write.ts';
import { type PathRoot, portableJson } from '../results/paths.ts';
import type { PlannedGroup } from './plan.ts';

/** What a run reports as it goes; the CLI's progress lines are renderEvent's text of these. */
export type MatrixEvent =
  | {
    type: 'group-done'; group: string; cells: readonly CellResult[];
    /** cells finished so far in this run / cells this run has */
    done: number; total: number; elapsedMs: number;
    /** how the group's boot went, when it booted; `restored`: the guest came from a saved snapshot, so bootMs is restore to first result */
    boot?: { bootMs: number | null; wallMs: number; accel: string; status: string; detail: string; restored?: boolean };
  }
  | { type: 'retry'; group: string; attempt: number; of: number; cells: readonly CellResult[] }
  | { type: 'write-failed'; path: string; message: string };

/** The one-line progress text of an event (what `lockstep run` prints). */
export function renderEvent(e: MatrixEvent): string {
  if (e.type === 'retry') {
    return `${e.group}: attempt ${e.attempt}: ${e.cells.map((c) => `${c.scenario}=${c.verdict}`).join(' ')}: retrying in a fresh boot (attempt ${e.attempt + 1} of ${e.of})`;
  }
  if (e.type === 'write-failed') return `could not write ${e.path}: ${e.message} (the cells stay measured; retried after the next group)`;
  const b = e.boot;
  const extra = !b ? '' : b.bootMs !== null ? ` (${b.restored ? 'restore' : 'boot'} to first result ${(b.bootMs / 1000).toFixed(1)}s, group ${(b.wallMs / 1000).toFixed(1)}s, ${b.accel})` : ` (${b.status}: ${b.detail})`;
  return `[${e.done}/${e.total} cells, ${(e.elapsedMs / 1000).toFixed(0)}s] ${e.group}: ${e.cells.map((c) => `${c.scenario}=${c.verdict}`).join(' ')}${extra}`;
}

/**
 * The results of one run as they grow. Writes are serialised: each one
 * snapshots the cells finished so far, with no path of this machine in it
 * (`roots`). A write that fails is not a group's failure (its cells are
 * measured and kept in memory): it is reported once, later writes still
 * try, and finish() throws it if the last write fails too.
 */
/** table.md is rewritten at most this often during a run (ms); results.json after every group. */
export const TABLE_EVERY_MS = 10_000;

export class ResultsSink {
  private writing: Promise<void> = Promise.resolve();
  private writeError: Error | undefined;
  private done = 0;
  private readonly t0 = Date.now();
  /** when table.md was last written (0: never) */
  private tableAt = 0;
  /** each recorded cell's portable copy, made once: every later write reuses it (a run of n groups rewrote every cell n times) */
  private readonly portableCells = new WeakMap<CellResult, CellResult>();

  constructor(
    readonly results: Results,
    private readonly outDir: string,
    private readonly roots: readonly PathRoot[],
    private readonly total: number,
    private readonly emit: (e: MatrixEvent) => void,
  ) {}

  /** Record a group's cells (results.cells) and report them as one group-done event. */
  add(g: PlannedGroup, cells: CellResult[], boot?: Extract<MatrixEvent, { type: 'group-done' }>['boot']): void {
    // a recorded cell is final (retries, flaky and provenance are set before): frozen, so a later change throws instead of missing the written copy
    for (const c of cells) Object.freeze(c);
    this.results.cells.push(...cells);
    this.done += cells.length;
    this.emit({ type: 'group-done', group: g.key, cells, done: this.done, total: this.total, elapsedMs: Date.now() - this.t0, ...(boot ? { boot } : {}) });
  }

  hasKernel = (id: string): boolean => this.results.kernels.some((k) => k.id === id);

  /** Add a kernel record once; with `order` (the kernel ids as given) the records are then sorted by it. */
  addKernel(rec: KernelRecord, order?: readonly string[]): void {
    if (this.hasKernel(rec.id)) return;
    this.results.kernels.push(rec);
    if (order) this.results.kernels.sort((x, y) => order.indexOf(x.id) - order.indexOf(y.id));
  }

  /**
   * Write results.json with every cell so far, and table.md at most every
   * TABLE_EVERY_MS and on the last write (rendering classifies every kernel:
   * 150 ms at 600 cells, on every group it would cost a 2-core run 10 s).
   * Queued behind earlier writes. Never throws.
   */
  persist(last = false): Promise<void> {
    this.writing = this.writing.then(async () => {
      const r = this.results;
      r.cells.sort((a, b) => a.kernel.localeCompare(b.kernel) || a.scenario.localeCompare(b.scenario));
      const portable = this.portable();
      const path = join(this.outDir, 'results.json');
      try {
        await writeAtomic(path, serializeResults(portable));
        if (last || Date.now() - this.tableAt >= TABLE_EVERY_MS) {
          this.tableAt = Date.now();
          await writeAtomic(join(this.outDir, 'table.md'), renderTable(portable));
        }
        this.writeError = undefined;
      } catch (e) {
        if (!this.writeError) this.emit({ type: 'write-failed', path, message: (e as Error).message });
        this.writeError = e as Error;
      }
    });
    return this.writing;
  }

  /**
   * The last write: `complete` and finished_at set, written, the portable
   * results returned. Throws `setupError` (a user error that stopped the run)
   * first, else the last write's error.
   */
  async finish(complete: boolean, setupError?: Error): Promise<Results> {
    await this.writing;
    this.results.complete = complete;
    this.results.finished_at = new Date().toISOString();
    await this.persist(true);
    if (setupError) throw setupError;
    if (this.writeError) throw this.writeError;
    return this.portable();
  }

  /** portableJson(this.results, roots), each cell's copy made once and reused (cells are frozen when added). */
  private portable(): Results {
    const r = this.results;
    const cells = r.cells.map((c) => {
      let p = this.portableCells.get(c);
      if (!p) this.portableCells.set(c, (p = portableJson(c, this.roots)));
      return p;
    });
    return { ...portableJson({ ...r, cells: [] }, this.roots), cells };
  }
}
