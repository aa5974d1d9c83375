import { release as osRelease } from 'node:os';
import type { Expectation, Logic, SimulateOptions } from '../../model/index.ts';
import { ConfigError } from '../../util/errors.ts';
import { type Command, int, kernelOptions, pick, scenarioOptions } from '../command.ts';

export const command: Command = {
  name: 'simulate',
  args: 'SCENARIO',
  summary: 'print what a logic predicts for a scenario, op by op (no kernel needed)',
  description: `Runs the simulator (src/model) over a scenario's op script. --logic takes V0..V4,
optionally with the counter: V3/perf (separate perf counter), V0/shared (user->locked_vm).
Without a counter, "shared". One logic prints a table, one row per op (the whole op in
"what"; result; the worker's pinned_vm and the per-user counter U after it, in pages; the
kernel's check or the probe's headroom), then a summary line: every refused call, the final
pinned_vm (pages) = VmPin (kB) and U, and each probe's headroom.
--logic all compares the fourteen logics (V0, V1, V1a, V1b, V2..V4 x shared/perf): logics that predict the same for
every op share one block; the header names the op where logics first part, and each later
block the op where it parts from the block it follows longest, with the values that differ
there. Per block: every refused call (map call numbers #N as in table.md, and op indices),
the final pinned_vm and VmPin, U, and each probe's headroom. --json prints the same as one
object ({scenario, cpus, page_kb, part_op, groups, logics: [{logic, group, refused,
first_eperm, vmpin_pages, vmpin_kb, user_pages, probes, pinned}]}).
--kernel-version X (or --kernel ID, a kernel spec) applies what that kernel's version implies,
as classify and run do: its expected logic (unless --logic is given; a counter the tables leave
unknown prints both predictions) and its version-driven model options (BPF charging
user->locked_vm before 5.11). Without either: --logic, default V0, on this host's defaults.`,
  options: {
    logic: { type: 'string', arg: 'LOGIC', help: 'V0..V4[/shared|/perf] or all (default V0, or the kernel\'s expected logic)' },
    'kernel-version': { type: 'string', arg: 'X', help: 'simulate as kernel version X would (e.g. 5.3, 6.12.115)' },
    kernel: { type: 'string', arg: 'ID', help: 'simulate as the kernel spec ID would (its version; host: this machine\'s)' },
    ...kernelOptions,
    json: { type: 'boolean', help: 'print JSON: one object per op; with --logic all one object for all logics' },
    cpus: { type: 'string', arg: 'N', help: 'online CPUs for a "cpus": "any" scenario (default 2); a pinned scenario keeps its count' },
    'page-kb': { type: 'string', arg: 'KB', help: 'the kernel\'s page size in kB: 4 (x86_64, arm64 default), 16 or 64 (arm64 CONFIG_ARM64_{16K,64K}_PAGES); default 4, or the --kernel spec\'s page_size_kb' },
    ...scenarioOptions,
  },
  examples: ['lockstep simulate incident --logic V0', 'lockstep simulate incident --kernel-version 5.3', 'lockstep simulate bpf-ballast --kernel debian-6.1.192', 'lockstep simulate sysctl-lowered --logic all', 'lockstep simulate remmap --logic V4/shared --json', 'lockstep simulate incident --logic V0 --page-kb 64'],
  async run(v, pos) {
    if (pos.length !== 1) throw new ConfigError('command line', 'SCENARIO', 'expected exactly one scenario id', 'e.g. `lockstep simulate incident --logic V0`; `lockstep scenarios list` shows them');
    const { loadKernels, loadScenarios } = await import('../common.ts');
    const { userKernelVersion } = await import('../../kernel-facts/index.ts');
    const { resolveExpect } = await import('../../kernels/expect.ts');
    const { parseSpec } = await import('../../kernels/spec.ts');
    const { compileAtCpus, compileAtPageSize } = await import('../../scenario/load.ts');
    const { ALL_LOGICS, DEFAULT_PAGE_KB, candidateLogics, logicLabel, parseLogic, simOptionsForVersion, simulate } = await import('../../model/index.ts');
    const { compareLogics, renderAll, renderOps, summarize } = await import('../simulate-view.ts');
    const [pickedS] = pick(await loadScenarios(v), [pos[0]], 'scenario', 'SCENARIO');
    if (v.cpus !== undefined && !pickedS!.cpus_any) throw new ConfigError('command line', '--cpus', `scenario ${pickedS!.id} pins "cpus": ${pickedS!.cpus}`, 'drop --cpus, or write "cpus": "any" in the scenario file');
    let s = v.cpus !== undefined ? compileAtCpus(pickedS!, int(v.cpus, 'cpus', 1, 256)) : pickedS!;
    if (v['kernel-version'] !== undefined && v.kernel !== undefined) {
      throw new ConfigError('command line', '--kernel', 'give --kernel-version or --kernel, not both', 'drop one of them');
    }
    // The kernel's version: options for the model and, unless --logic says otherwise, the expectation.
    let opts: SimulateOptions | undefined;
    let expected: Expectation | undefined;
    let kernelText = '';
    if (v['kernel-version'] !== undefined || v.kernel !== undefined) {
      let version: string;
      let spec;
      if (v.kernel !== undefined) {
        [spec] = pick(await loadKernels(v), [String(v.kernel)], 'kernel', 'kernel');
        version = spec!.kind === 'host' ? osRelease() : ('version' in spec! && spec!.version) || '';
      } else {
        version = String(v['kernel-version']);
        const fix = 'write MAJOR.MINOR[.PATCH], e.g. --kernel-version 5.3 or 6.12.115';
        userKernelVersion(version, 'command line', '--kernel-version', fix);
        if (!/^\d+\.\d+/.test(version)) throw new ConfigError('command line', '--kernel-version', `${JSON.stringify(version)} is not a kernel version`, fix);
        spec = parseSpec({ id: 'cli', kind: 'image', path: '/dev/null', version }, 'command line');
      }
      const exp = resolveExpect(spec!, version);
      opts = simOptionsForVersion(version);
      if (exp.logic) expected = exp.logic;
      kernelText = `kernel ${v.kernel ?? version}${v.kernel !== undefined ? ` (${version})` : ''}: ${exp.logic ? logicLabel(exp.logic) : 'unknown'} (${exp.reason}); BPF charges user->locked_vm: ${opts.bpfChargesUser ? 'yes' : 'no'}`;
    }
    const label = v.logic === undefined ? (expected ? logicLabel(expected) : 'V0') : String(v.logic);
    const parse = (l: string): Logic[] => {
      if (expected && v.logic === undefined) return candidateLogics(expected);
      try { return [parseLogic(l.includes('/') ? l : `${l}/shared`)]; } catch {
        throw new ConfigError('command line', '--logic', `${JSON.stringify(l)} is not a logic`, 'use V0..V4, optionally /shared or /perf, or all');
      }
    };
    if (kernelText && !v.json) console.log(kernelText);
    // The page size: --page-kb, else the --kernel spec's build (page_size_kb), else 4 kB.
    let pageKb = DEFAULT_PAGE_KB;
    if (v['page-kb'] !== undefined) {
      pageKb = int(v['page-kb'], 'page-kb', 4, 64);
      if (![4, 16, 64].includes(pageKb)) throw new ConfigError('command line', '--page-kb', `${pageKb} kB is not a Linux page size lockstep knows`, 'use 4, 16 or 64');
    } else if (v.kernel !== undefined) {
      const [k] = pick(await loadKernels(v), [String(v.kernel)], 'kernel', 'kernel');
      if (k!.kind === 'source' && k!.page_size_kb !== undefined) pageKb = k!.page_size_kb;
    }
    if (pageKb !== DEFAULT_PAGE_KB) {
      opts = { ...opts, pageKb };
      // "L" ballasts and byte sizes follow the page size
      s = compileAtPageSize(s, pageKb);
    }
    if (label === 'all') {
      const runs = ALL_LOGICS.map((logic) => ({ logic, e: simulate(s, logic, opts) }));
      const view = compareLogics(s, runs, pageKb);
      if (v.json) {
        // every logic in ALL_LOGICS order, with the index of its group
        const logics = runs.map((r) => ({ ...summarize(s, r.logic, r.e, pageKb), group: view.groups.findIndex((g) => g.logics.includes(logicLabel(r.logic))) }));
        console.log(JSON.stringify({ scenario: s.id, cpus: s.cpus, page_kb: pageKb, part_op: view.part_op, groups: view.groups.map((g) => ({ logics: g.logics, parts: g.parts })), logics }, null, 1));
      } else for (const l of renderAll(s, view, pageKb)) console.log(l);
      return 0;
    }
    for (const logic of parse(label)) {
      const e = simulate(s, logic, opts);
      if (v.json) {
        for (let i = 0; i < s.ops.length; i++) console.log(JSON.stringify({ i, ...s.ops[i], logic: logicLabel(logic), expected: e[i] }));
        continue;
      }
      for (const l of renderOps(s, logic, e, pageKb)) console.log(l);
    }
    return 0;
  },
};
