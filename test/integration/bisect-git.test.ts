// Git-tree bisect on real kernel commits: the fixture history (base
// linux-source-6.1, then the variant patches as successive commits, with a
// commit that does not build) is bisected between fix-1 (V1) and a commit
// after fix-4 (V2) on sysctl-lowered, with real builds from the tree itself
// (no --base-package, no --build-cmd: lockstep's own checkout of each commit,
// one shared object dir, ccache) and real QEMU boots. Bisect must name the
// fix-4 commit and skip the broken one, keep git's bisect log in the output
// and never build in the user's tree; a stopped bisect, even one whose git
// session was reset, continues from its state. The refusals run through
// --base-package (the Debian package + git diff builder). Also: an
// infrastructure failure is retried before it counts.
// Tier: integration (its subtests moved unchanged from test/bisect-git.test.ts; the rest is in test/unit/bisect-git.test.ts).

import { execFile, spawn } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { type BisectEnv, judgePosition, matrixEnv } from '../../src/bisect/env.ts';
import { loadState, newState } from '../../src/bisect/state.ts';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { loadSpecFile } from '../../src/kernels/spec.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { kernelHistoryTree } from '../lib/bisect-tree.ts';

const execFileP = promisify(execFile);
const REPO = new URL('../../', import.meta.url).pathname;
const BIN = join(REPO, 'bin', 'lockstep.mjs');
const exists = (p: string) => access(p).then(() => true, () => false);
const scenarios = builtinScenarios().map((l) => l.compiled);

t.test('an infrastructure failure is retried, and the retry decides', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'lockstep-bisect-retry-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const scenario = scenarios.find((s) => s.id === 'shared-counter')!;
  const spec = (await loadSpecFile(join(REPO, 'kernels', 'debian-6.1-history', 'cloud-amd64.json'))).find((k) => k.id === 'debian-6.1.190-1')!;
  const log = (_: string) => {};
  // Attempt 1 gets 1 ms for boot + scenario, attempt 2 the normal budget: a real TIMEOUT,
  // QEMU killed at once (1 s was enough to fail a boot, but a restored guest finishes in under a second).
  const short = matrixEnv({ scenario, cacheDir: defaultCacheDir(), opTimeoutS: 60, timeoutMs: 1, log });
  const normal = matrixEnv({ scenario, cacheDir: defaultCacheDir(), opTimeoutS: 60, log });
  let n = 0;
  const env: BisectEnv = { attempt: (target, dir) => (n++ === 0 ? short : normal).attempt(target, dir) };
  const state = newState({ mode: 'list', scenario: scenario.id, scenario_hash: 'x', positions: [spec.id] }, 'now');
  const r = await judgePosition({ env, state, key: spec.id, label: spec.id, target: { kind: 'spec', spec }, isReference: true, maxAttempts: 2, outDir: out, save: async () => {}, log });
  t.equal(r?.mark, 'old');
  const attempts = state.steps[spec.id]!.attempts;
  t.equal(attempts.length, 2);
  t.match(attempts[0], { attempt: { status: 'infra' }, verdict: /^(TIMEOUT|BOOT_FAIL|ERROR)$/ });
  t.match(attempts[1], { attempt: { status: 'measured' }, verdict: 'MATCH' });
  t.match(state.reference?.fits, ['V0/shared']);

  // With one attempt allowed, the same failure is a skip.
  const s2 = newState({ mode: 'list', scenario: scenario.id, scenario_hash: 'x', positions: [spec.id] }, 'now');
  const r2 = await judgePosition({ env: short, state: s2, key: spec.id, label: spec.id, target: { kind: 'spec', spec }, isReference: true, maxAttempts: 1, outDir: join(out, 'b'), save: async () => {}, log });
  t.match(r2, { mark: 'skip', why: /1 infrastructure failure/ });
});

t.test('git bisect over real kernel commits, built from the tree, names fix-4 and skips the broken commit', async (t) => {
  const cacheDir = defaultCacheDir();
  const { tree, commits } = await kernelHistoryTree(cacheDir, (m) => t.comment(m));
  const sha = (n: string) => commits.get(n)!.sha;
  const gitDir = join(tree, '.git');
  const reset = async () => {
    if (await exists(join(gitDir, 'BISECT_START'))) await execFileP('git', ['-C', tree, 'bisect', 'reset']);
    await execFileP('git', ['-C', tree, 'checkout', '-q', 'main']);
    await rm(join(gitDir, 'lockstep-bisect.json'), { force: true });
  };
  await reset();
  t.teardown(reset);
  const out = await mkdtemp(join(tmpdir(), 'lockstep-bisect-git-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const argv = [BIN, 'bisect', '--tree', tree, '--good', 'fix-1', '--bad', 'fix-4-doc', '--scenario', 'sysctl-lowered', '--out', out];
  const statePath = join(gitDir, 'lockstep-bisect.json');

  const ends = new Set([sha('fix-1'), sha('fix-4-doc')]);
  const midMarks = async () => {
    const s = await loadState(statePath).catch(() => null);
    return s ? Object.entries(s.steps).filter(([k, st]) => !ends.has(k) && st.mark !== undefined).map(([k]) => k) : [];
  };
  /** Run the command and stop it (SIGINT, as Ctrl-C would) once `more` commits between the ends got marks. */
  const runAndStop = async (more: number): Promise<number | null> => {
    const before = (await midMarks()).length;
    const p = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'ignore'] });
    return new Promise((resolveP) => {
      const poll = setInterval(async () => {
        if ((await midMarks()).length >= before + more) { clearInterval(poll); p.kill('SIGINT'); }
      }, 200);
      p.on('close', (c) => { clearInterval(poll); resolveP(c); });
    });
  };

  // Run 1: stopped once git's first pick is judged.
  const stopped = await runAndStop(1);
  t.not(stopped, 0, `the first run was stopped (exit ${stopped})`);
  const mid = await loadState(statePath);
  t.equal(mid?.steps[sha('fix-1')]?.mark, 'old', 'good end measured');
  t.equal(mid?.steps[sha('fix-4-doc')]?.mark, 'new', 'bad end verified to differ');
  t.equal(mid?.steps[sha('broken')]?.mark, 'skip', 'git\'s first pick, the broken commit, was skipped');
  t.match(mid?.steps[sha('broken')]?.why, /build failed/);
  t.equal(mid?.steps[sha('broken')]?.attempts.length, 1, 'a build failure is not retried');
  t.ok(await exists(join(gitDir, 'BISECT_START')), 'git\'s session is kept for the rerun');

  // Run 2: continues the live git session; stopped again after one more commit.
  const stopped2 = await runAndStop(1);
  t.not(stopped2, 0, `the second run was stopped (exit ${stopped2})`);
  const marks2 = await midMarks();
  t.ok(marks2.length >= 2 && marks2.includes(sha('broken')), `judged so far: ${marks2.map((k) => k.slice(0, 12)).join(' ')}`);
  const judgedBefore = Object.fromEntries(Object.entries((await loadState(statePath))!.steps).map(([k, s]) => [k, s.attempts.length]));
  // Throw git's session away: the last run must start it again and replay the saved marks.
  await execFileP('git', ['-C', tree, 'bisect', 'reset']);

  // Run 3: replays and finishes.
  const r = await execFileP(process.execPath, argv, { maxBuffer: 16 << 20 }).catch((e: { stdout: string; stderr: string; code: number }) => e);
  const stdout = (r as { stdout: string }).stdout;
  t.comment(stdout);
  t.match(stdout, new RegExp(`^first commit with the new behaviour: ${sha('fix-4')} perf/core: Make the mlock accounting simple again`, 'm'));
  t.match(stdout, new RegExp(`^skipped ${sha('broken').slice(0, 12)} perf/core: half-done refactor \\(does not build\\): build failed`, 'm'));
  const end = await loadState(statePath);
  for (const [k, n] of Object.entries(judgedBefore)) t.equal(end!.steps[k]!.attempts.length, n, `${k.slice(0, 12)} not measured again`);
  // Evidence: the good end fits V1 (and V3, which sysctl-lowered cannot tell from it), fix-4 fits V2 only.
  t.ok(end!.reference!.fits.includes('V1/shared') && !end!.reference!.fits.includes('V2/shared'), `good end fits ${end!.reference!.fits.join(' ')}`);
  const fix4 = end!.steps[sha('fix-4')]!.attempts.at(-1)!.behaviour!;
  t.same(fix4.fits.filter((l) => l.startsWith('V2')), fix4.fits, `fix-4 fits ${fix4.fits.join(' ')}`);
  t.match(end!.result, { kind: 'found', first: sha('fix-4') });
  t.notOk(await exists(join(gitDir, 'BISECT_START')), 'the git session is reset at the end');
  const head = (await execFileP('git', ['-C', tree, 'rev-parse', '--abbrev-ref', 'HEAD'])).stdout.trim();
  t.equal(head, 'main', 'the tree is back on its branch');
  t.equal(JSON.parse(await readFile(statePath, 'utf8')).schema, 'lockstep/bisect-state@1');
  // git's log of the session is kept in the output (the reset dropped it from .git)
  const blog = await readFile(join(out, 'bisect.log'), 'utf8');
  t.match(blog, new RegExp(`^# first bad commit: \\[${sha('fix-4')}\\]`, 'm'), 'OUT/bisect.log holds git\'s verdict');
  t.match(blog, new RegExp(`^git bisect skip ${sha('broken')}`, 'm'), 'and the skip of the broken commit');
  t.match(stdout, /git bisect log: .*bisect\.log/);
  // Built from lockstep's own checkout: nothing was built in the user's tree.
  t.notOk(await exists(join(tree, '_build')), 'no object dir in the user\'s tree');
  t.notOk(await exists(join(tree, '.config')), 'no .config in the user\'s tree');
  t.equal((await execFileP('git', ['-C', tree, 'status', '--porcelain'])).stdout.trim(), '', 'the user\'s tree is clean');
  // The fix-4 step's artifact says what it was built from, with which compiler.
  const metas = await Promise.all((await readdir(join(cacheDir, 'kernels', 'source'))).map((d) => readFile(join(cacheDir, 'kernels', 'source', d, 'meta.json'), 'utf8').then((x) => JSON.parse(x) as Record<string, unknown>, () => null)));
  // Artifacts are keyed by the tree's content: a machine that also holds an older fixture (other commit ids,
  // same fix-4 tree) reuses that build, whose meta names the other commit. Look it up by tree.
  const tree4 = (await execFileP('git', ['-C', tree, 'rev-parse', `${sha('fix-4')}^{tree}`])).stdout.trim();
  const m4 = metas.find((m) => typeof m?.source === 'string' && (m.source.includes(`@${sha('fix-4')}`) || m.source.includes(`(tree ${tree4})`)));
  t.match(m4, { cc: 'gcc', backports: [], absent_options: [], patches: [] }, 'the fix-4 commit was built from the tree, 6.1: default gcc, no backport');
});

t.test('--build-cmd: a build program\'s answer, its failure, and a malformed answer', async (t) => {
  const { commandBuild } = await import('../../src/bisect/build.ts');
  const { writeFile, chmod } = await import('node:fs/promises');
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-bisect-cmd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = async (name: string, body: string) => {
    const p = join(dir, name);
    await writeFile(p, `#!/bin/sh\n${body}\n`);
    await chmod(p, 0o755);
    return p;
  };
  const log = () => {};
  const ok = await commandBuild(await script('ok', 'echo building "$1"; echo /boot/vmlinuz-x 6.1.192'))(dir, { log });
  t.same(ok, { vmlinuz: '/boot/vmlinuz-x', version: '6.1.192' });
  const fail = await commandBuild(await script('fail', 'echo "core.c:1: error: nope" >&2; exit 2'))(dir, { log });
  t.match(fail, { buildFailed: /exited 2: core\.c:1: error: nope/ });
  await t.rejects(commandBuild(await script('odd', 'echo done'))(dir, { log }), { name: 'ConfigError', message: /printed "done" as its last line/ });
  await t.rejects(commandBuild(join(dir, 'missing'))(dir, { log }), { name: 'ConfigError', message: /cannot run/ });
});

t.test('refusals: a bad end that behaves like the good end, a reversed range, a dirty tree', async (t) => {
  const cacheDir = defaultCacheDir();
  const { tree } = await kernelHistoryTree(cacheDir, (m) => t.comment(m));
  const gitDir = join(tree, '.git');
  const reset = async () => {
    if (await exists(join(gitDir, 'BISECT_START'))) await execFileP('git', ['-C', tree, 'bisect', 'reset']);
    await execFileP('git', ['-C', tree, 'checkout', '-q', '-f', 'main']);
    await rm(join(gitDir, 'lockstep-bisect.json'), { force: true });
  };
  await reset();
  t.teardown(reset);
  const out = await mkdtemp(join(tmpdir(), 'lockstep-bisect-refuse-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const run = (good: string, bad: string) => execFileP(process.execPath, [BIN, 'bisect', '--tree', tree, '--good', good, '--bad', bad, '--scenario', 'sysctl-lowered',
    '--base-package', 'linux-source-6.1', '--base-ref', 'base', '--out', out, '--quiet'], { maxBuffer: 16 << 20 }).then(() => ({ code: 0, stdout: '', stderr: '' }), (e: { code: number; stdout: string; stderr: string }) => e);

  // fix-5 (V3) and fix-1 (V1) split ring buffers alike: sysctl-lowered sees no change between them.
  const same = await run('fix-1', 'fix-5');
  t.equal(same.code, 1);
  t.match(same.stdout, /the bad end [0-9a-f]{12} behaves like the good end .*scenario sysctl-lowered sees no change between them/);
  t.notOk(await exists(join(gitDir, 'BISECT_START')), 'no git session was started');
  await rm(join(gitDir, 'lockstep-bisect.json'), { force: true });

  const reversed = await run('fix-4', 'fix-1');
  t.equal(reversed.code, 2);
  t.match(reversed.stderr, /--good: fix-4 is not an ancestor of fix-1/);

  const { appendFile } = await import('node:fs/promises');
  await appendFile(join(tree, 'Makefile'), '\n# local change\n');
  const dirty = await run('fix-1', 'fix-4');
  t.equal(dirty.code, 2);
  t.match(dirty.stderr, /has uncommitted changes/);
});
