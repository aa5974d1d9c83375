import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SchemaKind } from '../../export/json-schema.ts';
import { ConfigError } from '../../util/errors.ts';
import type { Command } from '../command.ts';
import { repoPath } from '../../util/repo-root.ts';

/** schemas/ of this checkout. */
export const SCHEMAS_DIR = repoPath('schemas') + '/';
/** The reproducer's limits shared with the scenario schema. */
export const LIMITS_HEADER = repoPath('harness', 'lockstep-limits.h');

/**
 * The kinds in `lockstep schema --help`: SCHEMA_KINDS of
 * src/export/json-schema.ts, spelled here so that the help loads no schema
 * (test/unit/cli-startup.test.ts checks that the two agree).
 */
export const HELP_KINDS = 'kernel-spec|scenario|results';

export const command: Command = {
  name: 'schema',
  args: `[${HELP_KINDS}]`,
  summary: 'print the JSON Schema of kernel specs, scenarios or results.json (--write: regenerate schemas/)',
  description: `Prints the JSON Schema (draft 2020-12) generated from the schema lockstep
validates with, for editors and other tools. The same files are committed under
schemas/; --write regenerates them all (npm run schemas), and harness/lockstep-limits.h,
the limits the reproducer shares with the scenario schema.`,
  options: {
    write: { type: 'boolean', help: 'write every schema to schemas/<kind>.schema.json instead of printing one' },
  },
  examples: ['lockstep schema scenario > scenario.schema.json', 'lockstep schema --write'],
  async run(v, positionals) {
    const { SCHEMA_KINDS, jsonSchemaText, schemaFileName } = await import('../../export/json-schema.ts');
    const { limitsHeader } = await import('../../scenario/schema.ts');
    if (v.write) {
      for (const k of SCHEMA_KINDS) writeFileSync(join(SCHEMAS_DIR, schemaFileName(k)), jsonSchemaText(k));
      writeFileSync(LIMITS_HEADER, limitsHeader());
      console.log(`wrote ${SCHEMA_KINDS.map(schemaFileName).join(', ')} to ${SCHEMAS_DIR}, and ${LIMITS_HEADER}`);
      return 0;
    }
    const kind = positionals[0];
    if (positionals.length !== 1 || !(SCHEMA_KINDS as readonly string[]).includes(kind!)) {
      throw new ConfigError('command line', 'KIND', `${kind === undefined ? 'no kind given' : `unknown kind ${JSON.stringify(kind)}`}`, `use one of ${SCHEMA_KINDS.join(', ')}, or --write`);
    }
    process.stdout.write(jsonSchemaText(kind as SchemaKind));
    return 0;
  },
};
