// Prebuilt-list bisect on real Debian 6.1 cloud kernels (fetched with apt,
// cached) booted in QEMU: the shared-counter scenario tells the shared
// locked_vm counter from perf's own perf_mlock, and the search must name the
// first release that charges perf_mlock. Also: a run stopped half-way
// resumes from its state file without booting the measured kernels again.
// Tier: integration (its subtests moved unchanged from test/bisect-list.test.ts; the rest is in test/unit/bisect-list.test.ts).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { matrixEnv } from '../../src/bisect/env.ts';
import { bisectList } from '../../src/bisect/list.ts';
import { loadState, parseState } from '../../src/bisect/state.ts';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { loadSpecFile } from '../../src/kernels/spec.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';

const execFileP = promisify(execFile);
const REPO = new URL('../../', import.meta.url).pathname;
const HISTORY = join(REPO, 'kernels', 'debian-6.1-history', 'cloud-amd64.json');
const IDS = ['debian-6.1.170-3', 'debian-6.1.176-1', 'debian-6.1.187-1', 'debian-6.1.190-1', 'debian-6.1.192-1', 'debian-6.1.192-2'];
const scenario = builtinScenarios().map((l) => l.compiled).find((s) => s.id === 'shared-counter')!;

t.test('stopped after the reference, resumed: the reference is not booted again', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'lockstep-bisect-list-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const all = await loadSpecFile(HISTORY);
  const kernels = ['debian-6.1.190-1', 'debian-6.1.192-1', 'debian-6.1.192-2'].map((id) => all.find((k) => k.id === id)!);
  const statePath = join(out, 'bisect-state.json');
  const lines: string[] = [];

  const ac = new AbortController();
  const log1 = (l: string) => {
    lines.push(l);
    // Stop as soon as the second kernel starts: its boot is cut short.
    if (/^testing debian-6\.1\.192-1/.test(l)) setTimeout(() => ac.abort(), 1500);
  };
  // booted, not restored: a restored guest would finish the second kernel within the 1.5 s
  const env1 = matrixEnv({ scenario, cacheDir: defaultCacheDir(), opTimeoutS: 60, signal: ac.signal, log: log1, snapshots: false });
  const first = await bisectList({ kernels, scenario, env: env1, resume: null, statePath, outDir: out, maxAttempts: 2, log: log1, signal: ac.signal });
  t.equal(first.decision.kind, 'test', 'interrupted before an answer');
  t.same(first.judgedNow, ['debian-6.1.190-1']);
  const saved = parseState(await readFile(statePath, 'utf8'), statePath);
  t.equal(saved.steps['debian-6.1.190-1']?.mark, 'old');
  t.equal(saved.steps['debian-6.1.192-1']?.mark, undefined, 'the interrupted kernel has no mark');
  t.equal(saved.steps['debian-6.1.192-1']?.attempts.length ?? 0, 0, 'an interrupted boot is not counted as an attempt');
  t.match(saved.reference?.fits, ['V0/shared', 'V1/shared', 'V1a/shared', 'V1b/shared', 'V2/shared', 'V3/shared', 'V4/shared']);

  const log2: string[] = [];
  const env2 = matrixEnv({ scenario, cacheDir: defaultCacheDir(), opTimeoutS: 60, log: (l) => log2.push(l) });
  const second = await bisectList({ kernels, scenario, env: env2, resume: await loadState(statePath), statePath, outDir: out, maxAttempts: 2, log: (l) => log2.push(l) });
  t.match(second.decision, { kind: 'found', first: 1, lastOld: 0 });
  t.same(second.judgedNow, ['debian-6.1.192-1'], 'only the missing kernel is booted');
  t.equal(second.state.steps['debian-6.1.190-1']?.attempts.length, 1, 'the reference keeps its one saved attempt');
  t.match(second.state.steps['debian-6.1.192-1']?.attempts[0]?.behaviour?.fits, ['V0/perf', 'V1/perf', 'V1a/perf', 'V1b/perf', 'V2/perf', 'V3/perf', 'V4/perf']);
});

t.test('lockstep bisect over the six Debian 6.1 releases names 6.1.192-1, booting at most four', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'lockstep-bisect-cli-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const r = await execFileP(process.execPath, [join(REPO, 'bin', 'lockstep.mjs'), 'bisect', '--no-builtin-kernels', '--kernel-spec', HISTORY, '--kernels', IDS.join(','), '--scenario', 'shared-counter', '--out', out], { maxBuffer: 16 << 20 });
  t.match(r.stdout, /^first kernel that behaves differently from debian-6\.1\.170-3: debian-6\.1\.192-1 \(the one before it, debian-6\.1\.190-1, behaves like debian-6\.1\.170-3\)$/m);
  const s = await loadState(join(out, 'bisect-state.json'));
  const judged = Object.entries(s!.steps).filter(([, st]) => st.mark !== undefined);
  const boots = judged.reduce((n, [, st]) => n + st.attempts.length, 0);
  t.ok(judged.length <= 4, `${judged.length} kernels judged: ${judged.map(([k]) => k).join(', ')}`);
  t.ok(boots <= 4, `${boots} boots`);
  t.same(s!.result, { kind: 'found', first: 4, lastOld: 3, warnings: [] });
  // Evidence: the releases on each side fit only shared, respectively only perf, logics.
  t.match(r.stdout, /debian-6\.1\.190-1: 6\.1\.0-54-cloud-amd64: fits V0\/shared .*V4\/shared;/);
  t.match(r.stdout, /debian-6\.1\.192-1: 6\.1\.0-55-cloud-amd64: fits V0\/perf .*V4\/perf;/);
  t.match(r.stdout, /wall time \d+\.\ds/);
});
