// What "behaviour" means to bisect: the set of accounting logics the
// measured cell fits (src/diff/evidence.ts, the one classifier, calibrated), as one comparable key.
// Two kernels behave alike when the same logics explain them. A cell no logic
// explains is keyed by its raw observables, so two unexplained kernels that
// measure the same still compare equal. Pure.

import { classifyWithEvidence } from '../diff/evidence.ts';
import type { MeasuredOp } from '../diff/index.ts';
import { type CompiledScenario, PAGE_KB } from '../scenario/ops.ts';
import type { CellResult } from '../results/schema.ts';
import type { Attempt } from './decide.ts';
import { isRetried } from '../diff/verdicts.ts';

export interface Behaviour {
  /** comparable key: "V3/shared V4/shared" or "unexplained <observables>" */
  key: string;
  /** logic labels that fit every op, in ALL_LOGICS order (empty: none fits) */
  fits: string[];
  first_eperm: number | null;
  /** worker pinned pages after each map */
  pinned: number[];
  /** probe headrooms in script order (what shared-counter reads) */
  headrooms: number[];
}

export function behaviourOf(s: CompiledScenario, measured: readonly MeasuredOp[]): Behaviour {
  const fits = classifyWithEvidence([{ scenario: s, measured }]).logics;
  const maps = measured.filter((m) => m.op === 'map');
  const k = maps.findIndex((m) => m.errno === 'EPERM');
  const pinned = maps.map((m) => m.vmpin_kb / PAGE_KB);
  const headrooms = measured.flatMap((m) => (m.op === 'probe' && typeof m.headroom === 'number' ? [m.headroom] : []));
  const observables = measured.map((m) => `${m.op}:${m.ok ? 'ok' : m.errno}:${m.vmpin_kb}${m.headroom !== undefined ? `:h${m.headroom}` : ''}`).join(',');
  return {
    key: fits.length ? fits.join(' ') : `unexplained ${observables}`,
    fits,
    first_eperm: k < 0 ? null : k + 1,
    pinned,
    headrooms,
  };
}


/**
 * One cell of a one-kernel one-scenario run as a bisect attempt. MATCH,
 * MISMATCH and UNCHECKED cells carry a full measurement; TIMEOUT, BOOT_FAIL
 * and ERROR are infrastructure (retried); BUILD_FAIL is the tree's; PANIC and
 * SKIP (the kernel cannot run the scenario) are judged unjudgeable at once.
 */
export function attemptOfCell(s: CompiledScenario, c: CellResult): { attempt: Attempt; behaviour?: Behaviour } {
  const reason = c.reason ?? c.verdict;
  switch (c.verdict) {
    case 'MATCH':
    case 'MISMATCH':
    case 'UNCHECKED': {
      const b = behaviourOf(s, c.measured);
      return { attempt: { status: 'measured', behaviour: b.key }, behaviour: b };
    }
    case 'BUILD_FAIL':
      return { attempt: { status: 'build_failed', reason } };
    default:
      if (isRetried(c.verdict)) return { attempt: { status: 'infra', verdict: c.verdict, reason } };
      return { attempt: { status: 'unjudgeable', verdict: c.verdict, reason } };
  }
}
