// The attempts policy of one group: infrastructure failures (the verdicts
// src/diff/verdicts.ts marks retried: TIMEOUT, BOOT_FAIL, ERROR) get another
// boot of just their scenarios, up to `maxAttempts` boots; every attempt is
// kept in the cell, and a cell that passed only on a retry is flaky. No I/O
// of its own: the boot is the caller's `runOnce`, so a fake runtime tests it.

import { isRetried, verdictClass } from '../diff/verdicts.ts';
import type { CellAttempt, CellResult } from '../results/schema.ts';
import type { GroupOutcome } from '../runner/runtime.ts';
import type { CompiledScenario } from '../scenario/ops.ts';

/** One boot of some of a group's scenarios: its cells (one per scenario, any order) and how the boot went. */
export type RunOnce = (scenarios: CompiledScenario[], attempt: number) => Promise<{ cells: CellResult[]; outcome: GroupOutcome }>;

export interface AttemptsOptions {
  /** boots at most (>= 1; 0 or less is taken as 1) */
  maxAttempts: number;
  /** true once the run is interrupted: no further attempt starts */
  aborted: () => boolean;
  /** told before each further attempt: the attempt that failed and its retried cells */
  onRetry?: (attempt: number, of: number, cells: CellResult[]) => void;
}

/**
 * Run `scenarios` through `runOnce` until no cell is an infrastructure
 * failure or `maxAttempts` boots were made. Returns one cell per scenario,
 * in the order of `scenarios` (cells that needed more than one boot carry
 * `attempts`, and `flaky` when the last one was not infrastructure), and the
 * last boot's outcome. Throws what runOnce throws.
 */
export async function runAttempts(scenarios: readonly CompiledScenario[], runOnce: RunOnce, o: AttemptsOptions): Promise<{ cells: CellResult[]; last: GroupOutcome }> {
  const maxAttempts = Math.max(1, o.maxAttempts);
  const history = new Map<string, CellAttempt[]>();
  let pending = [...scenarios];
  const final: CellResult[] = [];
  let last: GroupOutcome | undefined;
  for (let n = 1; pending.length; n++) {
    const { cells: got, outcome } = await runOnce(pending, n);
    last = outcome;
    for (const c of got) {
      const h = history.get(c.scenario) ?? [];
      h.push({ attempt: n, verdict: c.verdict, ...(c.reason !== undefined ? { reason: c.reason } : {}), duration_ms: c.duration_ms ?? null, console_log: c.console_log ?? null });
      history.set(c.scenario, h);
    }
    const again = n < maxAttempts && !o.aborted() ? got.filter((c) => isRetried(c.verdict)) : [];
    final.push(...got.filter((c) => !again.includes(c)));
    if (again.length) o.onRetry?.(n, maxAttempts, again);
    pending = pending.filter((s) => again.some((c) => c.scenario === s.id));
  }
  for (const c of final) {
    const h = history.get(c.scenario)!;
    if (h.length < 2) continue;
    c.attempts = h;
    if (verdictClass(c.verdict) !== 'infra') c.flaky = true;
  }
  final.sort((x, y) => scenarios.findIndex((s) => s.id === x.scenario) - scenarios.findIndex((s) => s.id === y.scenario));
  return { cells: final, last: last! };
}
