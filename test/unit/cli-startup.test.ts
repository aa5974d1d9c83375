// CLI start-up loads only the commands' metadata (issue 25): every
// `lockstep ...` run imports src/cli/main.ts, and its static import closure
// is what Node loads before a command's run() starts. A command's machinery
// (the matrix runner, the runtimes, the Debian fetcher, the report renderer,
// the exporters, the zod schemas) comes through `await import()` inside
// run(), so `--help`, `--version` and a refused command line load none of it.
// Checked on the import graph itself, found with the TypeScript compiler API:
// `import ... from`, `import '...'` and `export ... from` declarations are
// followed, `import type` / `export type` and `import()` expressions are not.
// Nothing is timed. Pure: reads the source files.

import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

/** The folders of src/ whose modules start-up must not load: they do the work of a command. */
const HEAVY = ['matrix/', 'runner/', 'kernels/obtain/', 'report/', 'export/'];

/**
 * The module specifiers a file's text loads when the file is evaluated: its
 * import and export-from declarations, minus the type-only ones (an import
 * whose every named binding is `type X` is erased too). Dynamic import()
 * expressions are left out: they load when the code runs.
 */
export function staticImports(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  for (const s of sf.statements) {
    if (ts.isImportDeclaration(s)) {
      const c = s.importClause;
      const named = c?.namedBindings;
      const onlyTypes = c !== undefined && (c.isTypeOnly
        || (c.name === undefined && named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly)));
      if (!onlyTypes && ts.isStringLiteral(s.moduleSpecifier)) out.push(s.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(s) && !s.isTypeOnly && s.moduleSpecifier !== undefined && ts.isStringLiteral(s.moduleSpecifier)) {
      out.push(s.moduleSpecifier.text);
    }
  }
  return out;
}

/**
 * Every file of the repository `entry` (an absolute .ts path) loads
 * statically, itself included, as paths relative to src/; npm packages as
 * "npm:NAME". Node builtins are left out.
 */
function staticClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const f = todo.pop()!;
    const key = relative(SRC, f);
    if (seen.has(key)) continue;
    seen.add(key);
    for (const spec of staticImports(f, readFileSync(f, 'utf8'))) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) { seen.add(`npm:${spec}`); continue; }
      const target = resolve(dirname(f), spec);
      if (!existsSync(target)) throw new Error(`${relative(SRC, f)} imports ${spec}, which does not exist`);
      todo.push(target);
    }
  }
  return seen;
}

t.test('the walker follows value imports and re-exports, not type-only imports or import()', async (t) => {
  const text = [
    "import { a } from './a.ts';",
    "import b, { type B } from './b.ts';",
    "import type { C } from './c.ts';",
    "import { type D, type D2 } from './d.ts';",
    "import './e.ts';",
    "import * as f from './f.ts';",
    "export { g } from './g.ts';",
    "export type { H } from './h.ts';",
    "export * from './i.ts';",
    "import { readFileSync } from 'node:fs';",
    "import { z } from 'zod';",
    "const { j } = await import('./j.ts');",
    "export async function k() { return import('./k.ts'); }",
  ].join('\n');
  t.same(staticImports('x.ts', text), ['./a.ts', './b.ts', './e.ts', './f.ts', './g.ts', './i.ts', 'node:fs', 'zod']);
});

t.test('the closure reaches through the tree: a command runner does load the heavy folders', async (t) => {
  // the matrix runner is what `lockstep run` awaits inside run(): statically it loads the runtimes
  const runner = staticClosure(join(SRC, 'matrix', 'run.ts'));
  t.ok([...runner].some((f) => f.startsWith('runner/')), 'the matrix runner loads src/runner/ modules');
  t.ok(runner.has('npm:p-queue'), 'and npm packages');
  const bisect = staticClosure(join(SRC, 'bisect', 'env.ts'));
  t.ok([...bisect].some((f) => f.startsWith('matrix/')), 'bisect/env.ts loads src/matrix/ modules');
});

t.test('lockstep start-up (src/cli/main.ts) loads no command machinery', async (t) => {
  const closure = staticClosure(join(SRC, 'cli', 'main.ts'));
  t.ok(closure.has('cli/commands.ts'), 'main.ts loads the command registry');
  for (const name of ['run', 'simulate', 'table', 'bisect', 'bugreport', 'export', 'kernels-news']) {
    t.ok(closure.has(`cli/commands/${name}.ts`), `and the metadata of ${name}`);
  }
  const heavy = [...closure].filter((f) => HEAVY.some((h) => f.startsWith(h))).sort();
  t.same(heavy, [], `no module under ${HEAVY.join(', ')} is loaded before a command runs`);
  const loaders = [...closure].filter((f) => ['cli/common.ts', 'cli/kernel-arg.ts', 'kernels/spec.ts', 'scenario/load.ts', 'results/schema.ts', 'model/index.ts'].includes(f)).sort();
  t.same(loaders, [], 'nor the spec and scenario loaders, the results schema or the model');
  const npm = [...closure].filter((f) => f.startsWith('npm:')).sort();
  t.same(npm, [], 'nor any npm package (zod, semver, execa, ...)');
});

t.test('each command module loads only metadata: the same closure alone', async (t) => {
  const main = staticClosure(join(SRC, 'cli', 'main.ts'));
  const { COMMANDS } = await import('../../src/cli/commands.ts');
  t.ok(COMMANDS.length >= 20, `${COMMANDS.length} commands`);
  for (const f of [...main].filter((x) => x.startsWith('cli/commands/'))) {
    const own = [...staticClosure(join(SRC, f))].filter((x) => HEAVY.some((h) => x.startsWith(h)) || x.startsWith('npm:'));
    t.same(own, [], `${f} loads nothing heavy statically`);
  }
});

t.test('`lockstep schema --help` names the kinds the schema exporter has', async (t) => {
  // the help spells them so that it loads no schema; they must not drift apart
  const { HELP_KINDS, command } = await import('../../src/cli/commands/schema.ts');
  const { SCHEMA_KINDS } = await import('../../src/export/json-schema.ts');
  t.equal(HELP_KINDS, SCHEMA_KINDS.join('|'));
  t.equal(command.args, `[${SCHEMA_KINDS.join('|')}]`);
});

t.test('`lockstep kernels news --help` names the fetcher\'s default flavour', async (t) => {
  const { command } = await import('../../src/cli/commands/kernels-news.ts');
  const { DEFAULT_FLAVOUR } = await import('../../src/kernels/obtain/deb-kernels.ts');
  t.equal(command.options.flavour?.help, `kernel flavour [default: ${DEFAULT_FLAVOUR}]`);
});

t.test('--version prints the version results.json records', async (t) => {
  const { LOCKSTEP_VERSION, RESULTS_SCHEMA } = await import('../../src/results/version.ts');
  const schema = await import('../../src/results/schema.ts');
  t.equal(schema.RESULTS_SCHEMA, RESULTS_SCHEMA, 'results/schema.ts writes the schema --version names');
  t.match(LOCKSTEP_VERSION, /^\d+\.\d+\.\d+$/);
});
