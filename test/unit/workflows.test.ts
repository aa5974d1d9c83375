// .github/workflows validated with GitHub's own workflow parser
// (@actions/workflow-parser: the schema workflow-v1.0 GitHub's language
// services use, plus its expression and cron checks), then checked for what
// lockstep needs of them: the test command, the shard matrix, artifacts, the
// merge + diff gate, and that every lockstep command line they run exists.

import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parse as parseYaml } from 'yaml';
import { COMMANDS } from '../../src/cli/commands.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WF = join(ROOT, '.github', 'workflows');

async function validate(name: string, content: string): Promise<string[]> {
  const r = parseWorkflow({ name, content }, new NoOperationTraceWriter());
  const errors = r.context.errors.getErrors().map((e) => e.message);
  if (r.value && !errors.length) {
    // conversion adds the cross-job checks (needs, matrix, ...)
    await convertWorkflowTemplate(r.context, r.value);
    errors.push(...r.context.errors.getErrors().map((e) => e.message));
  }
  return errors;
}

t.test('the validator is the real schema and it catches mistakes', async (t) => {
  t.ok(existsSync(join(ROOT, 'node_modules/@actions/workflow-parser/dist/workflow-v1.0.min.json')), 'the package ships the workflow schema');
  const bad: Record<string, [string, RegExp]> = {
    'no runs-on': ['on: push\njobs:\n  a:\n    steps:\n      - run: x\n', /Required property is missing: runs-on/],
    'unknown key': ['on: push\njobs:\n  a:\n    runs-on: x\n    stepz:\n      - run: x\n', /Unexpected value 'stepz'/],
    'run and uses': ['on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n        uses: actions/checkout@v4\n', /Unexpected value 'uses'/],
    'bad expression': ['on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ matrix.x ]] }}\n', /Unexpected symbol/],
    'bad cron': ["on:\n  schedule:\n    - cron: 'nightly'\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n", /Invalid cron expression/],
    'no on': ['jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n', /Required property is missing: on/],
    'needs a missing job': ['on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n  b:\n    runs-on: x\n    needs: zzz\n    steps:\n      - run: x\n', /zzz/],
  };
  for (const [what, [yml, re]] of Object.entries(bad)) {
    const errors = await validate(`${what}.yml`, yml);
    t.match(errors.join('\n'), re, what);
  }
});

for (const f of ['ci.yml', 'nightly.yml']) {
  t.test(`${f} is a valid GitHub Actions workflow`, async (t) => {
    t.same(await validate(f, readFileSync(join(WF, f), 'utf8')), []);
  });
}

type Step = { uses?: string; run?: string; with?: Record<string, unknown>; if?: string; name?: string; id?: string; env?: Record<string, string> };
type Job = { 'runs-on': string; needs?: string | string[]; if?: string; steps: Step[]; strategy?: { matrix: Record<string, unknown> }; container?: { image: string; options?: string } };
const load = (f: string) => parseYaml(readFileSync(join(WF, f), 'utf8')) as { on: Record<string, unknown>; jobs: Record<string, Job> };

/** Every `node bin/lockstep.mjs CMD --flag ...` in the run scripts names a real command and real flags. */
function checkLockstepCalls(t: { ok: (v: unknown, msg: string) => unknown }, steps: Step[]): number {
  let n = 0;
  for (const s of steps) {
    for (const m of (s.run ?? '').matchAll(/node bin\/lockstep\.mjs ([a-z-]+)([^\n]*)/g)) {
      n++;
      const c = COMMANDS.find((x) => x.name === m[1]);
      t.ok(c, `lockstep ${m[1]} exists`);
      for (const f of m[2]!.matchAll(/--([a-z-]+)/g)) t.ok(c && f[1]! in c.options, `lockstep ${m[1]} --${f[1]} exists`);
    }
  }
  return n;
}

t.test('ci.yml runs the test command', async (t) => {
  const w = load('ci.yml');
  t.ok('push' in w.on && 'pull_request' in w.on);
  const steps = w.jobs.test!.steps;
  const uses = steps.map((s) => s.uses).filter(Boolean);
  t.ok(uses.indexOf('actions/checkout@v4') < uses.indexOf('actions/setup-node@v4'), 'checkout, then setup-node');
  t.equal(String(steps.find((s) => s.uses === 'actions/setup-node@v4')!.with!['node-version']), '20');
  t.ok(steps.some((s) => s.run?.trim() === '.ci/run'), 'runs .ci/run');
  const ciRun = readFileSync(join(ROOT, '.ci/run'), 'utf8');
  t.match(ciRun, /^if ! npm run setup\b/m, '.ci/run runs the setup npm test runs');
  t.match(ciRun, /^for tier in unit smoke integration; do$/m, '.ci/run runs every tier, integration included');
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  t.equal(scripts.setup, 'bash .ci/setup.sh');
  for (const tier of ['unit', 'smoke', 'integration']) t.match(scripts[`test:${tier}`], new RegExp(`^tap .*'test/${tier}/\\*\\*/\\*\\.test\\.ts'$`), `test:${tier} runs test/${tier}/`);
  t.match(scripts.test, /^bash \.ci\/setup\.sh && npm run test:unit && npm run test:smoke$/, 'npm test = unit + smoke');
  t.equal(w.jobs.test!.container?.image, 'debian:12', 'Debian, where the Debian kernels come from apt');
});

t.test('nightly.yml: shard matrix, artifacts, merge, diff against the last night', async (t) => {
  const w = load('nightly.yml');
  t.ok('schedule' in w.on && 'workflow_dispatch' in w.on, 'scheduled and manual');
  const shard = w.jobs.shard!;
  const shards = shard.strategy!.matrix.shard as number[];
  const run = shard.steps.find((s) => /--shard/.test(s.run ?? ''))!;
  const n = Number(/--shard \$\{\{ matrix\.shard \}\}\/(\d+)/.exec(run.run!)![1]);
  t.same(shards, Array.from({ length: n }, (_, i) => i + 1), `matrix is shards 1..${n}`);
  t.match(run.run!, /--out shard-\$\{\{ matrix\.shard \}\}/);
  const up = shard.steps.find((s) => s.uses === 'actions/upload-artifact@v4')!;
  t.equal(up.with!.name, 'shard-${{ matrix.shard }}', 'one artifact per shard');
  t.equal(up.if, 'always()', 'uploaded even when cells fail');
  t.match(shard.container?.options ?? '', /--privileged/, 'KVM and perf events need a privileged container');
  t.ok(checkLockstepCalls(t, shard.steps) >= 1);

  const merge = w.jobs.merge!;
  t.equal(merge.needs, 'shard');
  t.equal(merge.if, 'always()', 'merges what the shards produced even if one failed');
  const dl = merge.steps.find((s) => s.uses === 'actions/download-artifact@v4')!;
  t.equal(dl.with!.pattern, 'shard-*');
  const mergeRun = merge.steps.find((s) => /lockstep\.mjs merge/.test(s.run ?? ''))!.run!;
  for (let i = 1; i <= n; i++) t.match(mergeRun, new RegExp(`shards/shard-${i}\\b`), `merges shard ${i}`);
  // The accepted baseline is a committed file, not an evictable cache; only an explicit run moves it.
  t.notOk(JSON.stringify(w).includes('actions/cache/'), 'no baseline in actions/cache (evictable)');
  const check = merge.steps.findIndex((s) => s.id === 'baseline');
  const diff = merge.steps.findIndex((s) => /lockstep\.mjs diff results\/baseline\.json merged/.test(s.run ?? ''));
  const accept = merge.steps.findIndex((s) => /cp merged\/results\.json results\/baseline\.json/.test(s.run ?? ''));
  t.ok(check >= 0 && check < diff && diff < accept, 'check the baseline exists, diff (fails the job on regression), then accept only when asked');
  t.equal(merge.steps[diff]!.if, "steps.baseline.outputs.found == 'true'");
  t.match(merge.steps[accept]!.if!, /\binputs\.accept\b/, 'the baseline moves only on workflow_dispatch with accept');
  t.match(merge.steps[accept]!.run!, /git commit [^\n]*\n\s*git push origin/, 'accepting commits and pushes the file');
  t.equal((merge as Job & { permissions?: Record<string, string> }).permissions?.contents, 'write', 'the merge job may push the baseline');
  t.notOk((w as { permissions?: Record<string, string> }).permissions?.contents === 'write', 'only the merge job can write');
  t.ok('accept' in ((w.on.workflow_dispatch as { inputs: Record<string, unknown> }).inputs), 'workflow_dispatch input accept');
  // The merge job installs only what merging needs: node and npm ci.
  t.equal(merge.container, undefined, 'no container');
  const mergeText = JSON.stringify(merge.steps);
  for (const no of ['apt-get', '.ci/setup.sh', 'qemu', 'actions/cache']) t.notOk(mergeText.includes(no), `merge job has no ${no}`);
  t.ok(merge.steps.some((s) => s.run?.trim() === 'npm ci --no-audit --no-fund'), 'npm ci');
  t.ok(checkLockstepCalls(t, merge.steps) >= 2);
  // only official actions, pinned to a major version
  for (const j of Object.values(w.jobs)) for (const s of j.steps) if (s.uses) t.match(s.uses, /^actions\/[a-z-]+(\/[a-z]+)?@v\d+$/, s.uses);
});

t.test('nightly.yml: the integration tier in file-list shards beside the matrix shards', async (t) => {
  const w = load('nightly.yml');
  const job = w.jobs.integration!;
  t.ok(job, 'an integration job');
  t.equal(job.needs, undefined, 'runs beside the matrix shards, not after them');
  const shards = job.strategy!.matrix.shard as number[];
  const run = job.steps.find((s) => /tier-files\.ts integration/.test(s.run ?? ''))!.run!;
  const n = Number(/tier-files\.ts integration \$\{\{ matrix\.shard \}\}\/(\d+)/.exec(run)![1]);
  t.same(shards, Array.from({ length: n }, (_, i) => i + 1), `matrix is shards 1..${n}`);
  t.match(run, /npx tap --jobs=1 "\$\{files\[@\]\}"/, 'one file at a time, the shard\'s files only');
  t.ok(job.steps.some((s) => s.run?.trim() === 'bash .ci/setup.sh'), 'setup first');
  t.match(job.container?.options ?? '', /--privileged/, 'KVM and perf events need a privileged container');
  const { shardFiles, tierFiles, fileWeight } = await import('../lib/tier-files.ts');
  const files = tierFiles('integration');
  const lists = shards.map((i) => shardFiles(files, i, n, fileWeight));
  t.ok(lists.every((l) => l.length > 0), 'no empty shard');
  t.same(lists.flat().sort(), files, 'every integration file in one shard');
});

/** The baseline check step's script, run by bash as the runner would (GITHUB_OUTPUT a file, ACCEPT from the input). */
t.test('nightly.yml: no accepted baseline fails loudly unless this run accepts one', async (t) => {
  const { execFileSync, spawnSync } = await import('node:child_process');
  const { mkdtempSync, mkdirSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const step = load('nightly.yml').jobs.merge!.steps.find((s) => s.id === 'baseline')!;
  t.equal(step.env?.ACCEPT, '${{ inputs.accept }}');
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-wf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const run = (accept: string, withFile: boolean) => {
    const ws = join(dir, `${accept || 'schedule'}-${withFile}`);
    mkdirSync(join(ws, 'results'), { recursive: true });
    execFileSync('git', ['init', '-q', ws]);
    if (withFile) writeFileSync(join(ws, 'results', 'baseline.json'), '{}');
    const out = join(ws, 'github_output');
    writeFileSync(out, '');
    const r = spawnSync('bash', ['-e', '-c', step.run!], { cwd: ws, env: { ...process.env, ACCEPT: accept, GITHUB_OUTPUT: out }, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, output: readFileSync(out, 'utf8') };
  };
  const none = run('', false);
  t.equal(none.code, 1, 'a scheduled night without a baseline fails');
  t.match(none.stdout, /^::error file=results\/baseline\.json::no accepted baseline: .* Fix: run this workflow by hand .*accept = true/m, 'with an annotation that says how to fix it');
  const first = run('true', false);
  t.equal(first.code, 0, 'a run that accepts stores the first baseline');
  t.match(first.stdout, /^::warning file=results\/baseline\.json::no accepted baseline yet/m);
  t.equal(first.output, 'found=false\n');
  const found = run('', true);
  t.equal(found.code, 0);
  t.equal(found.output, 'found=true\n', 'the diff step runs');
});

t.test('.ci/run type-checks too: a type error fails it, and the tap summary line is still printed', async (t) => {
  // A tiny project with .ci/run itself, a `test` script that prints tap's
  // totals line, and the repo's TypeScript: one file well typed, then not.
  const { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, symlinkSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { spawnSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-ci-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, '.ci'));
  copyFileSync(join(ROOT, '.ci/run'), join(dir, '.ci/run'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  // Three tiers with their own totals: .ci/run prints their sum.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ci-run-probe', private: true, scripts: {
    setup: 'true', 'test:unit': 'echo "# { total: 1, pass: 1 }"', 'test:smoke': 'echo "# { total: 1, pass: 1 }"', 'test:integration': 'echo "# { total: 1, pass: 1 }"',
  } }));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, types: [] }, include: ['a.ts'] }));
  const ci = () => spawnSync('bash', [join(dir, '.ci/run')], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  writeFileSync(join(dir, 'a.ts'), 'export const n: number = 1;\n');
  const good = ci();
  t.equal(good.status, 0, good.stdout + good.stderr);
  t.match(good.stdout, /^3 passed, 0 failed$/m);
  writeFileSync(join(dir, 'a.ts'), 'export const n: number = "one";\n');
  const bad = ci();
  t.equal(bad.status, 1, 'a type error fails CI although every test passed');
  t.match(bad.stdout, /^3 passed, 0 failed$/m, 'the test summary is still there');
  // A failing tier fails the whole and is counted; the later tiers still run.
  writeFileSync(join(dir, 'a.ts'), 'export const n: number = 1;\n');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ci-run-probe', private: true, scripts: {
    setup: 'true', 'test:unit': 'echo "# { total: 4, pass: 3, fail: 1 }"; exit 1', 'test:smoke': 'echo "# { total: 2, pass: 2 }"', 'test:integration': 'echo "# { total: 5, pass: 4, skip: 1 }"',
  } }));
  const failing = ci();
  t.equal(failing.status, 1, 'a failing tier fails CI');
  t.match(failing.stdout, /^9 passed, 1 failed, 1 skipped$/m, 'one line for the three tiers');
  t.match(failing.stdout, /^test:integration: exit 0/m, 'integration ran after unit failed');
  t.match(bad.stdout, /a\.ts\(1,14\): error TS2322/);
  t.match(bad.stdout, /^type check: FAILED/m);
});

t.test('nightly.yml: the compat job measures the new Debian kernels and commits the table it grew', (t) => {
  const job = load('nightly.yml').jobs.compat!;
  t.ok(job, 'a compat job');
  const runs = job.steps.map((s) => s.run ?? '');
  const at = (re: RegExp): number => runs.findIndex((r) => re.test(r));
  const news = at(/kernels news --specs new-kernels\.json/);
  const run = at(/run --kernel-spec new-kernels\.json --no-builtin-kernels --out compat-run/);
  const add = at(/kernels compat --add compat-run/);
  const commit = at(/git add results\/compat\.json results\/compat\.md/);
  t.ok(news >= 0 && news < run && run < add && add < commit, 'news, then run, then add, then commit');
  t.match(runs[run]!, /\[ "\$rc" -le 1 \] \|\| \[ "\$rc" -eq 3 \]/, 'a MISMATCH (1) or infrastructure (3) is still added: the row says so');
  const guarded = job.steps.filter((s) => /compat-run|compat\.json/.test(s.run ?? '') || s.name === 'Upload the run');
  t.ok(guarded.every((s) => /steps\.news\.outputs\.count != '0'/.test(s.if ?? '')), 'nothing runs when no kernel is new');
  t.match(job.container?.options ?? '', /--privileged/);
  t.end();
});
