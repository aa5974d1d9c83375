// The shipped kcidb v5.3 schema copy (src/export/kcidb-io-v5.3.schema.json)
// is as strict as kcidb-io's own: the cases upstream's validator refuses
// (test path characters, git:// repository URLs, NUL in ids, resource names
// with directories) are refused here too. And the export: log_url only under
// an https --artifact-base-url, v5.1 finish times, v5.3 input_files.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { checkResults, type Results } from '../../src/results/schema.ts';
import { component, toKcidb } from '../../src/export/kcidb.ts';
import { artifactUrl, httpsBase } from '../../src/export/artifact-url.ts';
import { ConfigError } from '../../src/util/errors.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const addFormats = addFormatsModule as unknown as (a: Ajv) => Ajv;
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'src/export/kcidb-io-v5.3.schema.json'), 'utf8')));
const published = (): Results => checkResults(JSON.parse(readFileSync(join(ROOT, 'results/results.json'), 'utf8')), 'results/results.json');
const BASE = 'https://ci.example.org/runs/42/';

/** A minimal valid submission: one checkout, build, test. */
const minimal = (): any => ({
  version: { major: 5, minor: 3 },
  checkouts: [{ id: 'lockstep:c1', origin: 'lockstep', git_repository_url: 'https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git' }],
  builds: [{ id: 'lockstep:b1', checkout_id: 'lockstep:c1', origin: 'lockstep', input_files: [{ name: 'linux.tar.xz', url: 'https://example.org/linux.tar.xz' }] }],
  tests: [{ id: 'lockstep:t1', build_id: 'lockstep:b1', origin: 'lockstep', path: 'lockstep.incident', status: 'PASS' }],
});

t.test('the minimal submission is valid (so each refusal below is its one change)', (t) => {
  t.ok(validate(minimal()), JSON.stringify(validate.errors));
  t.end();
});

t.test('what kcidb-io v5.3 refuses, the shipped schema refuses', (t) => {
  const cases: [string, (s: any) => void][] = [
    ['a test path component with a space', (s) => { s.tests[0].path = 'lockstep.cpu offline'; }],
    ['a test path component with a colon', (s) => { s.tests[0].path = 'lockstep.pre-fix:incident'; }],
    ['a test path component with a slash', (s) => { s.tests[0].path = 'lockstep/incident'; }],
    ['an empty path component', (s) => { s.tests[0].path = 'lockstep..incident'; }],
    ['a trailing dot', (s) => { s.tests[0].path = 'lockstep.'; }],
    ['a git:// repository URL', (s) => { s.checkouts[0].git_repository_url = 'git://git.kernel.org/pub/scm/linux.git'; }],
    ['an http:// repository URL', (s) => { s.checkouts[0].git_repository_url = 'http://git.kernel.org/linux.git'; }],
    ['a NUL in a test id', (s) => { s.tests[0].id = 'lockstep:t\u00001'; }],
    ['a NUL in a build id reference', (s) => { s.tests[0].build_id = 'lockstep:b\u00001'; }],
    ['an id without origin', (s) => { s.builds[0].id = 'b1'; }],
    ['an upper-case origin in an id', (s) => { s.checkouts[0].id = 'Lockstep:c1'; }],
    ['a resource name with a directory', (s) => { s.builds[0].input_files[0].name = 'src/linux.tar.xz'; }],
    ['a resource without url', (s) => { delete s.builds[0].input_files[0].url; }],
    ['a short commit hash', (s) => { s.checkouts[0].git_commit_hash = 'abc123'; }],
    ['a null', (s) => { s.tests[0].comment = null; }],
  ];
  for (const [what, change] of cases) {
    const s = minimal();
    change(s);
    t.notOk(validate(s), `${what} is refused`);
  }
  // Accepted by upstream too: a newline in an id, an empty path (the root).
  const ok = minimal();
  ok.tests[0].id = 'lockstep:t\n1';
  ok.tests[0].path = '';
  t.ok(validate(ok), JSON.stringify(validate.errors));
  t.end();
});

t.test('test path components are what kcidb-io allows', (t) => {
  t.equal(component('pre-fix:incident v2.1'), 'pre-fix_incident_v2_1');
  t.equal(component('cpu-offline'), 'cpu-offline');
  t.equal(component(''), '_');
  t.end();
});

t.test('log_url only under an https --artifact-base-url', (t) => {
  const r = published();
  const without = toKcidb(r);
  t.ok(validate(without), JSON.stringify(validate.errors?.slice(0, 3)));
  const all = [...without.checkouts, ...without.builds, ...without.tests];
  t.notOk(all.some((x) => 'log_url' in x || 'output_files' in x), 'no log_url without a base URL');
  t.notOk(JSON.stringify(without).includes('file:'), 'no file:// URL anywhere');

  const k = toKcidb(r, { artifactBaseUrl: httpsBase('https://ci.example.org/runs/42') });
  t.ok(validate(k), JSON.stringify(validate.errors?.slice(0, 3)));
  for (const test of k.tests) {
    const cell = r.cells.find((c) => test.comment === `${c.kernel} x ${c.scenario}: ${c.verdict}`);
    const log = test.path === 'lockstep.boot' ? r.cells.find((c) => test.comment === `${c.kernel} booted with ${c.cpus} CPUs`)?.console_log : cell?.results_log;
    if (log) t.equal(test.log_url, BASE + log.split('/').map(encodeURIComponent).join('/'), `${test.comment}: its log under the base`);
    else t.notOk('log_url' in test, `${test.comment}: no log, no log_url`);
  }
  const cellTests = k.tests.filter((x) => x.path !== 'lockstep.boot');
  t.ok(cellTests.every((x) => JSON.stringify(x.input_files) === JSON.stringify([{ name: 'results.json', url: `${BASE}results.json` }])), 'v5.3 input_files: the results.json holding the op script and expected values');
  t.end();
});

t.test('the base URL and each log path are checked', (t) => {
  for (const bad of ['http://ci.example.org/', 'file:///tmp/x', 'ftp://x/', 'https://u:p@x/', 'https://x/?a=1', 'not a url', '-o']) {
    t.throws(() => httpsBase(bad), ConfigError, `${bad} refused`);
  }
  t.equal(httpsBase('https://x.org/a'), 'https://x.org/a/');
  t.equal(artifactUrl(BASE, 'logs/k@2cpu/console.log'), `${BASE}logs/k%402cpu/console.log`);
  for (const bad of ['/abs/console.log', '../up/console.log', 'logs/../../x', 'https://evil/x', '', null]) t.equal(artifactUrl(BASE, bad), undefined, `${String(bad)}: not under the base`);
  t.end();
});

t.test('v5.1 finish times: only for a complete run, not before the start', (t) => {
  const r = published();
  const k = toKcidb(r);
  for (const c of k.checkouts) {
    t.equal(c.origin_tests_finish_time, r.finished_at ?? c.origin_tests_finish_time);
    t.ok(Date.parse(String(c.origin_builds_finish_time)) >= Date.parse(r.started_at));
    t.ok(Date.parse(String(c.origin_builds_finish_time)) <= Date.parse(String(c.origin_tests_finish_time)));
  }
  const partial = toKcidb({ ...r, complete: false });
  t.notOk(partial.checkouts.some((c) => 'origin_tests_finish_time' in c || 'origin_builds_finish_time' in c), 'an incomplete run claims no finish');
  t.end();
});
