// `lockstep kernels compat`: the compatibility table of every Debian kernel
// package version lockstep measured (results/compat.json, rendered as
// results/compat.md and in report.html). `--add DIR` merges the Debian
// kernels of a run into it; the pure part is src/report/compat.ts.

import { dirname, join, resolve } from 'node:path';
import type { CompatTable } from '../../report/compat.ts';
import type { CompiledScenario } from '../../scenario/ops.ts';
import { ConfigError } from '../../util/errors.ts';
import { readRegularFile } from '../../util/input.ts';
import { type Command, resultsPath, scenarioOptions } from '../command.ts';

export const DEFAULT_COMPAT = 'results/compat.json';


/**
 * Read a compat.json: the table, or an empty one when `path` does not exist
 * and `missingOk`. Throws ConfigError (exit 2) naming the file and field when
 * it is not a regular file, not JSON, or not lockstep/compat@1.
 */
export async function readCompat(path: string, field: string, missingOk: boolean): Promise<CompatTable> {
  const { CompatFormatError, COMPAT_SCHEMA, parseCompat } = await import('../../report/compat.ts');
  const { parseJsonStrict } = await import('../../util/json.ts');
  let text: string;
  try {
    text = await readRegularFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && missingOk) return { schema: COMPAT_SCHEMA, rows: [] };
    throw new ConfigError(path, field, `cannot read: ${(e as Error).message}`, 'name a compat.json written by `lockstep kernels compat --add`');
  }
  let data: unknown;
  try {
    data = parseJsonStrict(text);
  } catch (e) {
    throw new ConfigError(path, field, `not valid JSON (${(e as Error).message})`, 'fix the file, or restore it from git');
  }
  try {
    return parseCompat(data);
  } catch (e) {
    if (!(e instanceof CompatFormatError)) throw e;
    throw new ConfigError(path, e.field, e.why, `a ${COMPAT_SCHEMA} file as \`lockstep kernels compat --add\` writes it`);
  }
}

export const command: Command = {
  name: 'kernels compat',
  args: '',
  summary: 'print or grow the table of every Debian kernel measured (compat.json): kernel, suite, package version, expected, classified, date',
  description: `The compatibility table keeps one row per Debian kernel package version ever
measured: upstream kernel, suite, Debian version, the expectation "expect": "auto" gave it,
the logic \`lockstep classify\` names from its cells, whether they agree, its cells per verdict,
the failing scenarios and the day it was measured. It lives in the repository
(results/compat.json, with results/compat.md beside it) and report.html renders it
(\`lockstep report DIR --compat results/compat.json\`).
--add DIR merges the Debian kernels of a run (kernels with a Debian resolution) into the
table: a package version measured again is replaced by the newer row; no row is ever dropped.
The nightly measures what \`lockstep kernels news --specs\` lists as new and adds it.
Without --add, prints the table (Markdown, or JSON with --json). Exit 0; 2 on bad input.`,
  options: {
    add: { type: 'string', multiple: true, arg: 'DIR', help: 'merge the Debian kernels of this run (a results directory or results.json) into the table' },
    file: { type: 'string', arg: 'FILE', help: `the table [default: ${DEFAULT_COMPAT}]` },
    json: { type: 'boolean', help: 'print the table as JSON' },
    ...scenarioOptions,
  },
  examples: ['lockstep kernels compat', 'lockstep kernels news --specs /tmp/new.json && lockstep run --kernel-spec /tmp/new.json --no-builtin-kernels --out /tmp/new && lockstep kernels compat --add /tmp/new'],
  async run(v, pos) {
    if (pos.length) throw new ConfigError('command line', pos[0]!, 'unexpected argument', 'pass runs with --add DIR');
    const { compatRowsOfRun, mergeCompat, renderCompatMarkdown } = await import('../../report/compat.ts');
    const { readResults, writeAtomic } = await import('../../results/write.ts');
    const file = resolve(v.file ? String(v.file) : DEFAULT_COMPAT);
    const adds = (v.add as string[] | undefined) ?? [];
    let table = await readCompat(file, '--file', adds.length > 0);
    if (adds.length) {
      const { loadScenarios } = await import('../common.ts');
      const { scenarioHash } = await import('../../scenario/load.ts');
      const known = new Map<string, CompiledScenario>();
      for (const s of await loadScenarios(v)) known.set(scenarioHash(s), s);
      for (const dir of adds) {
        const rows = compatRowsOfRun(await readResults(resultsPath(dir)), known);
        if (!rows.length) throw new ConfigError(resultsPath(dir), 'kernels', 'no Debian kernel in this run (no kernels[].resolution)', 'add a run of debian-image kernels, e.g. one made from `lockstep kernels news --specs`');
        const m = mergeCompat(table, rows);
        table = m.table;
        console.error(`lockstep kernels compat: ${dir}: ${m.added.length} added, ${m.replaced.length} measured again`);
      }
      await writeAtomic(file, `${JSON.stringify(table, null, 1)}\n`);
      await writeAtomic(join(dirname(file), 'compat.md'), renderCompatMarkdown(table));
      console.error(`lockstep kernels compat: wrote ${file} and compat.md beside it (${table.rows.length} rows)`);
      return 0;
    }
    process.stdout.write(v.json ? `${JSON.stringify(table, null, 1)}\n` : renderCompatMarkdown(table));
    return 0;
  },
};
