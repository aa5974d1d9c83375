// Bisect over an ordered list of prebuilt kernels: measure the first
// (reference), then binary search for the first kernel whose behaviour
// differs, asking decide.ts what to boot next after every answer.

import { join } from 'node:path';
import type { KernelSpec } from '../kernels/spec.ts';
import { scenarioHash } from '../scenario/load.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { decide, type Decision } from './decide.ts';
import { type BisectEnv, judgePosition } from './env.ts';
import { type BisectState, listMarks, newState, saveState } from './state.ts';
import { ConfigError } from '../util/errors.ts';

export interface ListBisectOptions {
  kernels: KernelSpec[];
  scenario: CompiledScenario;
  env: BisectEnv;
  /** loaded state to resume, or null */
  resume: BisectState | null;
  statePath: string;
  outDir: string;
  maxAttempts: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface ListBisectResult {
  decision: Decision;
  state: BisectState;
  /** kernels booted by this invocation (a resumed run does not re-boot saved ones) */
  judgedNow: string[];
  /** every kernel with a mark, in list order */
  judged: string[];
}

/** Refuse a saved state that belongs to another question. */
export function checkResumable(s: BisectState, ids: readonly string[], scenario: CompiledScenario, file: string): void {
  const fix = 'rerun with the same --kernels and --scenario, or delete the state file to start afresh';
  if (s.mode !== 'list') throw new ConfigError(file, 'mode', `the saved bisect is a ${s.mode} bisect`, fix);
  if (s.scenario !== scenario.id || s.scenario_hash !== scenarioHash(scenario)) {
    throw new ConfigError(file, 'scenario', `the saved bisect ran scenario ${s.scenario} (hash ${s.scenario_hash.slice(0, 12)}), not ${scenario.id} (hash ${scenarioHash(scenario).slice(0, 12)})`, fix);
  }
  if (s.positions.join(',') !== ids.join(',')) throw new ConfigError(file, 'positions', `the saved bisect is over ${s.positions.join(',')}`, fix);
}

export async function bisectList(o: ListBisectOptions): Promise<ListBisectResult> {
  const ids = o.kernels.map((k) => k.id);
  const now = () => new Date().toISOString();
  const state = o.resume ?? newState({ mode: 'list', scenario: o.scenario.id, scenario_hash: scenarioHash(o.scenario), positions: ids }, now());
  if (o.resume) checkResumable(o.resume, ids, o.scenario, o.statePath);
  const save = () => saveState(o.statePath, state, now());
  await save();
  const judgedNow: string[] = [];
  for (;;) {
    const d = decide({ n: ids.length, marks: listMarks(state), end: 'open' });
    for (const w of d.warnings) o.log(`warning: ${w}`);
    if (d.kind !== 'test') {
      state.result = { ...d };
      await save();
      return { decision: d, state, judgedNow, judged: ids.filter((id) => state.steps[id]?.mark !== undefined) };
    }
    const spec = o.kernels[d.index]!;
    if (d.index > 0) o.log(`testing ${spec.id} (position ${d.index} of 0..${ids.length - 1}; last like the reference: ${ids[d.lo]}, first known different: ${d.hi < ids.length ? ids[d.hi] : 'none yet'})`);
    else o.log(`measuring the reference ${spec.id}`);
    const fresh = state.steps[spec.id]?.mark === undefined;
    const r = await judgePosition({
      env: o.env, state, key: spec.id, label: spec.id, target: { kind: 'spec', spec }, isReference: d.index === 0,
      maxAttempts: o.maxAttempts, outDir: join(o.outDir, 'steps', `${String(d.index).padStart(2, '0')}-${spec.id}`),
      save, log: o.log, signal: o.signal,
    });
    if (r === null) {
      return { decision: d, state, judgedNow, judged: ids.filter((id) => state.steps[id]?.mark !== undefined) };
    }
    if (fresh) judgedNow.push(spec.id);
    o.log(`${spec.id}: ${r.mark} (${r.why})`);
  }
}
