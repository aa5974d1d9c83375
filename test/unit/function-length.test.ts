// Functions that fit a screen: no function, method, constructor, accessor or
// arrow function in src/ is over MAX_LINES lines (the project's standard,
// issue 27). Found with the TypeScript compiler API: a function's length is
// the lines from its first token (decorators and doc comment excluded) to its
// closing brace, inclusive; a nested function counts within its parent too.
// Pure: reads the source files.

import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));
const MAX_LINES = 150;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

interface FnLength {
  /** file:line of the function's first line (1-based) */
  at: string;
  name: string;
  lines: number;
}

/** The name a function is known by: its own, its variable's or property's, or "(anonymous)". */
function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  const own = (node as { name?: ts.Node }).name;
  if (own !== undefined) return own.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const p = node.parent;
  if (p !== undefined && (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p))) return p.name.getText(sf);
  return '(anonymous)';
}

/** Every function-like node of one file's text, with its length in lines. */
export function functionLengths(fileName: string, text: string): FnLength[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: FnLength[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && (node as { body?: ts.Node }).body !== undefined) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ at: `${fileName}:${first + 1}`, name: nameOf(node, sf), lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

t.test('the walker measures functions, methods and arrows, and names them', async (t) => {
  const body = (n: number): string => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');
  const text = [
    'export function big(): number {', // line 1
    '  let x = 0;',
    body(150),
    '  return x;',
    '}', // line 154: 154 lines
    'const small = (a: number) => a + 1;', // line 155
    'class C {',
    '  m(): void {', // line 157
    body(3),
    '  }', // line 161: 5 lines
    '}',
    'declare function nobody(): void;',
  ].join('\n');
  const got = functionLengths('x.ts', text);
  t.strictSame(got.map((f) => [f.at, f.name, f.lines]), [
    ['x.ts:1', 'big', 154],
    ['x.ts:155', 'small', 1],
    ['x.ts:157', 'm', 5],
  ], 'each function with a body, its first line, its name and its length; a declaration without a body is not one');
  t.ok(got.filter((f) => f.lines > MAX_LINES).length === 1, 'a 154-line function is over the limit');
});

t.test(`no function in src/ is over ${MAX_LINES} lines`, async (t) => {
  const files = tsFiles(SRC);
  t.ok(files.length > 50, `src/ has its .ts files (${files.length})`);
  const all = files.flatMap((f) => functionLengths(relative(join(SRC, '..'), f), readFileSync(f, 'utf8')));
  t.ok(all.length > 500, `functions found (${all.length})`);
  const over = all.filter((f) => f.lines > MAX_LINES).map((f) => `${f.at} ${f.name}: ${f.lines} lines`);
  t.strictSame(over, [], `split these into functions of at most ${MAX_LINES} lines (aim under 80)`);
});
