// The generated part of docs/kernel-history.md: the facts tables rendered from
// the rows of this folder, so the document cannot drift from what the model
// reads. Pure: text in, text out (bench/kernel-history.ts does the file I/O).

import { ACCOUNTING_TABLE, type AccountingRow, rangeText } from './accounting.ts';
import { type ChangeSwitch, type UpstreamChange, mainlineText, stablesText, UPSTREAM_CHANGES } from './changes.ts';

export const GENERATED_BEGIN = '<!-- BEGIN GENERATED from src/kernel-facts by `node --import tsx bench/kernel-history.ts`: do not edit by hand -->';
export const GENERATED_END = '<!-- END GENERATED -->';

/** A markdown table cell: pipes escaped, newlines flattened. */
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

/** What a row switches, in words. */
export function switchText(s: ChangeSwitch): string {
  switch (s.kind) {
    case 'flag': return `\`${s.flag}\` = ${s.value} where carried (${!s.value} where not)`;
    case 'counter': return 'counter: `perf` (user->perf_mlock) where carried, `shared` (user->locked_vm) where not, `unknown` on the lines named';
    case 'none': return `nothing (${s.why})`;
  }
}

/** The upstream-changes table: one line per row of `changes`. */
export function changesTable(changes: readonly UpstreamChange[] = UPSTREAM_CHANGES): string {
  const out = [
    '| change | commit | mainline | stable releases | unknown from | switches in the model | source |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const c of changes) {
    const mainline = `${mainlineText(c)}${c.mainlineInferred ? ` (inferred: ${c.mainlineInferred})` : ''}`;
    out.push(`| ${[`"${c.title}"`, c.commit ?? 'not read', mainline, stablesText(c), c.unknownFrom?.join(', ') ?? '-', switchText(c.switches), c.source].map(cell).join(' | ')} |`);
  }
  return out.join('\n');
}

/** The accounting-by-release table: one line per row of `rows`. */
export function accountingTable(rows: readonly AccountingRow[] = ACCOUNTING_TABLE): string {
  return ['| versions | logic | why |', '|---|---|---|', ...rows.map((r) => `| ${[rangeText(r.range), r.accounting, r.why].map(cell).join(' | ')} |`)].join('\n');
}

/** The whole generated block, markers included. */
export function generatedBlock(changes: readonly UpstreamChange[] = UPSTREAM_CHANGES, rows: readonly AccountingRow[] = ACCOUNTING_TABLE): string {
  return [
    GENERATED_BEGIN,
    '',
    '### perf_mmap() accounting by release',
    '',
    accountingTable(rows),
    '',
    '### Upstream changes the model reads',
    '',
    'A kernel carries a change from its mainline release on, or from the stable release of its own line; a line not listed lacks it, except the lines under "unknown from", where the counter stays open (both predictions, the measurement decides).',
    '',
    changesTable(changes),
    '',
    GENERATED_END,
  ].join('\n');
}

/**
 * `doc` with the text between its GENERATED_BEGIN and GENERATED_END lines
 * replaced by `block`. Throws Error when the markers are missing or out of
 * order (the document must keep them).
 */
export function spliceGenerated(doc: string, block: string = generatedBlock()): string {
  const a = doc.indexOf(GENERATED_BEGIN);
  const b = doc.indexOf(GENERATED_END);
  if (a < 0 || b < a) throw new Error('kernel-history.md: the GENERATED markers are missing or out of order');
  return doc.slice(0, a) + block + doc.slice(b + GENERATED_END.length);
}
