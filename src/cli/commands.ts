// The commands. Each is a small function over already-parsed flags; the
// pipeline stages live in src/ and are only wired together here.

import { existsSync, statSync } from 'node:fs';
import { cpus, release as osRelease } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureKernel } from '../kernels/artifact.ts';
import { defaultCacheDir } from '../kernels/artifact.ts';
import { resolveExpect } from '../kernels/expect.ts';
import { builtinSpecs, checkUniqueIds, loadSpecFile, type KernelSpec } from '../kernels/spec.ts';
import { ALL_LOGICS, logicLabel, parseLogic, simulate } from '../model/index.ts';
import { builtinScenarios, loadScenarioDir, loadScenarioFile } from '../scenario/load.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import { ConfigError } from '../util/errors.ts';
import { runMatrix } from '../matrix/run.ts';
import { readResults } from '../results/write.ts';
import { renderTable } from '../results/table.ts';
import { hostOnlineCpus } from '../runner/host.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  arg?: string;
  help: string;
  default?: string;
}

export interface Command {
  name: string;
  args?: string;
  summary: string;
  description: string;
  options: Record<string, OptionSpec>;
  examples?: string[];
  run: (v: Record<string, unknown>, positionals: string[]) => Promise<number>;
}

const list = (v: unknown): string[] | undefined =>
  typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined;

const int = (v: unknown, flag: string, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError('command line', `--${flag}`, `${JSON.stringify(v)} is not a whole number in ${min}..${max}`, `pass e.g. --${flag} ${min}`);
  return n;
};

const kernelOptions: Record<string, OptionSpec> = {
  'kernel-spec': { type: 'string', multiple: true, arg: 'FILE', help: 'add kernel specs from a JSON file (one object or an array); see README "Kernel specs"' },
  'no-builtin-kernels': { type: 'boolean', help: 'only the kernels from --kernel-spec files' },
};

async function loadKernels(v: Record<string, unknown>): Promise<KernelSpec[]> {
  const specs = v['no-builtin-kernels'] ? [] : await builtinSpecs();
  for (const f of (v['kernel-spec'] as string[] | undefined) ?? []) specs.push(...(await loadSpecFile(resolve(f))));
  return checkUniqueIds(specs);
}

async function loadScenarios(v: Record<string, unknown>): Promise<CompiledScenario[]> {
  const loaded = v['no-builtin-scenarios'] ? [] : builtinScenarios();
  for (const p of (v['scenario-file'] as string[] | undefined) ?? []) {
    const abs = resolve(p);
    loaded.push(...(existsSync(abs) && statSync(abs).isDirectory() ? loadScenarioDir(abs) : [loadScenarioFile(abs)]));
  }
  const all = loaded.map((l) => l.compiled);
  const seen = new Set<string>();
  for (const s of all) {
    if (seen.has(s.id)) throw new ConfigError('scenarios', 'id', `scenario id ${JSON.stringify(s.id)} is defined twice`, 'rename one of them');
    seen.add(s.id);
  }
  return all;
}

function pick<T extends { id: string }>(all: T[], ids: string[] | undefined, what: string, flag: string): T[] {
  if (!ids) return all;
  return ids.map((id) => {
    const x = all.find((a) => a.id === id);
    if (!x) throw new ConfigError('command line', `--${flag}`, `no ${what} ${JSON.stringify(id)}`, `choose from: ${all.map((a) => a.id).join(', ')}`);
    return x;
  });
}

const scenarioOptions: Record<string, OptionSpec> = {
  'scenario-file': { type: 'string', multiple: true, arg: 'PATH', help: 'add scenarios from a JSON file or a directory of them; see harness/scenarios/README.md' },
  'no-builtin-scenarios': { type: 'boolean', help: 'only the scenarios from --scenario-file' },
};

const run: Command = {
  name: 'run',
  summary: 'run the matrix (kernels x scenarios) and diff against the model',
  description: `Fetches each kernel (cached under the cache dir), boots one VM per kernel and CPU count
(the host kernel runs natively, as root), runs every scenario under a fresh uid,
and writes OUT/results.json (schema lockstep/results@1), OUT/table.md and
OUT/logs/<kernel>@<cpus>cpu/{console.log,results.jsonl,script.ops}. Results are
rewritten atomically after every boot, so an interrupted run keeps what it measured.
Without --kernels/--scenarios it runs the embedded default matrix.
Exit 0 when every cell is MATCH, SKIP or UNCHECKED; 1 otherwise.`,
  options: {
    kernels: { type: 'string', arg: 'ID,..', help: 'kernel ids to run (default: all built-in + --kernel-spec ones); `lockstep kernels list`' },
    scenarios: { type: 'string', arg: 'ID,..', help: 'scenario ids (default: all); `lockstep scenarios list`' },
    ...kernelOptions,
    ...scenarioOptions,
    out: { type: 'string', arg: 'DIR', help: 'output directory', default: 'results/runs/<UTC timestamp>' },
    jobs: { type: 'string', arg: 'N', help: 'boots at once (each TCG vCPU is a host thread, so more rarely helps)', default: String(Math.max(1, Math.min(2, cpus().length))) },
    accel: { type: 'string', arg: 'kvm|tcg', help: 'force an accelerator (default: KVM if a probe VM starts, else TCG)' },
    timeout: { type: 'string', arg: 'SECONDS', help: 'hard limit per boot (default: scaled by CPUs and ops)' },
    'op-timeout': { type: 'string', arg: 'SECONDS', help: 'limit per op inside the guest', default: '60' },
    cache: { type: 'string', arg: 'DIR', help: 'kernel and image cache (default: $LOCKSTEP_CACHE or ~/.cache/lockstep)' },
    quiet: { type: 'boolean', help: 'no progress lines' },
  },
  examples: [
    'lockstep run                                   # the default matrix',
    'lockstep run --kernels debian-6.1.190 --scenarios remmap,shared-counter',
    'lockstep run --kernel-spec my-kernels.json --kernels my-5.3 --out /tmp/r',
  ],
  async run(v) {
    const kernels = pick(await loadKernels(v), list(v.kernels), 'kernel', 'kernels');
    const scenarios = pick(await loadScenarios(v), list(v.scenarios), 'scenario', 'scenarios');
    const accel = v.accel as string | undefined;
    if (accel !== undefined && accel !== 'kvm' && accel !== 'tcg') throw new ConfigError('command line', '--accel', `${JSON.stringify(accel)} is not kvm or tcg`, 'use --accel kvm or --accel tcg, or leave it out');
    const outDir = resolve(v.out === 'results/runs/<UTC timestamp>' ? join('results', 'runs', new Date().toISOString().replace(/[:.]/g, '-')) : String(v.out));
    const ac = new AbortController();
    const onSignal = (sig: NodeJS.Signals): void => {
      if (ac.signal.aborted) return;
      console.error(`lockstep: ${sig}: stopping VMs and the reproducer, keeping finished cells in ${outDir}`);
      ac.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const quiet = Boolean(v.quiet);
    const specFlags = ((v['kernel-spec'] as string[] | undefined) ?? []).map((f) => ` --kernel-spec ${resolve(f)}`).join('');
    const scenFlags = ((v['scenario-file'] as string[] | undefined) ?? []).map((f) => ` --scenario-file ${resolve(f)}`).join('');
    if (!quiet) console.error(`lockstep: ${kernels.length} kernels x ${scenarios.length} scenarios -> ${outDir}`);
    try {
      const r = await runMatrix({
        kernels, scenarios, outDir,
        cacheDir: v.cache ? resolve(String(v.cache)) : defaultCacheDir(),
        jobs: int(v.jobs, 'jobs', 1, 64),
        accel: accel as 'kvm' | 'tcg' | undefined,
        timeoutMs: v.timeout !== undefined ? int(v.timeout, 'timeout', 5, 86_400) * 1000 : undefined,
        opTimeoutS: int(v['op-timeout'], 'op-timeout', 1, 3600),
        signal: ac.signal,
        log: (l) => { if (!quiet) console.error(l); },
        rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}${specFlags}${scenFlags} --out ${outDir}-rerun`,
      });
      const bad = r.cells.filter((c) => !['MATCH', 'SKIP', 'UNCHECKED'].includes(c.verdict));
      console.log(renderTable(r));
      console.error(`lockstep: wrote ${join(outDir, 'results.json')} and table.md; ${r.cells.length - bad.length}/${r.cells.length} cells MATCH/SKIP/UNCHECKED`);
      if (ac.signal.aborted) return 130;
      return bad.length ? 1 : 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

const simulateCmd: Command = {
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

const kernelsList: Command = {
  name: 'kernels list',
  summary: 'list the kernel specs: kind, version, expected logic, cache state',
  description: 'Shows every built-in kernel spec (kernels/*.json) and those from --kernel-spec files.',
  options: { ...kernelOptions, json: { type: 'boolean', help: 'print JSON' }, cache: { type: 'string', arg: 'DIR', help: 'cache dir to report state from' } },
  async run(v) {
    const specs = await loadKernels(v);
    const rows = specs.map((s) => {
      const version = s.kind === 'host' ? osRelease() : ('version' in s && s.version) || '?';
      const exp = resolveExpect(s, String(version));
      return { id: s.id, kind: s.kind, version, expect: exp.logic ? logicLabel(exp.logic) : 'unknown', why: exp.reason, description: s.description ?? '' };
    });
    if (v.json) console.log(JSON.stringify(rows, null, 1));
    else {
      console.log(`${'id'.padEnd(22)} ${'kind'.padEnd(13)} ${'version'.padEnd(18)} expected   description`);
      for (const r of rows) console.log(`${r.id.padEnd(22)} ${r.kind.padEnd(13)} ${String(r.version).padEnd(18)} ${r.expect.padEnd(10)} ${r.description}`);
    }
    return 0;
  },
};


const kernelsFetch: Command = {
  name: 'kernels fetch',
  args: 'ID..',
  summary: 'fetch (or verify in the cache) kernel artifacts without running anything',
  description: 'Downloads Debian kernel packages with apt-get download, extracts vmlinuz, checks hashes.',
  options: { ...kernelOptions, cache: { type: 'string', arg: 'DIR', help: 'cache dir' } },
  async run(v, pos) {
    const specs = pick(await loadKernels(v), pos.length ? pos : undefined, 'kernel', 'ID');
    for (const s of specs) {
      const a = await ensureKernel(s, { cacheDir: v.cache ? resolve(String(v.cache)) : defaultCacheDir(), log: (m) => console.error(`[${s.id}] ${m}`) });
      console.log(`${s.id}: ${a.vmlinuz ?? '(host kernel)'} ${a.cached ? 'cached' : 'fetched'} ${a.sha256 ?? ''}`);
    }
    return 0;
  },
};

const scenariosList: Command = {
  name: 'scenarios list',
  summary: 'list scenarios: CPUs, ops, and description',
  description: 'Built-in scenarios live in harness/scenarios/*.json; add your own with --scenario-file.',
  options: { ...scenarioOptions },
  async run(v) {
    for (const s of await loadScenarios(v)) console.log(`${s.id.padEnd(22)} ${String(s.cpus).padStart(3)} CPUs ${String(s.ops.length).padStart(5)} ops`);
    return 0;
  },
};

const table: Command = {
  name: 'table',
  args: 'DIR|results.json',
  summary: 'print the markdown table of a finished run',
  description: 'Re-renders table.md from results.json (validating its schema).',
  options: {},
  async run(_v, pos) {
    if (pos.length !== 1) throw new ConfigError('command line', 'DIR', 'expected one results directory or results.json', 'e.g. `lockstep table results/latest`');
    const p = pos[0].endsWith('.json') ? pos[0] : join(pos[0], 'results.json');
    console.log(renderTable(await readResults(resolve(p))));
    return 0;
  },
};

const host: Command = {
  name: 'host',
  summary: 'what this machine offers: host kernel, CPUs, KVM, QEMU, busybox, reproducer',
  description: 'A quick check of the environment lockstep needs; exit 2 naming what is missing.',
  options: {},
  async run() {
    const { kvmUsable, qemuVersion } = await import('../runner/qemu.ts');
    const { reproducerBinary, BUSYBOX } = await import('../image/initramfs.ts');
    console.log(`host kernel ${osRelease()}, ${hostOnlineCpus()} online CPUs`);
    const k = await kvmUsable();
    console.log(`accelerator: ${k.ok ? 'kvm' : 'tcg'} (${k.why})`);
    console.log(`qemu: ${await qemuVersion()}`);
    await reproducerBinary();
    console.log(`reproducer: ok; busybox: ${existsSync(BUSYBOX) ? BUSYBOX : 'MISSING (apt-get install busybox-static)'}`);
    return 0;
  },
};

export const COMMANDS: Command[] = [run, simulateCmd, kernelsList, kernelsFetch, scenariosList, table, host];
