// `lockstep export kcidb`: the published run (and the same run with every
// verdict) exported through the CLI and validated with ajv against the kcidb
// I/O v5.3 JSON Schema kept in src/export/.

import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { checkResults, type CellVerdict, type Results } from '../../src/results/schema.ts';
import { KCIDB_STATUS } from '../../src/export/kcidb.ts';
import { runBatch } from '../lib/cli-batch.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const addFormats = addFormatsModule as unknown as (a: Ajv) => Ajv;
const schema = JSON.parse(readFileSync(join(ROOT, 'src/export/kcidb-io-v5.3.schema.json'), 'utf8'));
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const validate = ajv.compile(schema);
const dir = mkdtempSync(join(tmpdir(), 'lockstep-kcidb-'));

/**
 * Every run of the file exported before the subtests, through the CLI in one
 * process (test/lib/cli-batch.ts: main() in-process, cwd ROOT): name ->
 * its kcidb.json. A failed export throws with its stderr.
 */
async function exportRuns(runs: Record<string, Results>): Promise<Record<string, Record<string, any>>> {
  const names = Object.keys(runs);
  for (const name of names) {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, 'results.json'), JSON.stringify(runs[name]));
  }
  const out = await runBatch(names.map((name) => ['export', 'kcidb', join(dir, name)]), { cwd: ROOT });
  return Object.fromEntries(names.map((name, i) => {
    if (out[i]!.code !== 0) throw new Error(out[i]!.stderr);
    return [name, JSON.parse(readFileSync(join(dir, name, 'kcidb.json'), 'utf8')) as Record<string, any>];
  }));
}
const hasNull = (v: unknown): boolean => v === null || (typeof v === 'object' && Object.values(v as object).some(hasNull));
/** The published run, read as every reader reads it (results@2: provenance expanded into its cells). */
const published = (): Results => checkResults(JSON.parse(readFileSync(join(ROOT, 'results/results.json'), 'utf8')), 'results/results.json');

// the 'every verdict' run: one qemu kernel's cells all BUILD_FAIL, one's BOOT_FAIL, one's every other verdict in turn
const verdictRun = published();
const [kb, kc, kd] = [...new Set(verdictRun.cells.filter((c) => c.runtime === 'qemu').map((c) => c.kernel))];
const set = (kernel: string, v: CellVerdict) => verdictRun.cells.filter((c) => c.kernel === kernel).forEach((c) => { c.verdict = v; c.reason = `${v} here`; });
set(kb!, 'BUILD_FAIL');
set(kc!, 'BOOT_FAIL');
const verdicts: CellVerdict[] = ['MISMATCH', 'PANIC', 'TIMEOUT', 'ERROR', 'SKIP', 'UNCHECKED', 'MATCH'];
verdictRun.cells.filter((c) => c.kernel === kd).forEach((c, i) => { c.verdict = verdicts[i % verdicts.length]!; });
const exported = await exportRuns({ published: published(), verdicts: verdictRun, neg: published() });

t.test('the published run is a valid kcidb v5.3 submission', (t) => {
  const r = published();
  const k = exported.published!;
  t.ok(validate(k), JSON.stringify(validate.errors?.slice(0, 3)));
  t.strictSame(k.version, { major: 5, minor: 3 });
  t.notOk(hasNull(k), 'no nulls');
  const kernels = new Set(r.cells.map((c) => c.kernel));
  t.equal(k.checkouts.length, new Set(r.cells.map((c) => c.kernel_source ?? c.kernel)).size, 'one checkout per kernel source');
  t.equal(k.builds.length, kernels.size);
  const cellTests = k.tests.filter((x: any) => x.path !== 'lockstep.boot');
  t.equal(cellTests.length, r.cells.length, 'one test per cell');
  const boots = new Set(r.cells.filter((c) => c.runtime === 'qemu').map((c) => `${c.kernel}@${c.cpus}`));
  t.equal(k.tests.length - cellTests.length, boots.size, 'one boot test per boot');
  const ids = [...k.checkouts, ...k.builds, ...k.tests].map((x: any) => x.id);
  t.equal(new Set(ids).size, ids.length, 'ids unique');
  const buildIds = new Set(k.builds.map((b: any) => b.id));
  t.ok(k.tests.every((x: any) => buildIds.has(x.build_id)), 'every test names a build of the submission');
  const c0 = r.cells.find((c) => c.runtime === 'qemu' && c.kernel_artifact_sha256)!;
  t.ok(k.builds.some((b: any) => b.id === `lockstep:build-${c0.kernel_artifact_sha256}`), 'build id = the bzImage sha256 lockstep recorded');
  const qt = cellTests.find((x: any) => x.environment.misc.runtime === 'qemu');
  t.match(qt.environment.misc.qemu_command_line, /^qemu-system-x86_64 .*-smp \d+/, 'the QEMU command line');
  t.type(qt.environment.misc.cpus, 'number');
  t.ok(['tcg', 'kvm'].includes(qt.environment.misc.accelerator));
  t.end();
});

t.test('every verdict maps to its KCIDB status; build and boot carry the FAIL', (t) => {
  const r = verdictRun;
  const k = exported.verdicts!;
  t.ok(validate(k), JSON.stringify(validate.errors?.slice(0, 3)));
  t.notOk(hasNull(k));
  const want: Record<CellVerdict, string> = { MATCH: 'PASS', MISMATCH: 'FAIL', PANIC: 'FAIL', TIMEOUT: 'ERROR', ERROR: 'ERROR', BOOT_FAIL: 'MISS', BUILD_FAIL: 'MISS', SKIP: 'SKIP', UNCHECKED: 'DONE' };
  t.strictSame(KCIDB_STATUS, want);
  for (const c of r.cells) {
    const test = k.tests.find((x: any) => x.path === `lockstep.${c.scenario}` && x.misc.verdict === c.verdict && x.comment === `${c.kernel} x ${c.scenario}: ${c.verdict}`);
    t.equal(test?.status, want[c.verdict], `${c.kernel} x ${c.scenario}: ${c.verdict}`);
  }
  const buildOf = (kernel: string) => k.builds.find((b: any) => b.misc.kernel_id === kernel);
  t.equal(buildOf(kb!).status, 'FAIL', 'BUILD_FAIL: the build is FAIL');
  t.match(buildOf(kb!).log_excerpt, /BUILD_FAIL here/);
  t.equal(buildOf(kc!).status, 'PASS');
  const boot = (kernel: string) => k.tests.filter((x: any) => x.path === 'lockstep.boot' && x.build_id === buildOf(kernel).id);
  t.ok(boot(kc!).length && boot(kc!).every((x: any) => x.status === 'FAIL'), 'BOOT_FAIL: the boot test is FAIL');
  t.ok(boot(kb!).every((x: any) => x.status === 'MISS'), 'never built: the boot is MISS');
  t.end();
});

t.test('the schema really checks: a null, a bad status, a bad id are refused', (t) => {
  const k = exported.neg!;
  const bad = (f: (x: any) => void) => { const c = structuredClone(k); f(c); return validate(c); };
  t.notOk(bad((c) => { c.tests[0].comment = null; }), 'null');
  t.notOk(bad((c) => { c.tests[0].status = 'OK'; }), 'status');
  t.notOk(bad((c) => { c.builds[0].id = 'no-origin'; }), 'id without origin');
  t.notOk(bad((c) => { c.version.major = 4; }), 'version');
  t.end();
});
