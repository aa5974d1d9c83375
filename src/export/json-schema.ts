// JSON Schemas of the files people write and tools read, generated from the
// zod schemas lockstep validates with (one source): kernel specs
// (src/kernels/spec-schema.ts), scenarios (src/scenario/schema.ts) and
// results.json (src/results/schema.ts). Published under schemas/ for editors
// and other tools; `lockstep schema <kind>` prints one, `lockstep schema
// --write` regenerates the files (test/json-schema.test.ts keeps them equal).
// Pure: no I/O.

import { z } from 'zod';
import { kernelSpecFileSchema } from '../kernels/spec-schema.ts';
import { RESULTS_SCHEMA, resultsSchema } from '../results/schema.ts';
import { scenarioSchema } from '../scenario/schema.ts';

export const SCHEMA_KINDS = ['kernel-spec', 'scenario', 'results'] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];

/** File name of a kind's schema under schemas/. */
export const schemaFileName = (kind: SchemaKind): string => `${kind}.schema.json`;

const TITLES: Record<SchemaKind, string> = {
  'kernel-spec': 'lockstep kernel spec file (one spec object or an array of them)',
  scenario: 'lockstep scenario file (harness/scenarios/README.md)',
  results: `lockstep results.json (${RESULTS_SCHEMA}; @1 still reads)`,
};

const SOURCES = { 'kernel-spec': kernelSpecFileSchema, scenario: scenarioSchema, results: resultsSchema } satisfies Record<SchemaKind, z.ZodType>;

/**
 * The JSON Schema (draft 2020-12) of what lockstep accepts as input for
 * `kind`: the input side of the zod schema (defaults shown, values before
 * transforms). Checks zod cannot express as JSON Schema (cross-field rules,
 * the shell rule on names) are lockstep's own: a file valid here may still be
 * refused by lockstep with one line naming the field.
 */
export function jsonSchema(kind: SchemaKind): Record<string, unknown> {
  const s = z.toJSONSchema(SOURCES[kind], { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { $schema: s.$schema, $id: `https://lockstep.invalid/schemas/${schemaFileName(kind)}`, title: TITLES[kind], ...s };
}

/** The text of a kind's schema file (stable: 2-space JSON and a newline). */
export const jsonSchemaText = (kind: SchemaKind): string => `${JSON.stringify(jsonSchema(kind), null, 2)}\n`;
