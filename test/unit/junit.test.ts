// junit.xml against a schema written from the Jenkins JUnit reader's
// published element/attribute rules (test/unit/golden/junit-lockstep.xsd),
// validated by xmllint (libxml2-utils): the published run and the same run
// with every verdict. Infrastructure verdicts are <error>, MISMATCH/PANIC
// <failure>, and the counts agree with the cells.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults, verdictClass, type CellVerdict, type Results } from '../../src/results/schema.ts';
import { renderJunit } from '../../src/report/junit.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const XSD = join(ROOT, 'test/unit/golden/junit-lockstep.xsd');
const dir = mkdtempSync(join(tmpdir(), 'lockstep-junit-'));
const published = (): Results => checkResults(JSON.parse(readFileSync(join(ROOT, 'results/results.json'), 'utf8')), 'results/results.json');
const VERDICTS: CellVerdict[] = ['MATCH', 'MISMATCH', 'SKIP', 'ERROR', 'TIMEOUT', 'PANIC', 'BOOT_FAIL', 'BUILD_FAIL', 'UNCHECKED'];

function xmllint(xml: string, name: string): { code: number | null; out: string } {
  const f = join(dir, name);
  writeFileSync(f, xml);
  // xmllint has no `--`; f is an absolute path of ours, never an option
  const p = spawnSync('xmllint', ['--noout', '--schema', XSD, f], { encoding: 'utf8' });
  if (p.error) throw p.error;
  return { code: p.status, out: p.stderr };
}

/** The published run with the verdicts cycled so every one occurs, a console excerpt with control bytes. */
function everyVerdict(): Results {
  const r = published();
  const cells = r.cells.map((c, i) => ({ ...c, verdict: VERDICTS[i % VERDICTS.length]!, reason: `reason <${i}> & "q"`, console_excerpt: 'oops\u0001 <tag>' }));
  return { ...r, cells };
}

t.test('the published run and every verdict validate against the schema', async (t) => {
  for (const [name, r] of [['published', published()], ['every', everyVerdict()]] as const) {
    const v = xmllint(renderJunit(r), `${name}.xml`);
    t.equal(v.code, 0, `${name}: ${v.out}`);
    t.match(v.out, /validates/);
  }
});

t.test('the schema refuses what the Jenkins reader refuses', async (t) => {
  const xml = renderJunit(published());
  const bad = {
    'skipped on testsuites': xml.replace('<testsuites name="lockstep"', '<testsuites skipped="1" name="lockstep"'),
    'failure before error': xml.replace(/(<testcase [^>]*>)/, '$1\n<failure type="X"/><error type="Y"/>'),
    'testcase without name': xml.replace(/<testcase classname="([^"]*)" name="[^"]*"/, '<testcase classname="$1"'),
    'negative count': xml.replace(/<testsuite name="([^"]*)" tests="\d+"/, '<testsuite name="$1" tests="-1"'),
  };
  for (const [what, x] of Object.entries(bad)) {
    t.not(x, xml, `${what}: the case changed the document`);
    t.not(xmllint(x, 'bad.xml').code, 0, `${what} is refused`);
  }
});

t.test('errors count the infrastructure verdicts, failures MISMATCH and PANIC', async (t) => {
  const r = everyVerdict();
  const xml = renderJunit(r);
  const n = (k: string): number => r.cells.filter((c) => verdictClass(c.verdict) === k).length;
  t.ok(n('infra') > 0 && n('fail') > 0 && n('skip') > 0);
  t.equal((xml.match(/<error /g) ?? []).length, n('infra'));
  t.equal((xml.match(/<failure /g) ?? []).length, n('fail'));
  t.equal((xml.match(/<skipped /g) ?? []).length, n('skip'));
  t.match(xml, new RegExp(`<testsuites name="lockstep" tests="${r.cells.length}" failures="${n('fail')}" errors="${n('infra')}" time="`));
  for (const v of ['ERROR', 'TIMEOUT', 'BOOT_FAIL', 'BUILD_FAIL']) t.match(xml, new RegExp(`<error type="${v}" message="${v}: `));
  for (const v of ['MISMATCH', 'PANIC']) t.match(xml, new RegExp(`<failure type="${v}" message="${v}: `));
  const suites = [...xml.matchAll(/<testsuite name="[^"]*" tests="(\d+)" failures="(\d+)" errors="(\d+)" skipped="(\d+)"/g)];
  t.equal(suites.reduce((s, m) => s + Number(m[3]), 0), n('infra'), 'suite errors add up');
  t.equal(suites.reduce((s, m) => s + Number(m[4]), 0), n('skip'), 'suite skips add up');
});
