// From one group's raw outcome to one verdict per scenario. Pure: the
// outcome, the compiled scenarios and the expected logic go in, cells come
// out. Cells finished before a fault keep their verdicts.

import { diffExpected } from '../diff/index.ts';
import { candidateLogics, type Expectation, logicLabel, simulate, type SimulateOptions } from '../model/index.ts';
import { MEASURE_POLICY, type SplatDecider, splatDecider } from '../policy/splats.ts';
import { type CompiledScenario, PAGE_KB } from '../scenario/ops.ts';
import { compileAtPageSize } from '../scenario/load.ts';
import { type ConsoleFault, SPLAT_KINDS } from '../runner/stream.ts';
import type { GroupOutcome } from '../runner/runtime.ts';
import type { CellResult, CellVerdict } from '../results/schema.ts';

export interface CellContext {
  kernel: string;
  /** the expected logic; its counter may be 'unknown' (both predictions carried, see diffExpected) */
  logic: Expectation | null;
  runtime: CellResult['runtime'];
  startedAt: string;
  scenarioHash: (s: CompiledScenario) => string;
  rerun: (scenario: string) => string;
  /** what the kernel's version implies for the simulator (BPF charging before 5.11) */
  simOpts?: SimulateOptions;
  /** which console splats fail this kernel's cells (src/policy/splats.ts); default MEASURE_POLICY */
  splats?: SplatDecider;
}

function base(ctx: CellContext, s: CompiledScenario, o: GroupOutcome | null): CellResult {
  return {
    kernel: ctx.kernel, scenario: s.id, verdict: 'ERROR', expected_logic: ctx.logic ? logicLabel(ctx.logic) : null,
    cpus: s.cpus, runtime: ctx.runtime, accel: o?.accel ?? 'none', kernel_release: o?.stream.hello?.release,
    first_eperm_measured: null, first_eperm_expected: null, pinned_measured: [], pinned_expected: [],
    measured: [], expected: [], console_log: o?.consoleLog ?? null, results_log: o?.resultsLog ?? null,
    boot_ms: o?.bootMs ?? null, group_wall_ms: o?.wallMs, started_at: ctx.startedAt,
    scenario_hash: ctx.scenarioHash(s), rerun: ctx.rerun(s.id),
  };
}

/** A cell that never ran (setup failed, host cannot fit it...). */
export function cellWithoutRun(ctx: CellContext, s: CompiledScenario, verdict: CellVerdict, reason: string): CellResult {
  const c = base(ctx, s, null);
  c.verdict = verdict;
  c.reason = reason;
  if (ctx.logic) c.expected = simulate(s, candidateLogics(ctx.logic)[0]!, ctx.simOpts);
  return c;
}

export function cellsFromOutcome(ctx: CellContext, scenarios: readonly CompiledScenario[], o: GroupOutcome): CellResult[] {
  // Splats the policy fails make the cell PANIC (most severe kind first); the others are notes on a MATCH.
  const policy = ctx.splats ?? splatDecider(MEASURE_POLICY, ctx.kernel);
  const rank = (f: ConsoleFault): number => SPLAT_KINDS.indexOf(f.kind);
  const fatal = o.faults.filter((f) => policy.action(f.kind) === 'fail').sort((a, b) => rank(a) - rank(b))[0];
  const notes = o.faults.filter((f) => policy.action(f.kind) === 'note');
  // A boot cut short is blamed on the scenario in flight (groupFailure): cells finished
  // before it keep their verdicts. A boot that completed cannot say when its splat came.
  const failBySplat = (c: CellResult): CellResult => {
    if (!fatal || !o.stream.done) return c;
    c.reason = `kernel ${fatal.kind} during the boot (fails the cell: ${policy.why(fatal.kind)}): ${fatal.line}; measured: ${c.verdict}${c.reason ? ` (${c.reason})` : ''}`;
    c.verdict = 'PANIC'; c.console_excerpt = fatal.excerpt;
    return c;
  };
  // The scenario that was running when the stream stopped, if any.
  const inFlight = o.stream.open;
  return scenarios.map((s) => {
    const c = base(ctx, s, o);
    const st = o.stream.scenarios.get(s.id);
    if (st?.uid !== undefined) c.uid = st.uid;
    if (st) c.measured = st.ops;

    const groupFailure = (): void => {
      const what = st ? `during ${s.id} (last op seen: ${st.ops.length ? st.ops[st.ops.length - 1].i : 'none'})` : `before ${s.id} started`;
      if (fatal) {
        c.verdict = 'PANIC';
        c.reason = `kernel ${fatal.kind} ${what}: ${fatal.line} (fails the cell: ${policy.why(fatal.kind)})`;
        c.console_excerpt = fatal.excerpt;
      } else if (o.status === 'timeout') {
        c.verdict = 'TIMEOUT'; c.reason = `${o.detail} ${what}`; c.console_excerpt = o.consoleTail;
      } else if (o.status === 'boot_fail') {
        c.verdict = 'BOOT_FAIL'; c.reason = o.detail; c.console_excerpt = o.consoleTail;
      } else if (o.status === 'aborted') {
        c.verdict = 'ERROR'; c.reason = `run interrupted ${what}`;
      } else {
        c.verdict = 'ERROR';
        c.reason = `${o.detail || 'the result stream stopped'} ${what}` +
          // the cut last line is named in the detail already
          (o.stream.garbageCount > (o.stream.cut !== undefined ? 1 : 0) ? `; first unreadable result line: ${JSON.stringify(o.stream.garbage[0]?.text.slice(0, 80))}` : '');
        c.console_excerpt = o.consoleTail;
      }
    };

    if (st?.skip) { c.verdict = 'SKIP'; c.reason = st.skip; return c; }
    // Compiled for one page size, run on another: its "L" and byte sizes are wrong there.
    const wrongPage = pageSizeMismatch(s, o.stream.hello?.page_kb);
    if (wrongPage && st?.ended) { c.verdict = 'ERROR'; c.reason = wrongPage; return c; }
    if (!st || !st.ended || s.id === inFlight) { groupFailure(); return withExpected(c, s, ctx); }
    if (st.errors.length) {
      const e = st.errors[0];
      c.verdict = /timed out/.test(e.msg) ? 'TIMEOUT' : 'ERROR';
      c.reason = `${o.status === 'aborted' ? 'run interrupted; ' : ''}reproducer: ${e.msg}${e.i !== undefined ? ` (op ${e.i})` : ''}`;
      return withExpected(failBySplat(c), s, ctx);
    }
    if (!ctx.logic) {
      c.verdict = 'UNCHECKED';
      c.reason = 'kernel spec says expect: unknown; measured only (see classification)';
      c.pinned_measured = st.ops.filter((m) => m.op === 'map').map((m) => m.vmpin_kb / (o.stream.hello?.page_kb ?? PAGE_KB));
      const k = st.ops.filter((m) => m.op === 'map').findIndex((m) => m.errno === 'EPERM');
      c.first_eperm_measured = k < 0 ? null : k + 1;
      return failBySplat(c);
    }
    // The guest's page size (hello) is a model input; 4 kB when not reported.
    const opts: SimulateOptions | undefined = o.stream.hello?.page_kb ? { ...ctx.simOpts, pageKb: o.stream.hello.page_kb } : ctx.simOpts;
    const d = diffExpected({ scenario: s, measured: st.ops }, ctx.logic, opts);
    c.verdict = d.verdict;
    c.first_eperm_measured = d.firstEpermMeasured;
    c.first_eperm_expected = d.firstEpermExpected;
    c.pinned_measured = d.pinnedSeriesMeasured;
    c.pinned_expected = d.pinnedSeriesExpected;
    if (d.firstDivergence) {
      c.divergence = d.firstDivergence;
      const f = d.firstDivergence;
      c.reason = `op ${f.i} (${f.op}): ${f.field} measured ${JSON.stringify(f.measured)}, expected ${JSON.stringify(f.expected)}`;
    }
    if (d.verdict === 'ERROR') c.reason = d.missing ?? c.reason;
    if (d.counterNote) c.reason = c.reason ? `${d.counterNote}; ${c.reason}` : d.counterNote;
    if (d.calibrated) c.calibrated = { ...d.calibrated };
    c.expected = d.expected;
    if (notes.length && c.verdict === 'MATCH' && !fatal) c.reason = `${c.reason ? `${c.reason}; ` : ''}kernel ${notes[0]!.kind} during the boot (a note: ${policy.why(notes[0]!.kind)}): ${notes[0]!.line}`;
    return failBySplat(c);
  });
}

/**
 * Why a scenario compiled for `s.page_kb` (4 when absent) cannot be judged on
 * a guest that reported `guestKb` kB pages, or null when its ops are the same
 * at both sizes (sizes in pages only) or the guest said nothing.
 */
export function pageSizeMismatch(s: CompiledScenario, guestKb: number | undefined): string | null {
  const compiledKb = s.page_kb ?? 4;
  if (guestKb === undefined || guestKb === compiledKb) return null;
  let same: boolean;
  try { same = compileAtPageSize(s, guestKb) === s; } catch { same = false; }
  return same ? null : `the guest's pages are ${guestKb} kB, and ${s.id} was compiled for ${compiledKb} kB pages ("L" or byte sizes differ): set the kernel spec's page size ("page_size_kb", or a -16k/-64k package) to what the kernel has`;
}

function withExpected(c: CellResult, s: CompiledScenario, ctx: CellContext): CellResult {
  if (ctx.logic) c.expected = simulate(s, candidateLogics(ctx.logic)[0]!, ctx.simOpts);
  return c;
}
