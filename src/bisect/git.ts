// Bisect a kernel git tree with `git bisect run`. The driver measures the
// good end (its behaviour defines "good") and checks that the bad end
// differs, then lets git choose commits while `lockstep bisect-step` judges
// each one (build, boot, run, classify; exit 0 good, 1 bad, 125 skip). Every
// attempt lands in the state file, so a rerun after a stop continues: a
// live git bisect session just runs on, a reset one is started again and
// replayed from the saved marks. git runs through execFile/spawn with
// argument arrays, never a shell.

import { spawn } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { scenarioHash } from '../scenario/load.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { ConfigError } from '../util/errors.ts';
import { runTool, ToolError } from '../util/exec.ts';
import { GIT_EXIT, type Mark } from './decide.ts';
import { type BisectEnv, judgePosition } from './env.ts';
import { type BisectState, loadState, newState, saveState, type StepRecord } from './state.ts';

const now = (): string => new Date().toISOString();

/** The only options lockstep passes to git here: any other argument starting with "-" came from a ref or a state file and is refused. */
const GIT_OPTIONS = new Set(['--git-dir', '--verify', '--quiet', '--end-of-options', '-1', '--format=%s', '-q', '--detach', '--is-ancestor', '--porcelain', '--untracked-files=no', '--short', '-f']);

async function git(tree: string, args: string[]): Promise<string> {
  const opt = args.find((a) => a.startsWith('-') && !GIT_OPTIONS.has(a));
  if (opt !== undefined) throw new ConfigError('command line', '--tree', `${JSON.stringify(opt)} would reach git as an option`, 'give commits, tags or branches that do not start with "-"');
  try {
    return (await runTool('git', ['-C', tree, ...args], { install: 'apt-get install git' })).stdout.trim();
  } catch (e) {
    if (!(e instanceof ToolError)) throw e;
    throw new Error(`git ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

export async function gitDir(tree: string): Promise<string> {
  let d: string;
  try {
    d = await git(tree, ['rev-parse', '--git-dir']);
  } catch {
    throw new ConfigError('command line', '--tree', `${tree} is not a git tree`, 'point --tree at a kernel git checkout');
  }
  return isAbsolute(d) ? d : join(tree, d);
}

export const defaultStatePath = async (tree: string): Promise<string> => join(await gitDir(tree), 'lockstep-bisect.json');

export async function resolveCommit(tree: string, ref: string, flag: string): Promise<string> {
  if (ref.startsWith('-')) throw new ConfigError('command line', flag, `${JSON.stringify(ref)} looks like an option`, 'give a commit, tag or branch');
  try {
    return await git(tree, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
  } catch {
    throw new ConfigError('command line', flag, `${JSON.stringify(ref)} is not a commit in ${tree}`, `check it with git -C ${tree} log --oneline`);
  }
}

const subject = (tree: string, sha: string): Promise<string> => git(tree, ['log', '-1', '--format=%s', '--end-of-options', sha]);
const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

export interface TreeBisectOptions {
  tree: string;
  good: string;
  bad: string;
  scenario: CompiledScenario;
  statePath: string;
  outDir: string;
  maxAttempts: number;
  env: BisectEnv;
  /** argv of the step command git bisect run executes */
  stepArgv: string[];
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface TreeBisectResult {
  ok: boolean;
  /** the first commit with the new behaviour (when ok) */
  first?: string;
  /** when skips hide the answer */
  candidates?: string[];
  lines: string[];
  state: BisectState;
}

function evidence(step: StepRecord | undefined): string {
  if (!step) return 'not measured';
  const a = [...step.attempts].reverse().find((x) => x.behaviour) ?? step.attempts[step.attempts.length - 1];
  const b = a?.behaviour;
  if (!a || !b) return `${step.mark ?? '?'}: ${step.why ?? ''}`;
  return `${step.mark}: fits ${b.fits.join(' ') || 'no logic'}; first EPERM ${b.first_eperm ?? 'none'}; pinned ${b.pinned.join(',') || '-'}; probe headrooms ${b.headrooms.join(',') || '-'} [${a.kernel_release ?? '?'}, ${a.out_dir}${step.attempts.length > 1 ? `, ${step.attempts.length} attempts` : ''}]`;
}

/** Check out `sha` detached (outside a bisect session), then judge it. */
async function judgeEnd(o: TreeBisectOptions, state: BisectState, sha: string, isReference: boolean, save: () => Promise<void>) {
  if (state.steps[sha]?.mark === undefined) await git(o.tree, ['checkout', '-q', '--detach', sha]);
  const label = `${sha.slice(0, 12)} ${await subject(o.tree, sha)}`;
  return judgePosition({
    env: o.env, state, key: sha, label, target: { kind: 'tree', tree: o.tree, commit: sha }, isReference,
    maxAttempts: o.maxAttempts, outDir: join(o.outDir, 'steps', sha.slice(0, 12)), save, log: o.log, signal: o.signal,
  });
}

/** What git's bisect log says the search ended with. Pure. */
export function parseBisectLog(text: string): { first: string } | { candidates: string[] } | null {
  const first = /^# first bad commit: \[([0-9a-f]{40})\]/m.exec(text);
  if (first) return { first: first[1]! };
  if (/^# only skipped commits left to test/m.test(text)) {
    return { candidates: [...text.matchAll(/^# possible first bad commit: \[([0-9a-f]{40})\]/gm)].map((m) => m[1]!) };
  }
  return null;
}

export async function bisectTree(o: TreeBisectOptions): Promise<TreeBisectResult> {
  const good = await resolveCommit(o.tree, o.good, '--good');
  const bad = await resolveCommit(o.tree, o.bad, '--bad');
  if (good === bad) throw new ConfigError('command line', '--bad', 'the good and bad ends are the same commit', 'give two different commits');
  if ((await git(o.tree, ['merge-base', '--is-ancestor', '--end-of-options', good, bad]).then(() => true, () => false)) === false) {
    throw new ConfigError('command line', '--good', `${o.good} is not an ancestor of ${o.bad}`, 'give the older commit as --good');
  }
  const gd = await gitDir(o.tree);
  const inSession = await exists(join(gd, 'BISECT_START'));
  let saved = await loadState(o.statePath);
  if (saved && saved.result && !inSession && (saved.mode !== 'git' || saved.positions.join(' ') !== `${good} ${bad}` || saved.scenario_hash !== scenarioHash(o.scenario))) {
    o.log(`replacing the finished bisect saved in ${o.statePath} (${saved.scenario}, ${saved.positions.map((p) => p.slice(0, 12)).join('..')})`);
    saved = null;
  }
  const fix = `rerun with the same --good/--bad/--scenario, or run \`git -C ${o.tree} bisect reset\` and delete ${o.statePath} to start afresh`;
  if (saved) {
    if (saved.mode !== 'git' || saved.positions.join(' ') !== `${good} ${bad}` || saved.scenario_hash !== scenarioHash(o.scenario)) {
      throw new ConfigError(o.statePath, 'positions', `a saved bisect of ${saved.positions.map((p) => p.slice(0, 12)).join('..')} (${saved.scenario}) is in this tree`, fix);
    }
    o.log(`continuing the saved bisect (${Object.values(saved.steps).filter((s) => s.mark).length} commits judged so far)`);
  } else if (inSession) {
    throw new ConfigError(join(gd, 'BISECT_START'), '', 'a git bisect session not started by lockstep is in progress in this tree', `finish it or run \`git -C ${o.tree} bisect reset\``);
  }
  if (!inSession) {
    const dirty = await git(o.tree, ['status', '--porcelain', '--untracked-files=no']);
    if (dirty) throw new ConfigError('command line', '--tree', `${o.tree} has uncommitted changes`, 'commit or stash them: bisect checks out other commits');
  }
  const state = saved ?? newState({ mode: 'git', scenario: o.scenario.id, scenario_hash: scenarioHash(o.scenario), positions: [good, bad], tree: o.tree, good_ref: o.good, bad_ref: o.bad }, now());
  const save = () => saveState(o.statePath, state, now());
  await save();
  const lines: string[] = [];
  const done = (ok: boolean, extra: Partial<TreeBisectResult> = {}): TreeBisectResult => ({ ok, lines, state, ...extra });

  // The ends, outside git's session (git bisect run trusts them; we do not).
  const orig = inSession ? null : ((await git(o.tree, ['symbolic-ref', '-q', '--short', 'HEAD']).catch(() => '')) || (await git(o.tree, ['rev-parse', 'HEAD'])));
  const back = async () => { if (orig) await git(o.tree, ['checkout', '-q', orig]); };
  if (!inSession) {
    o.log(`good end ${good.slice(0, 12)}: measuring the reference behaviour`);
    const g = await judgeEnd(o, state, good, true, save);
    if (!g) { await back(); return done(false, { lines: ['interrupted while measuring the good end; rerun to continue'] }); }
    if (g.mark !== 'old') {
      await back();
      lines.push(`the good end ${good.slice(0, 12)} could not be measured: ${g.why}`);
      return done(false);
    }
    o.log(`bad end ${bad.slice(0, 12)}: checking that it behaves differently`);
    const b = await judgeEnd(o, state, bad, false, save);
    await back();
    if (!b) return done(false, { lines: ['interrupted while measuring the bad end; rerun to continue'] });
    if (b.mark !== 'new') {
      lines.push(b.mark === 'old'
        ? `the bad end ${bad.slice(0, 12)} behaves like the good end (${state.reference?.key}): scenario ${o.scenario.id} sees no change between them`
        : `the bad end ${bad.slice(0, 12)} could not be measured: ${b.why}`);
      state.result = { kind: 'bad-end-not-new', mark: b.mark };
      await save();
      return done(false);
    }
    // A fresh session, with every commit judged so far replayed.
    await git(o.tree, ['bisect', 'start', bad, good]);
    for (const [sha, st] of Object.entries(state.steps)) {
      if (sha === good || sha === bad || st.mark === undefined) continue;
      const verb: Record<Mark, string> = { old: 'good', new: 'bad', skip: 'skip' };
      o.log(`replaying ${verb[st.mark]} ${sha.slice(0, 12)} from the saved state`);
      await git(o.tree, ['bisect', verb[st.mark], sha]);
    }
  }

  const logText = async () => readFile(join(gd, 'BISECT_LOG'), 'utf8').catch(() => '');
  let ended = parseBisectLog(await logText());
  if (!ended) {
    o.log(`git bisect run ${o.stepArgv.slice(2, 3).join(' ')} ... (a step = build + boot + ${o.scenario.id})`);
    const code = await new Promise<number>((res, rej) => {
      // Own process group: a stop reaches git, the step and its build/VM at once,
      // and the step saves what it has before it exits.
      const p = spawn('git', ['-C', o.tree, 'bisect', 'run', ...o.stepArgv], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
      const stop = () => { try { if (p.pid) process.kill(-p.pid, 'SIGINT'); } catch { /* already gone */ } };
      o.signal?.addEventListener('abort', stop, { once: true });
      p.on('error', rej);
      p.on('close', (c, sig) => { o.signal?.removeEventListener('abort', stop); res(c ?? (sig ? 128 : 1)); });
    });
    if (o.signal?.aborted) await restoreCheckout(o);
    ended = parseBisectLog(await logText());
    if (!ended) {
      await keepBisectLog(o);
      const again = await loadState(o.statePath);
      if (again) Object.assign(state, again);
      lines.push(o.signal?.aborted
        ? `interrupted; the git bisect session and ${o.statePath} are kept: rerun the same command to continue`
        : `git bisect run stopped without an answer (exit ${code}); the session is kept: see git -C ${o.tree} bisect log, rerun to continue`);
      return done(false);
    }
  }
  // The steps ran in other processes: read what they saved.
  const fresh = await loadState(o.statePath);
  if (fresh) Object.assign(state, fresh);
  const ref = state.steps[good];
  lines.push(`good end ${good.slice(0, 12)} ${await subject(o.tree, good)}: ${evidence(ref)}`);
  let result: TreeBisectResult;
  if ('first' in ended) {
    const first = ended.first;
    const parent = await git(o.tree, ['rev-parse', '--verify', '--end-of-options', `${first}^`]).catch(() => '');
    lines.push(`first commit with the new behaviour: ${first} ${await subject(o.tree, first)}`);
    lines.push(`  ${first.slice(0, 12)}: ${evidence(state.steps[first])}`);
    if (parent) lines.push(`  parent ${parent.slice(0, 12)} ${await subject(o.tree, parent)}: ${evidence(state.steps[parent])}`);
    result = done(true, { first });
  } else {
    lines.push(`skipped commits hide the answer; the first commit with the new behaviour is one of:`);
    for (const c of ended.candidates) lines.push(`  ${c.slice(0, 12)} ${await subject(o.tree, c)}: ${evidence(state.steps[c])}`);
    result = done(false, { candidates: ended.candidates });
  }
  const skipped = Object.entries(state.steps).filter(([, s]) => s.mark === 'skip');
  for (const [sha, s] of skipped) lines.push(`skipped ${sha.slice(0, 12)} ${await subject(o.tree, sha)}: ${s.why}`);
  state.result = 'first' in ended ? { kind: 'found', first: ended.first } : { kind: 'ambiguous', candidates: ended.candidates };
  await save();
  // git's own record of the session, kept with the results before the reset drops it
  await keepBisectLog(o);
  lines.push(`git bisect log: ${join(o.outDir, 'bisect.log')}`);
  await git(o.tree, ['bisect', 'reset']);
  return result;
}

/**
 * After a stop: the signal reaches `git bisect run` too, and git stopped
 * while checking out the next commit leaves tracked files half-written (the
 * tree was clean when the session started: a dirty tree is refused). Put
 * them back to HEAD so the kept session continues (or `git bisect reset`
 * works); untracked files are left alone.
 */
async function restoreCheckout(o: TreeBisectOptions): Promise<void> {
  const dirty = await git(o.tree, ['status', '--porcelain', '--untracked-files=no']).catch(() => '');
  if (!dirty) return;
  o.log(`the stop interrupted git's checkout; restoring ${dirty.split('\n').length} tracked file(s) of ${o.tree} to HEAD`);
  await git(o.tree, ['checkout', '-q', '-f', 'HEAD']);
}

/** Copy `git bisect log` into OUT/bisect.log (replayable with git bisect replay). */
async function keepBisectLog(o: TreeBisectOptions): Promise<void> {
  const text = await git(o.tree, ['bisect', 'log']).catch(() => '');
  if (!text) return;
  await mkdir(o.outDir, { recursive: true });
  await writeFile(join(o.outDir, 'bisect.log'), `${text}\n`);
}

export interface StepOptions {
  tree: string;
  statePath: string;
  outDir: string;
  scenario: CompiledScenario;
  maxAttempts: number;
  env: BisectEnv;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** One git bisect run step at HEAD: returns the exit code for git. */
export async function bisectStep(o: StepOptions): Promise<number> {
  const state = await loadState(o.statePath);
  if (!state || state.mode !== 'git') throw new ConfigError(o.statePath, '', 'no git bisect state', 'run `lockstep bisect --tree ...`, which runs this step');
  if (state.scenario_hash !== scenarioHash(o.scenario)) throw new ConfigError(o.statePath, 'scenario', `the bisect runs ${state.scenario}, not this ${o.scenario.id}`, 'run the step through lockstep bisect');
  const sha = await git(o.tree, ['rev-parse', 'HEAD']);
  const label = `${sha.slice(0, 12)} ${await subject(o.tree, sha)}`;
  const r = await judgePosition({
    env: o.env, state, key: sha, label, target: { kind: 'tree', tree: o.tree, commit: sha }, isReference: false,
    maxAttempts: o.maxAttempts, outDir: join(o.outDir, 'steps', sha.slice(0, 12)),
    save: () => saveState(o.statePath, state, now()), log: o.log, signal: o.signal,
  });
  if (!r) return 255; // interrupted: stop git bisect run, keep the session
  o.log(`${label}: ${r.mark === 'old' ? 'good' : r.mark === 'new' ? 'bad' : 'skip'} (${r.why})`);
  return GIT_EXIT[r.mark];
}
