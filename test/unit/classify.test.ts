// The classifier: which logic a kernel behaves like, from its measured cells
// only, with the evidence. Pure tests over synthetic kernels (what a kernel
// implementing exactly one logic would print), then real measurements of
// three kernels that differ: the host (6.18, V4/shared), Debian 6.1.190
// (V3/shared) and Debian 6.1.192 (V3/perf), each once with its expected
// logic (MATCH cells) and once with expect: unknown (UNCHECKED cells).
// Tier: unit (its subtests moved unchanged from test/classify.test.ts; the rest is in test/smoke/classify.test.ts, test/integration/classify.test.ts).

import t from 'tap';
import { classifyWithEvidence, groupClasses, refutationText } from '../../src/diff/evidence.ts';
import { ALL_LOGICS, logicLabel, parseLogic, simulate } from '../../src/model/index.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { syntheticMeasured } from '../../src/diff/discriminate.ts';
import { usesAux } from '../../src/scenario/ops.ts';

const scenarios = builtinScenarios().map((l) => l.compiled);
const two = scenarios.filter((s) => s.cpus === 2);
const get = (id: string) => scenarios.find((s) => s.id === id)!;

// ---------------------------------------------------------------------------
// Pure

t.test('classes: V1 and V3 are one class without AUX cells; with them V1b|V3 only', (t) => {
  t.strictSame(groupClasses(['V1/shared', 'V1a/shared', 'V1b/shared', 'V3/shared'].map(parseLogic)), ['V1|V3/shared'], 'the whole V1 family is one class');
  t.strictSame(groupClasses(['V1/shared', 'V1a/shared', 'V1b/shared', 'V3/shared'].map(parseLogic), true), ['V1/shared', 'V1a/shared', 'V1b|V3/shared'], 'AUX cells ran');
  t.strictSame(groupClasses(['V1/shared', 'V3/shared', 'V4/shared'].map(parseLogic)), ['V1|V3/shared', 'V4/shared']);
  t.strictSame(groupClasses(['V1/perf', 'V3/shared'].map(parseLogic)), ['V1/perf', 'V3/shared'], 'only with the same counter');
  t.strictSame(groupClasses(['V3/perf'].map(parseLogic)), ['V3/perf']);
  t.end();
});

t.test('a kernel implementing exactly one logic is classified as that logic (or V1b|V3) by the 2-CPU built-ins, AUX ones included', (t) => {
  t.ok(two.some(usesAux), 'the AUX scenarios are among them');
  for (const logic of ALL_LOGICS) {
    const cells = two.map((s) => ({ scenario: s, measured: syntheticMeasured(s, simulate(s, logic)) }));
    const c = classifyWithEvidence(cells);
    // V1 and V1a stand alone once AUX cells ran; V1b and V3 never differ (same split, same AUX unmap).
    const want = logic.accounting === 'V1b' || logic.accounting === 'V3' ? `V1b|V3/${logic.counter}` : logicLabel(logic);
    t.equal(c.label, want, `${logicLabel(logic)} -> ${c.label}`);
    t.equal(c.status, 'identified');
    // Every other logic is ruled out by some scenario, and the evidence says which.
    const ruledOut = new Set(c.evidence.flatMap((e) => e.ruledOut));
    for (const other of ALL_LOGICS) {
      if (c.logics.includes(logicLabel(other))) continue;
      t.ok(ruledOut.has(logicLabel(other)), `${logicLabel(logic)}: ${logicLabel(other)} has evidence against it`);
    }
  }
  t.end();
});

t.test('ambiguous and none', (t) => {
  const v3 = { accounting: 'V3', counter: 'shared' } as const;
  const base = get('baseline');
  const amb = classifyWithEvidence([{ scenario: base, measured: syntheticMeasured(base, simulate(base, v3)) }]);
  t.equal(amb.status, 'ambiguous', 'baseline alone tells nothing apart');
  t.equal(amb.label, 'ambiguous: V0/shared, V0/perf, V1|V3/shared, V1|V3/perf, V2/shared, V2/perf, V4/shared, V4/perf');
  t.strictSame(amb.evidence, []);

  // A kernel no logic explains: VmPin grows where every logic says it cannot.
  const s = get('munmap-returns');
  const m = syntheticMeasured(s, simulate(s, v3));
  const k = s.ops.findIndex((o) => o.op === 'map');
  m[k] = { ...m[k]!, vmpin_kb: 4 };
  const none = classifyWithEvidence([{ scenario: s, measured: m }]);
  t.equal(none.status, 'none');
  t.equal(none.evidence.length, 1, 'one reason for all fourteen');
  t.equal(none.evidence[0]!.ruledOut.length, 14);
  t.match(refutationText(none.evidence[0]!), new RegExp(`^munmap-returns ruled out V0/shared, .*: op ${k} \\(map\\): pinned measured 1, predicted 0$`));

  t.equal(classifyWithEvidence([]).status, 'no-cells');
  t.end();
});
