// The layering goes one way: no two folders of src/ import each other
// (issue 27). A folder is a directory; a folder and its own subfolders are
// one stage of the pipeline (src/kernels with obtain/ and obtain/source/,
// src/cli with commands/) and are not held to it. An import is any
// `from '...'` or `import('...')` of a relative .ts path, type-only ones
// included. Pure: reads the source files.

import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

/** folder -> folders it imports from (relative to src/). */
function folderGraph(): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const f of tsFiles(SRC)) {
    const from = relative(SRC, dirname(f)) || '.';
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\()\s*'(\.{1,2}\/[^']+\.ts)'/g)) {
      const to = relative(SRC, dirname(resolve(dirname(f), m[1]!))) || '.';
      if (to === from) continue;
      if (!g.has(from)) g.set(from, new Set());
      g.get(from)!.add(to);
    }
  }
  return g;
}

/** Is one of the two folders inside the other (or the same)? */
const nested = (a: string, b: string): boolean => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`) || a === '.' || b === '.';

t.test('no two folders of src/ import each other', async (t) => {
  const g = folderGraph();
  t.ok(g.size > 10, `the graph is read (${g.size} folders import others)`);
  const pairs: string[] = [];
  for (const [a, outs] of g) for (const b of outs) if (a < b && !nested(a, b) && g.get(b)?.has(a)) pairs.push(`${a} <-> ${b}`);
  t.same(pairs, [], 'folder pairs that import each other');
});

t.test('the check sees a pair when there is one', async (t) => {
  const g = folderGraph();
  // a known one-way edge: the model reads the op script, never the other way round
  t.ok(g.get('model')?.has('scenario'), 'model imports scenario');
  t.notOk(g.get('scenario')?.has('model'), 'scenario does not import model');
  t.ok(nested('kernels', 'kernels/obtain/source') && !nested('kernels/obtain', 'image') && !nested('report', 'results'), 'nesting is by path, not by name prefix');
});
