// docs/kernel-history.md's facts tables are generated from src/kernel-facts:
// this fails when the committed document and the rows disagree. Fix: run
// `node --import tsx bench/kernel-history.ts` and commit the result.

import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  type UpstreamChange, ACCOUNTING_TABLE, changesTable, GENERATED_BEGIN, GENERATED_END, generatedBlock, spliceGenerated, UPSTREAM_CHANGES,
} from '../../src/kernel-facts/index.ts';

const DOC = new URL('../../docs/kernel-history.md', import.meta.url);

t.test('the committed kernel-history.md holds exactly the generated tables', (t) => {
  const doc = readFileSync(DOC, 'utf8');
  t.equal(spliceGenerated(doc), doc, 'docs/kernel-history.md is up to date (else: node --import tsx bench/kernel-history.ts)');
  for (const c of UPSTREAM_CHANGES) t.ok(doc.includes(`"${c.title}"`), `${c.key}: its row is in the document`);
  t.equal(doc.split(GENERATED_BEGIN).length, 2, 'one generated block');
  t.end();
});

t.test('a new row shows up in the generated table; pipes cannot break it', (t) => {
  const row: UpstreamChange = {
    key: 'made-up', commit: '0123456789ab', title: 'perf: a | made-up change', mainline: '7.9', stables: ['7.8.3'],
    switches: { kind: 'none', why: 'fixture' }, source: 'test fixture, not a fact',
  };
  const table = changesTable([...UPSTREAM_CHANGES, row]);
  t.equal(table.split('\n').length, UPSTREAM_CHANGES.length + 3);
  t.match(table, /\| "perf: a \\\| made-up change" \| 0123456789ab \| v7\.9 \| 7\.8\.3 \|/);
  const doc = `intro\n${GENERATED_BEGIN}\nold\n${GENERATED_END}\nafter\n`;
  const next = spliceGenerated(doc, generatedBlock([...UPSTREAM_CHANGES, row], ACCOUNTING_TABLE));
  t.match(next, /^intro\n/);
  t.match(next, /\nafter\n$/);
  t.notMatch(next, /\nold\n/);
  t.not(next, spliceGenerated(doc), 'the row changes the document');
  t.throws(() => spliceGenerated('no markers'), /GENERATED markers/);
  t.end();
});
