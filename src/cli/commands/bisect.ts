import { resolve, join } from 'node:path';
import type { BisectState, StepRecord } from '../../bisect/state.ts';
import type { Decision } from '../../bisect/decide.ts';
import { ConfigError } from '../../util/errors.ts';
import { checkInputPath } from '../../util/input.ts';
import { type Command, int, kernelOptions, list, pick, scenarioOptions } from '../command.ts';
import { repoPath } from '../../util/repo-root.ts';

const runOptions = {
  scenario: { type: 'string' as const, arg: 'ID', help: 'the discriminating scenario (e.g. shared-counter, sysctl-lowered); `lockstep scenarios list`' },
  ...kernelOptions,
  ...scenarioOptions,
  attempts: { type: 'string' as const, arg: 'N', help: 'attempts per position before an infrastructure failure (TIMEOUT, BOOT_FAIL, ERROR) counts as skip', default: '2' },
  accel: { type: 'string' as const, arg: 'kvm|tcg', help: 'force an accelerator (default: KVM if a probe VM starts, else TCG)' },
  timeout: { type: 'string' as const, arg: 'SECONDS', help: 'hard limit per boot (default: scaled by CPUs and ops)' },
  'op-timeout': { type: 'string' as const, arg: 'SECONDS', help: 'limit per op inside the guest', default: '60' },
  cache: { type: 'string' as const, arg: 'DIR', help: 'kernel and image cache (default: $LOCKSTEP_CACHE or ~/.cache/lockstep)' },
  state: { type: 'string' as const, arg: 'FILE', help: 'saved state (default: OUT/bisect-state.json; with --tree: GITDIR/lockstep-bisect.json)' },
  quiet: { type: 'boolean' as const, help: 'no progress lines' },
};

interface Common {
  scenarioId: string;
  attempts: number;
  accel?: 'kvm' | 'tcg';
  timeoutMs?: number;
  opTimeoutS: number;
  cacheDir: string;
  log: (l: string) => void;
}

/** The flags bisect and bisect-step share, checked (ConfigError naming the flag). */
async function commonOf(v: Record<string, unknown>): Promise<Common> {
  const { defaultCacheDir } = await import('../../kernels/artifact.ts');
  if (typeof v.scenario !== 'string') throw new ConfigError('command line', '--scenario', 'missing', 'name the scenario that tells the two behaviours apart, e.g. --scenario shared-counter');
  const accel = v.accel as string | undefined;
  if (accel !== undefined && accel !== 'kvm' && accel !== 'tcg') throw new ConfigError('command line', '--accel', `${JSON.stringify(accel)} is not kvm or tcg`, 'use --accel kvm or --accel tcg, or leave it out');
  const quiet = Boolean(v.quiet);
  return {
    scenarioId: v.scenario,
    attempts: int(v.attempts, 'attempts', 1, 10),
    accel: accel as 'kvm' | 'tcg' | undefined,
    timeoutMs: v.timeout !== undefined ? int(v.timeout, 'timeout', 5, 86_400) * 1000 : undefined,
    opTimeoutS: int(v['op-timeout'], 'op-timeout', 1, 3600),
    cacheDir: v.cache ? resolve(String(v.cache)) : defaultCacheDir(),
    log: (l) => { if (!quiet) console.error(`lockstep bisect: ${l}`); },
  };
}

function withSignals<T>(f: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (ac.signal.aborted) return;
    console.error(`lockstep bisect: ${sig}: stopping; the saved state lets a rerun continue`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return f(ac.signal).finally(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
}

/** One line of evidence for a judged position. */
function evidence(step: StepRecord | undefined): string {
  if (!step) return 'not measured';
  const a = [...step.attempts].reverse().find((x) => x.behaviour) ?? step.attempts[step.attempts.length - 1];
  if (!a) return step.why ?? 'no attempt';
  const b = a.behaviour;
  const tries = step.attempts.length > 1 ? `, ${step.attempts.length} attempts` : '';
  if (!b) return `${a.verdict}: ${step.why ?? ''}${tries}`;
  return `${a.kernel_release ?? '?'}: fits ${b.fits.join(' ') || 'no logic'}; probe headrooms ${b.headrooms.join(',') || '-'}; pinned ${b.pinned.join(',') || '-'}; first EPERM ${b.first_eperm ?? 'none'} [${a.verdict}, ${a.out_dir}${tries}]`;
}

export function describeList(d: Decision, s: BisectState): string[] {
  const ids = s.positions;
  const lines: string[] = [];
  const ev = (i: number) => `  ${ids[i]}: ${evidence(s.steps[ids[i]!])}`;
  switch (d.kind) {
    case 'found':
      lines.push(`first kernel that behaves differently from ${ids[0]}: ${ids[d.first]} (the one before it, ${ids[d.lastOld]}, behaves like ${ids[0]})`);
      if (d.lastOld !== 0) lines.push(ev(0));
      lines.push(ev(d.lastOld), ev(d.first));
      break;
    case 'none':
      lines.push(`no kernel behaves differently from ${ids[0]} (up to ${ids[d.lastOld]}, measured)`, ev(0), ev(d.lastOld));
      break;
    case 'ambiguous':
      lines.push(`skipped kernels hide the answer: the first different one is among ${d.candidates.map((i) => ids[i] ?? '(none)').join(', ')}`);
      for (const i of d.candidates) if (i < ids.length) lines.push(ev(i));
      break;
    case 'no-reference':
      lines.push(`the reference ${ids[0]} could not be measured, so there is nothing to compare with`, ev(0));
      break;
    case 'test':
      lines.push(`interrupted: next would be ${ids[d.index]}`);
      break;
  }
  for (const w of d.warnings) lines.push(`warning: ${w}`);
  return lines;
}

export const command: Command = {
  name: 'bisect',
  summary: 'find where a kernel behaviour changed: in a git tree, or over a list of prebuilt kernels',
  description: `Two modes, one question: which is the first kernel that behaves differently
from the first/good one on a discriminating scenario? Behaviour = the set of
accounting logics (V0..V4 x shared/perf counter) the measured cell fits.

--kernels A,B,C,...  ordered prebuilt kernels (specs: built-in + --kernel-spec).
  Measures A (the reference), then binary-searches for the first kernel that
  differs from it, booting as few as it can (6 kernels: at most 4 boots).
  State: OUT/bisect-state.json; rerun with the same --out to continue.

--tree PATH --good REF --bad REF  a kernel git tree. Measures the good end
  (its behaviour is "good") and the bad end (it must differ), then runs
  \`git bisect run\` with \`lockstep bisect-step\`: build (exit 125 = skip on
  a build failure), boot, run the scenario, classify, exit 0 good / 1 bad.
  Infrastructure failures (TIMEOUT, BOOT_FAIL, ERROR) are retried, then
  skipped. State: GITDIR/lockstep-bisect.json; rerun the same command to
  continue a stopped bisect (git's own session is replayed if it was reset).
  Building: by default each step is built from the tree itself: lockstep's
  own checkout of the commit (the user's working tree is never built in),
  one shared object dir, ccache, the compiler and build-fix backports of the
  commit's version (README "Old trees"). Or --base-package PKG --base-ref REF
  (a Debian source package plus git diff) or --build-cmd PROGRAM.
  git's bisect log is kept as OUT/bisect.log.

Exit 0 when the answer is one position (or nothing changed); 1 when skips
leave it ambiguous or the reference could not be measured; 2 bad input.`,
  options: {
    kernels: { type: 'string', arg: 'ID,..', help: 'ordered prebuilt kernels to bisect (list mode)' },
    tree: { type: 'string', arg: 'PATH', help: 'kernel git tree (git mode)' },
    good: { type: 'string', arg: 'REF', help: 'git mode: a ref with the old behaviour' },
    bad: { type: 'string', arg: 'REF', help: 'git mode: a ref with the new behaviour' },
    'base-package': { type: 'string', arg: 'PKG', help: 'git mode: the tree at --base-ref is this Debian kernel source package unpacked (e.g. linux-source-6.1); each step builds it plus git diff BASE..HEAD, sharing one object tree' },
    'base-ref': { type: 'string', arg: 'REF', help: 'git mode: the commit holding the unpacked --base-package' },
    'build-cmd': { type: 'string', arg: 'PROGRAM', help: 'git mode, instead of --base-package: executable run in the tree (argv: TREE), prints "ABS_BZIMAGE VERSION" as its last line; nonzero exit = build failure' },
    out: { type: 'string', arg: 'DIR', help: 'output directory (per-step results and logs)', default: 'results/bisect/<UTC timestamp>' },
    ...runOptions,
  },
  examples: [
    'lockstep bisect --kernel-spec kernels/debian-6.1-history/cloud-amd64.json --scenario shared-counter \\\n    --kernels debian-6.1.170-3,debian-6.1.176-1,debian-6.1.187-1,debian-6.1.190-1,debian-6.1.192-1,debian-6.1.192-2',
    'lockstep bisect --tree ~/src/linux --good v5.4 --bad v5.5 --scenario sysctl-lowered',
    'lockstep bisect --tree /srv/linux --good fix-1 --bad fix-4 --scenario sysctl-lowered --base-package linux-source-6.1 --base-ref base',
  ],
  async run(v) {
    const { loadKernels, loadScenarios } = await import('../common.ts');
    const { loadState } = await import('../../bisect/state.ts');
    const { matrixEnv } = await import('../../bisect/env.ts');
    const { bisectList } = await import('../../bisect/list.ts');
    const { bisectTree, defaultStatePath, resolveCommit } = await import('../../bisect/git.ts');
    const { resolveBuild } = await import('../../bisect/build.ts');
    const c = await commonOf(v);
    const scenario = pick(await loadScenarios(v), [c.scenarioId], 'scenario', 'scenario')[0]!;
    const outDir = resolve(v.out === 'results/bisect/<UTC timestamp>' ? join('results', 'bisect', new Date().toISOString().replace(/[:.]/g, '-')) : String(v.out));
    const t0 = Date.now();
    if (v.kernels !== undefined && v.tree !== undefined) throw new ConfigError('command line', '--kernels', 'both --kernels and --tree given', 'bisect either a list of prebuilt kernels (--kernels) or a git tree (--tree)');
    if (v.kernels !== undefined) {
      const kernels = pick(await loadKernels(v), list(v.kernels), 'kernel', 'kernels');
      if (kernels.length < 2) throw new ConfigError('command line', '--kernels', `${kernels.length} kernel given`, 'give at least two kernels, oldest first');
      if (new Set(kernels.map((k) => k.id)).size !== kernels.length) throw new ConfigError('command line', '--kernels', 'a kernel is listed twice', 'list each kernel once, oldest first');
      const statePath = stateFile(v.state ? String(v.state) : join(outDir, 'bisect-state.json'));
      const resume = await loadState(statePath);
      if (resume) c.log(`continuing the saved bisect in ${statePath}`);
      c.log(`${kernels.length} kernels, scenario ${scenario.id}, output ${outDir}`);
      return withSignals(async (signal) => {
        const env = matrixEnv({ scenario, cacheDir: c.cacheDir, accel: c.accel, timeoutMs: c.timeoutMs, opTimeoutS: c.opTimeoutS, signal, log: c.log });
        const r = await bisectList({ kernels, scenario, env, resume, statePath, outDir, maxAttempts: c.attempts, log: c.log, signal });
        const boots = r.judged.reduce((n, id) => n + (r.state.steps[id]?.attempts.length ?? 0), 0);
        for (const l of describeList(r.decision, r.state)) console.log(l);
        console.log(`judged ${r.judged.length} of ${kernels.length} kernels (${r.judged.join(', ')}), ${boots} boot attempt(s) in all, ${r.judgedNow.length} in this run; wall time ${((Date.now() - t0) / 1000).toFixed(1)}s; state ${statePath}`);
        if (signal.aborted) return 130;
        return r.decision.kind === 'found' || r.decision.kind === 'none' ? 0 : 1;
      });
    }
    if (v.tree !== undefined) {
      if (typeof v.good !== 'string' || typeof v.bad !== 'string') throw new ConfigError('command line', typeof v.good !== 'string' ? '--good' : '--bad', 'missing', 'git mode needs both --good REF and --bad REF');
      const tree = checkInputPath(String(v.tree), '--tree', 'point --tree at a kernel git tree (its top directory)', 'dir', true);
      const statePath = stateFile(v.state ? String(v.state) : await defaultStatePath(tree));
      if (v['build-cmd'] !== undefined) checkInputPath(String(v['build-cmd']), '--build-cmd', 'give an executable file that builds the tree', 'file', true);
      if (v['base-package'] !== undefined && v['base-ref'] === undefined) throw new ConfigError('command line', '--base-ref', 'missing', 'name the commit that holds the unpacked --base-package');
      const baseCommit = v['base-ref'] !== undefined ? await resolveCommit(tree, String(v['base-ref']), '--base-ref') : undefined;
      const choice = { buildCmd: v['build-cmd'] as string | undefined, basePackage: v['base-package'] as string | undefined, baseCommit };
      const build = resolveBuild(choice, c.cacheDir, join(outDir, 'patches'));
      return withSignals(async (signal) => {
        const r = await bisectTree({
          tree, good: v.good as string, bad: v.bad as string, scenario, statePath, outDir, maxAttempts: c.attempts,
          env: matrixEnv({ scenario, cacheDir: c.cacheDir, accel: c.accel, timeoutMs: c.timeoutMs, opTimeoutS: c.opTimeoutS, signal, log: c.log, build }),
          stepArgv: stepArgv(v, c, statePath, outDir, baseCommit), log: c.log, signal,
        });
        // git bisect run's last line has no newline: start ours on a fresh line.
        console.log('');
        for (const l of r.lines) console.log(l);
        console.log(`wall time ${((Date.now() - t0) / 1000).toFixed(1)}s; state ${statePath}`);
        if (signal.aborted) return 130;
        return r.ok ? 0 : 1;
      });
    }
    throw new ConfigError('command line', '--kernels', 'nothing to bisect', 'give --kernels A,B,... (prebuilt kernels, oldest first) or --tree PATH --good REF --bad REF');
  },
};

/**
 * The absolute path of a bisect state file (--state, or its default): a
 * regular file or none yet, never a FIFO or device (reading one would block).
 * Throws ConfigError naming --state.
 */
const stateFile = (path: string): string =>
  checkInputPath(path, '--state', 'give the path of a lockstep bisect state .json file (or of a new one)', 'file', true);

/** The argv git bisect run executes at each step: this lockstep, the same options. */
function stepArgv(v: Record<string, unknown>, c: Common, statePath: string, outDir: string, baseCommit: string | undefined): string[] {
  const bin = repoPath('bin', 'lockstep.mjs');
  const a = [process.execPath, bin, 'bisect-step', '--state', statePath, '--out', outDir, '--scenario', c.scenarioId, '--attempts', String(c.attempts), '--op-timeout', String(c.opTimeoutS), '--cache', c.cacheDir];
  for (const f of (v['scenario-file'] as string[] | undefined) ?? []) a.push('--scenario-file', resolve(f));
  if (v['no-builtin-scenarios']) a.push('--no-builtin-scenarios');
  if (c.accel) a.push('--accel', c.accel);
  if (c.timeoutMs) a.push('--timeout', String(c.timeoutMs / 1000));
  if (v['build-cmd']) a.push('--build-cmd', resolve(String(v['build-cmd'])));
  if (v['base-package'] && baseCommit) a.push('--base-package', String(v['base-package']), '--base-commit', baseCommit);
  if (v.quiet) a.push('--quiet');
  return a;
}

export const stepCommand: Command = {
  name: 'bisect-step',
  summary: 'one git-bisect step (run by `lockstep bisect --tree` through git bisect run)',
  description: `Builds the tree in the current directory at HEAD, boots it, runs the scenario,
classifies, and exits 0 when it behaves like the good end, 1 when it differs,
125 when it cannot be judged (build failure; infrastructure failure after the
retries; panic), 255 on a lockstep error (git bisect run stops). Results are
saved in the state file, so a step already judged is not run again.`,
  badInputExit: 255,
  options: {
    'build-cmd': { type: 'string', arg: 'PROGRAM', help: 'build command (see lockstep bisect --help)' },
    'base-package': { type: 'string', arg: 'PKG', help: 'Debian source package the base commit holds' },
    'base-commit': { type: 'string', arg: 'SHA', help: 'the base commit (full sha)' },
    out: { type: 'string', arg: 'DIR', help: 'output directory of the bisect' },
    ...runOptions,
  },
  async run(v) {
    // Any failure here must stop git bisect run (exit >= 128), never read as "bad" (1..127) or skip.
    try {
      const { loadScenarios } = await import('../common.ts');
      const { matrixEnv } = await import('../../bisect/env.ts');
      const { bisectStep } = await import('../../bisect/git.ts');
      const { resolveBuild } = await import('../../bisect/build.ts');
      const c = await commonOf(v);
      if (typeof v.state !== 'string' || typeof v.out !== 'string') throw new ConfigError('command line', '--state', 'bisect-step needs --state and --out', 'run it through `lockstep bisect --tree`');
      const scenario = pick(await loadScenarios(v), [c.scenarioId], 'scenario', 'scenario')[0]!;
      const outDir = resolve(v.out);
      const build = resolveBuild({ buildCmd: v['build-cmd'] as string | undefined, basePackage: v['base-package'] as string | undefined, baseCommit: v['base-commit'] as string | undefined }, c.cacheDir, join(outDir, 'patches'));
      return await withSignals(async (signal) =>
        bisectStep({
          tree: process.cwd(), statePath: stateFile(v.state as string), outDir, scenario, maxAttempts: c.attempts,
          env: matrixEnv({ scenario, cacheDir: c.cacheDir, accel: c.accel, timeoutMs: c.timeoutMs, opTimeoutS: c.opTimeoutS, signal, log: c.log, build }),
          log: c.log, signal,
        }));
    } catch (e) {
      console.error(`lockstep bisect-step: ${e instanceof ConfigError ? e.message : ((e as Error).stack ?? e)}`);
      return 255;
    }
  },
};
