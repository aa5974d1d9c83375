// The reproducer (harness/) is built from compilation units, one job each
// (issue 27 item 7): the Makefile builds exactly the .c files there are, no
// file #includes a .c, every quoted include names a header of harness/, and
// repro.h's map of the units names every one of them. Pure: reads files.

import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const HARNESS = join(import.meta.dirname, '..', '..', 'harness');
const read = (n: string): string => readFileSync(join(HARNESS, n), 'utf8');
const own = readdirSync(HARNESS).filter((n) => /\.[ch]$/.test(n));
const units = own.filter((n) => n.endsWith('.c')).sort();

/** The value of a one-line `NAME = words` assignment of the Makefile, as words. */
function makeVar(makefile: string, name: string): string[] {
  const m = new RegExp(`^${name}\\s*=(.*)$`, 'm').exec(makefile);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

t.test('the Makefile builds every unit of harness/, and only those', async (t) => {
  t.ok(units.length > 2, `${units.length} units`);
  const srcs = makeVar(read('Makefile'), 'SRCS');
  t.same([...srcs].sort(), units, 'SRCS lists exactly the .c files of harness/');
  t.equal(new Set(srcs).size, srcs.length, 'no unit listed twice');
});

t.test('no file #includes a .c, and every quoted include is a header of harness/', async (t) => {
  for (const f of own) {
    const quoted = [...read(f).matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)].map((m) => m[1]);
    t.same(quoted.filter((q) => !q.endsWith('.h')), [], `${f} includes no .c`);
    t.same(quoted.filter((q) => !own.includes(q)), [], `${f}: its quoted includes exist in harness/`);
  }
});

t.test('repro.h, the shared header, maps every unit and is included by each', async (t) => {
  const header = read('repro.h');
  for (const u of units) {
    t.match(header, new RegExp(`^ \\*\\s+${u.replace('.', '\\.')}\\s+\\S`, 'm'), `repro.h says what ${u} does`);
    t.match(read(u), /^#include "repro\.h"$/m, `${u} includes repro.h`);
  }
});
