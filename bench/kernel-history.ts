// Regenerates the facts tables of docs/kernel-history.md from src/kernel-facts
// (the rows the model reads). Not a benchmark: it lives here beside the other
// developer scripts.
//
//   node --import tsx bench/kernel-history.ts           rewrite the document
//   node --import tsx bench/kernel-history.ts --check   exit 1 if it is stale
//
// test/unit/kernel-history-doc.test.ts fails when the committed document
// differs from what this writes.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spliceGenerated } from '../src/kernel-facts/history-doc.ts';

const { values } = parseArgs({ options: { check: { type: 'boolean' } } });
const file = fileURLToPath(new URL('../docs/kernel-history.md', import.meta.url));
const doc = readFileSync(file, 'utf8');
const next = spliceGenerated(doc);
if (values.check) {
  if (next !== doc) {
    console.error('docs/kernel-history.md is stale: run node --import tsx bench/kernel-history.ts');
    process.exit(1);
  }
  console.log('docs/kernel-history.md is up to date');
} else if (next !== doc) {
  writeFileSync(file, next);
  console.log('docs/kernel-history.md: facts tables regenerated');
} else console.log('docs/kernel-history.md: already up to date');
