// What `lockstep classify` prints for one kernel: its label, how it stands
// to the expected logic, and the evidence. Pure text; the classification is
// src/diff/evidence.ts.

import { type KernelClassification, refutationText } from '../diff/evidence.ts';

/**
 * How the logics the cells fit (["V4/shared", ...]) stand to the expected
 * label: none expected, consistent or NOT; for an expectation whose counter
 * the facts table leaves open ("V4/unknown"), the logic is compared and the
 * counter the cells measure is named.
 */
function agreementText(logics: readonly string[], expected: string | null): string {
  if (expected === null) return 'no expected logic (expect: unknown)';
  if (!expected.endsWith('/unknown')) return logics.includes(expected) ? `consistent with the expected ${expected}` : `NOT the expected ${expected}`;
  const logic = expected.slice(0, -'/unknown'.length);
  const counters = [...new Set(logics.filter((l) => l.startsWith(`${logic}/`)).map((l) => l.split('/')[1]))];
  if (!counters.length) return `NOT the expected ${logic} (counter open)`;
  return `consistent with the expected ${logic}; the counter, open in the facts table, measures ${counters.join(' or ')}`;
}

/** The report for one kernel, as printed. */
export function classificationText(c: KernelClassification, expected: string | null): string {
  const lines: string[] = [];
  const agree = agreementText(c.logics, expected);
  lines.push(`${c.kernel}: ${c.label}  (${c.scenarios.length} cells; ${agree})`);
  if (c.status === 'ambiguous') lines.push('  the scenarios run cannot tell these apart; add cells that separate them (remmap: V4, shared-counter: the counter, sysctl-lowered: V2, overage: V0)');
  if (c.status === 'none') lines.push('  no logic of the model explains every cell: see the evidence, and `lockstep diff` for the cells themselves');
  if (c.evidence.length) {
    lines.push('  evidence:');
    for (const r of c.evidence) lines.push(`    ${refutationText(r)}`);
  } else if (c.scenarios.length) {
    lines.push('  evidence: no cell ruled out any candidate');
  }
  for (const x of c.ignored) lines.push(`  left out ${x.scenario}: ${x.reason}`);
  return lines.join('\n');
}
