// The simulator: runs a compiled op script against one accounting logic and
// predicts, per op, what the native reproducer (harness/PROTOCOL.md) should
// observe. Pure: no I/O, no clocks, no randomness.
//
// Laid out in four files: sim-types.ts (what it predicts, its options, its
// error), sim-state.ts (the live counters and buffers, and the kernel's shared
// steps: perf_mmap()'s split, check and charge, what an unmap or a death gives
// back), sim-ops.ts (one handler per op, in a table by op name) and this file
// (the options a kernel's version implies, and the loop).

import type { CompiledScenario } from '../scenario/ops.ts';
import { type UpstreamChange, modelFlagsFor, readKernelVersion, UPSTREAM_CHANGES } from '../kernel-facts/index.ts';
import { type Logic, checkPageKb } from './accounting.ts';
import { OP_HANDLERS } from './sim-ops.ts';
import { SimState, simConfig } from './sim-state.ts';
import { type ExpectedOp, type SimulateOptions, ScriptError } from './sim-types.ts';

export { type ExpectedErrno, type ExpectedOp, type MapCheck, PROBE_MAX_PAGES, ScriptError, type SimulateOptions } from './sim-types.ts';

/**
 * The simulator options a kernel's version implies, read from the facts
 * table (src/kernel-facts UPSTREAM_CHANGES; `table` lets tests add a made-up
 * row): each row that switches a flag gives it its value where the kernel
 * carries the change (its mainline release or later, or its stable line's
 * release or later) and the opposite where not. A stable line the row does
 * not name is taken to lack the change. Today's rows: bpfChargesUser (until
 * v5.11), partialMunmapEinval (v6.17; 6.16.1, 6.12.42, 6.1.148),
 * mapOutputEbusy (v6.19; 6.18.8), secretmemChargesUser (v7.2; 6.12.113,
 * 6.1.191), uringChargesPinned (v5.9, 309758254ea6), and io_uring's rings
 * uncharged (7.2.11, v7.3 inferred): ioUringExtraPages 0 there, so
 * src/diff's calibrate() keeps its hands off. `pageKb` is the kernel's page
 * size when known (hello), default 4. A string with no version in it gives
 * the defaults; one beyond any real kernel throws KernelVersionError (a
 * RangeError).
 */
export function simOptionsForVersion(version: string, pageKb?: number, table: readonly UpstreamChange[] = UPSTREAM_CHANGES): SimulateOptions {
  const out: SimulateOptions = {};
  if (pageKb !== undefined) out.pageKb = checkPageKb(pageKb);
  const v = readKernelVersion(version);
  if (v === null) return out;
  const { uringRingsUncharged, ...flags } = modelFlagsFor(v, table);
  Object.assign(out, flags);
  if (uringRingsUncharged === true) out.ioUringExtraPages = 0;
  return out;
}

/**
 * Predict every op of `s` under `logic`. One entry per op, same order.
 *
 * State (SimState): U (per uid: worker and helpers share it), the worker's P,
 * each helper's P, the worker's buffers with their remembered charges, and the
 * live perf_event_mlock_kb, perf_event_paranoid, online CPU set,
 * RLIMIT_MEMLOCK and CAP_IPC_LOCK. L is recomputed on every map. Each op goes
 * to its handler in OP_HANDLERS (sim-ops.ts). Throws RangeError for an
 * unknown logic or a bad option, ScriptError for a script the reproducer
 * could not run.
 */
export function simulate(s: CompiledScenario, logic: Logic, opts?: SimulateOptions): ExpectedOp[] {
  const st = new SimState(s, simConfig(logic, opts));
  const ops = s.ops;
  const n = ops.length;
  const out: ExpectedOp[] = new Array(n);
  const handlers = OP_HANDLERS as unknown as Readonly<Record<string, ((st: SimState, op: unknown, i: number) => ExpectedOp) | undefined>>;
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    const handle = Object.hasOwn(OP_HANDLERS, op.op) ? handlers[op.op] : undefined;
    if (handle === undefined) throw new ScriptError(i, `unknown op ${JSON.stringify(op)}`);
    out[i] = handle(st, op, i);
  }
  return out;
}
