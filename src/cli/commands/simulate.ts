import { ALL_LOGICS, logicLabel, parseLogic, simulate } from '../../model/index.ts';
import { ConfigError } from '../../util/errors.ts';
import { type Command, loadScenarios, pick, scenarioOptions } from '../common.ts';

export const command: Command = {
  name: 'simulate',
  args: 'SCENARIO',
  summary: 'print what a logic predicts for a scenario, op by op (no kernel needed)',
  description: `Runs the simulator (src/model) over a scenario's op script. --logic takes V0..V4,
optionally with the counter: V3/perf (separate perf counter), V0/shared (user->locked_vm).
Without a counter, "shared". --logic all prints the first EPERM call for every logic.`,
  options: {
    logic: { type: 'string', arg: 'LOGIC', help: 'V0..V4[/shared|/perf] or all', default: 'V0' },
    json: { type: 'boolean', help: 'print JSON (one object per op)' },
    ...scenarioOptions,
  },
  examples: ['lockstep simulate incident --logic V0', 'lockstep simulate sysctl-lowered --logic all', 'lockstep simulate remmap --logic V4/shared --json'],
  async run(v, pos) {
    if (pos.length !== 1) throw new ConfigError('command line', 'SCENARIO', 'expected exactly one scenario id', 'e.g. `lockstep simulate incident --logic V0`; `lockstep scenarios list` shows them');
    const [s] = pick(await loadScenarios(v), [pos[0]], 'scenario', 'SCENARIO');
    const label = String(v.logic);
    const parse = (l: string) => {
      try { return parseLogic(l.includes('/') ? l : `${l}/shared`); } catch {
        throw new ConfigError('command line', '--logic', `${JSON.stringify(l)} is not a logic`, 'use V0..V4, optionally /shared or /perf, or all');
      }
    };
    if (label === 'all') {
      const rows = ALL_LOGICS.map((l) => {
        const e = simulate(s, l);
        const maps = s.ops.map((op, i) => ({ op, e: e[i] })).filter((x) => x.op.op === 'map');
        const k = maps.findIndex((x) => !x.e.ok);
        return { logic: logicLabel(l), first_eperm: k < 0 ? null : k + 1, pinned: maps.map((x) => x.e.pinned), final_user: e.length ? e[e.length - 1].user : 0 };
      });
      if (v.json) console.log(JSON.stringify(rows, null, 1));
      else for (const r of rows) console.log(`${r.logic.padEnd(10)} first EPERM: ${r.first_eperm === null ? 'none' : `call ${r.first_eperm}`}; pinned after each map: ${r.pinned.join(' ')}`);
      return 0;
    }
    const logic = parse(label);
    const e = simulate(s, logic);
    if (v.json) {
      for (let i = 0; i < s.ops.length; i++) console.log(JSON.stringify({ i, ...s.ops[i], expected: e[i] }));
      return 0;
    }
    console.log(`${s.id} under ${logicLabel(logic)}: ${s.cpus} CPUs, mlock_kb ${s.mlock_kb}, RLIMIT_MEMLOCK ${s.rlimit_kb === null ? 'unlimited' : `${s.rlimit_kb} kB`}, CAP_IPC_LOCK ${s.cap_ipc_lock ? 'kept' : 'dropped'}, paranoid ${s.paranoid}`);
    console.log(' op  what                        result   pinned   user   check (user_locked extra pinned+extra / limit)');
    s.ops.forEach((op, i) => {
      const x = e[i];
      const what = JSON.stringify(op).replace(/[{}"]/g, '').replace(/^op:/, '').slice(0, 27);
      const chk = x.check ? `${x.check.userLocked} ${x.check.extra} ${x.check.locked} / ${x.check.lockLimit}` : x.headroom !== undefined ? `headroom ${x.headroom}` : '';
      console.log(`${String(i).padStart(3)}  ${what.padEnd(27)} ${(x.ok ? 'ok' : x.errno).padEnd(8)} ${String(x.pinned).padStart(6)} ${String(x.user).padStart(6)}   ${chk}`);
    });
    return 0;
  },
};
