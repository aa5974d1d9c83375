// The verdict table (src/diff/verdicts.ts) is the one place that says what a
// verdict means; the readers agree with it. Pure.

import t from 'tap';
import { FAILING, isFailing, isMeasured, isRetried, VERDICT_FACTS, VERDICTS, verdictClass } from '../../src/diff/verdicts.ts';
import { verdictClass as schemaVerdictClass } from '../../src/results/schema.ts';
import { FAILING as reportFailing } from '../../src/report/analysis.ts';
import { attemptOfCell } from '../../src/bisect/behaviour.ts';

t.test('every verdict has one row, and the rows are consistent', async (t) => {
  t.same(Object.keys(VERDICT_FACTS).sort(), [...VERDICTS].sort(), 'one row per verdict');
  for (const v of VERDICTS) {
    const f = VERDICT_FACTS[v];
    t.equal(f.failing, f.class === 'fail' || f.class === 'infra', `${v}: failing exactly when the class is fail or infra`);
    if (f.retry) t.equal(f.class, 'infra', `${v}: only infrastructure verdicts are retried`);
    if (f.measured) t.not(f.class, 'infra', `${v}: a measured cell is not infrastructure`);
    t.equal(f.junit === null, !f.failing && f.class !== 'skip', `${v}: a passing testcase has no JUnit element`);
    if (f.class === 'infra') t.equal(f.junit, 'error', `${v}: infrastructure is a JUnit <error>, not a <failure>`);
  }
  t.same([...FAILING], ['MISMATCH', 'ERROR', 'TIMEOUT', 'PANIC', 'BOOT_FAIL', 'BUILD_FAIL']);
  t.same(VERDICTS.filter(isRetried), ['ERROR', 'TIMEOUT', 'BOOT_FAIL'], 'BUILD_FAIL is the tree\'s: not retried by another boot');
  t.same(VERDICTS.filter(isMeasured), ['MATCH', 'MISMATCH', 'UNCHECKED']);
  t.same(VERDICTS.filter(isFailing), FAILING);
});

t.test('readers ask the table', async (t) => {
  for (const v of VERDICTS) t.equal(schemaVerdictClass(v), verdictClass(v), `results/schema verdictClass(${v})`);
  t.equal(reportFailing, FAILING, 'report/analysis FAILING is the table\'s');
  for (const v of VERDICTS) {
    if (v === 'MATCH' || v === 'MISMATCH' || v === 'UNCHECKED' || v === 'BUILD_FAIL') continue;
    const a = attemptOfCell(null as never, { verdict: v, reason: 'x', measured: [] } as never);
    t.equal(a.attempt.status === 'infra', isRetried(v), `bisect: ${v} is ${isRetried(v) ? '' : 'not '}an infrastructure attempt`);
  }
});
