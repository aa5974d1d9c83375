// What `lockstep scenarios list` prints: one row per scenario with columns as
// wide as their longest entry and the description wrapped under its own
// column. Pure: rows in, lines out.

/** One scenario as the list shows it. */
export interface ScenarioRow {
  id: string;
  /** online CPUs, or "any" for a "cpus": "any" scenario */
  cpus: number | 'any';
  /** ops of the compiled script (counts expanded) */
  ops: number;
  description: string;
}

/**
 * Greedy word wrap of `text` to lines of at most `width` characters (a word
 * longer than `width` stays whole on its own line). Whitespace runs become
 * one space. [] for an empty text.
 */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) { out.push(line); line = word; } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

/** Below this many columns for the description, it goes on its own indented lines instead. */
const MIN_DESCRIPTION = 32;

/**
 * The list as lines of at most `width` characters (where words allow):
 * `id  CPUs  ops  description`, the id column as wide as the longest id, the
 * description wrapped with its continuation lines under its first. When the
 * ids leave less than 32 columns for it, each description follows its row,
 * indented by 4.
 */
export function renderScenarioList(rows: readonly ScenarioRow[], width: number): string[] {
  const idW = Math.max(2, ...rows.map((r) => r.id.length));
  const opsW = Math.max(3, ...rows.map((r) => String(r.ops).length));
  const head = `${'id'.padEnd(idW)}  CPUs  ${'ops'.padStart(opsW)}  `;
  const descW = width - head.length;
  const below = descW < MIN_DESCRIPTION;
  const out = [`${head}${below ? '' : 'description'}`.trimEnd()];
  for (const r of rows) {
    const row = `${r.id.padEnd(idW)}  ${String(r.cpus).padStart(4)}  ${String(r.ops).padStart(opsW)}  `;
    if (below) {
      out.push(row.trimEnd());
      for (const l of wrap(r.description, Math.max(MIN_DESCRIPTION, width - 4))) out.push(`    ${l}`);
      continue;
    }
    const lines = wrap(r.description, descW);
    out.push(`${row}${lines[0] ?? ''}`.trimEnd());
    for (const l of lines.slice(1)) out.push(`${' '.repeat(head.length)}${l}`);
  }
  return out;
}
