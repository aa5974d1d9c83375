// The published JSON Schemas (schemas/) are what the zod schemas generate
// today, and what lockstep itself accepts validates against them: the
// built-in kernel specs and scenarios, and the published results.json.

import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { SCENARIO_LIMITS, limitsHeader } from '../../src/scenario/schema.ts';
import { compileScenario } from '../../src/scenario/load.ts';
import { SCHEMA_KINDS, type SchemaKind, jsonSchema, jsonSchemaText, schemaFileName } from '../../src/export/json-schema.ts';

const ROOT = join(import.meta.dirname, '../..');
const jsonFiles = (dir: string): string[] => readdirSync(join(ROOT, dir)).filter((n) => n.endsWith('.json')).sort().map((n) => join(ROOT, dir, n));
const read = (f: string): unknown => JSON.parse(readFileSync(f, 'utf8'));

t.test('schemas/ holds exactly what `lockstep schema --write` generates now', (t) => {
  for (const k of SCHEMA_KINDS) {
    const committed = readFileSync(join(ROOT, 'schemas', schemaFileName(k)), 'utf8');
    t.equal(committed, jsonSchemaText(k), `schemas/${schemaFileName(k)} is current (regenerate: npm run schemas)`);
  }
  t.end();
});

t.test('the reproducer\'s limits come from the scenario schema: 2000 explicit ballast buffers are refused at load time naming the limit', (t) => {
  t.equal(readFileSync(join(ROOT, 'harness', 'lockstep-limits.h'), 'utf8'), limitsHeader(), 'harness/lockstep-limits.h is current');
  const units = readdirSync(join(ROOT, 'harness')).filter((n) => /\.[ch]$/.test(n) && n !== 'lockstep-limits.h');
  t.ok(units.includes('repro.h') && units.length > 2, `the reproducer's units: ${units.length} files`);
  const c = units.map((n) => readFileSync(join(ROOT, 'harness', n), 'utf8')).join('\n');
  t.match(c, /#include "lockstep-limits\.h"/, 'the reproducer includes it');
  t.notMatch(c, /#define MAX_BALLAST_BUFS/, 'and defines no limit of its own');
  const scen = (n: number) => ({ id: 'b', description: 'many buffers', cpus: 2, ops: [{ op: 'ballast', via: 'perf', buffers: Array.from({ length: n }, () => 0) }] });
  t.throws(() => compileScenario(scen(2000), 'b.json'), { field: 'ops[0].buffers', message: `b.json: ops[0].buffers: 2000 buffers is more than ${SCENARIO_LIMITS.maxBallastBuffers}. Fix: use "pages" instead, or at most ${SCENARIO_LIMITS.maxBallastBuffers} entries` });
  t.doesNotThrow(() => compileScenario(scen(SCENARIO_LIMITS.maxBallastBuffers), 'b.json'), 'the limit itself loads');
  t.end();
});

t.test('built-in specs, built-in scenarios and the published results validate against the schemas', (t) => {
  const ajv = new Ajv2020({ strict: false, allErrors: false });
  const compiled = new Map<SchemaKind, ReturnType<typeof ajv.compile>>();
  const validator = (k: SchemaKind) => compiled.get(k) ?? compiled.set(k, ajv.compile(jsonSchema(k))).get(k)!;
  const cases: [SchemaKind, string[]][] = [
    ['kernel-spec', jsonFiles('kernels')],
    ['scenario', jsonFiles('harness/scenarios')],
    ['results', [join(ROOT, 'results', 'results.json')]],
  ];
  for (const [k, files] of cases) {
    const v = validator(k);
    t.ok(files.length > 0, `${k}: files to check`);
    for (const f of files) t.ok(v(read(f)), `${k}: ${f.slice(ROOT.length + 1)} ${JSON.stringify(v.errors?.slice(0, 2) ?? [])}`);
  }
  // and they refuse what lockstep refuses at the structural level
  const scen = validator('scenario');
  t.notOk(scen({ id: 'x', description: 'd', cpus: 2, ops: [{ op: 'mmap' }] }), 'unknown op');
  t.notOk(scen({ id: 'x', description: 'd', cpus: 2, ops: [{ op: 'probe' }], bogus: 1 }), 'unknown field');
  t.notOk(scen({ id: 'x;y', description: 'd', cpus: 2, ops: [{ op: 'probe' }] }), 'id pattern');
  t.notOk(validator('kernel-spec')({ id: 'k', kind: 'vmlinux' }), 'unknown kernel kind');
  t.notOk(validator('results')({ schema: 'lockstep/results@2', cells: 3 }), 'results without its fields');
  t.end();
});
