// The saved state of a bisect run (lockstep/bisect-state@1): every attempt
// at every position with its outcome, written atomically after each attempt.
// A stopped run resumes by loading it and feeding the marks back to the pure
// decision (decide.ts); nothing measured is measured again.

import { readFile } from 'node:fs/promises';
import { writeAtomic } from '../results/write.ts';
import { ConfigError } from '../util/errors.ts';
import type { Attempt, Mark } from './decide.ts';
import type { Behaviour } from './behaviour.ts';

export const BISECT_STATE_SCHEMA = 'lockstep/bisect-state@1';

export interface AttemptRecord {
  attempt: Attempt;
  /** the cell verdict (or BUILD_FAIL) */
  verdict: string;
  behaviour?: Behaviour;
  kernel_release?: string;
  started_at: string;
  wall_ms: number;
  /** where this attempt's results.json and logs are */
  out_dir: string;
}

export interface StepRecord {
  /** what the position is: a kernel id or a commit's subject */
  label: string;
  attempts: AttemptRecord[];
  /** set once judged */
  mark?: Mark;
  why?: string;
}

export interface BisectState {
  schema: typeof BISECT_STATE_SCHEMA;
  mode: 'list' | 'git';
  scenario: string;
  scenario_hash: string;
  /** list mode: the kernel ids in order; git mode: [good sha, bad sha] */
  positions: string[];
  /** git mode: the tree and the refs as given */
  tree?: string;
  good_ref?: string;
  bad_ref?: string;
  /** behaviour of position 0 / the good end; null until measured */
  reference: Behaviour | null;
  /** per kernel id (list) or full commit sha (git) */
  steps: Record<string, StepRecord>;
  started_at: string;
  updated_at: string;
  /** set when the search ended */
  result?: Record<string, unknown>;
}

export function newState(o: Omit<BisectState, 'schema' | 'reference' | 'steps' | 'started_at' | 'updated_at'>, now: string): BisectState {
  return { schema: BISECT_STATE_SCHEMA, ...o, reference: null, steps: {}, started_at: now, updated_at: now };
}

/** Parse and check a saved state. Pure. */
export function parseState(text: string, file: string): BisectState {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, '', `not valid JSON (${(e as Error).message})`, 'delete the state file to start the bisect afresh');
  }
  const bad = (field: string, problem: string): ConfigError =>
    new ConfigError(file, field, problem, 'delete the state file to start the bisect afresh (its measurements are lost)');
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad('', 'not a JSON object');
  const s = o as Record<string, unknown>;
  if (s.schema !== BISECT_STATE_SCHEMA) throw bad('schema', `unknown schema ${JSON.stringify(s.schema)} (this lockstep reads ${BISECT_STATE_SCHEMA})`);
  if (s.mode !== 'list' && s.mode !== 'git') throw bad('mode', `must be "list" or "git", got ${JSON.stringify(s.mode)}`);
  if (typeof s.scenario !== 'string' || typeof s.scenario_hash !== 'string') throw bad('scenario', 'missing scenario or scenario_hash');
  if (!Array.isArray(s.positions) || !s.positions.every((p) => typeof p === 'string')) throw bad('positions', 'must be an array of strings');
  if (typeof s.steps !== 'object' || s.steps === null || Array.isArray(s.steps)) throw bad('steps', 'must be an object');
  for (const [k, st] of Object.entries(s.steps as Record<string, unknown>)) {
    const r = st as Partial<StepRecord> | null;
    if (typeof r !== 'object' || r === null || !Array.isArray(r.attempts)) throw bad(`steps.${k}`, 'must be an object with an "attempts" array');
    if (r.mark !== undefined && r.mark !== 'old' && r.mark !== 'new' && r.mark !== 'skip') throw bad(`steps.${k}.mark`, `unknown mark ${JSON.stringify(r.mark)}`);
  }
  if (s.reference !== null && (typeof s.reference !== 'object' || typeof (s.reference as Behaviour).key !== 'string')) throw bad('reference', 'must be null or a behaviour with a "key"');
  return s as unknown as BisectState;
}

/** The marks of a list-mode state, by position. Pure. */
export function listMarks(s: BisectState): Record<number, Mark> {
  const marks: Record<number, Mark> = {};
  s.positions.forEach((id, i) => {
    const m = s.steps[id]?.mark;
    if (m !== undefined) marks[i] = m;
  });
  return marks;
}

export async function loadState(path: string): Promise<BisectState | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(path, '', `cannot read the bisect state (${(e as Error).message})`, 'check its permissions, or delete it to start afresh');
  }
  return parseState(text, path);
}

export async function saveState(path: string, s: BisectState, now: string): Promise<void> {
  s.updated_at = now;
  await writeAtomic(path, `${JSON.stringify(s, null, 1)}\n`);
}
