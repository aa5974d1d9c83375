import { existsSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../../util/errors.ts';
import { checkInputPath } from '../../util/input.ts';
import { artifactBaseUrl, artifactUrlOption, type Command, DEFAULT_JOBS, EXIT, FORCE_OPTION, int, kernelOptions, list, pick, scenarioOptions } from '../command.ts';
import type { KernelSpec } from '../../kernels/spec.ts';
import type { CompiledScenario } from '../../scenario/ops.ts';

export const command: Command = {
  name: 'run',
  summary: 'run the matrix (kernels x scenarios) and diff against the model',
  description: `Fetches each kernel (cached under the cache dir), boots one VM per kernel and CPU count
(the host kernel runs natively, as root), runs every scenario under a fresh uid,
and writes OUT/results.json (schema lockstep/results@2; paths in it relative to OUT), OUT/table.md,
OUT/logs/<kernel>@<cpus>cpu/{console.log,results.jsonl,script.ops}, and at the end OUT/report.html,
junit.xml, results.tap and results.ktap. results.json is rewritten atomically after every
boot, so an interrupted run keeps what it measured.
Without --kernels/--scenarios it runs the embedded default matrix.
An OUT that already holds a run with cells this run would not measure again (other kernels
or scenarios, or any cell when --shard is given) is refused before any boot (exit 2:
nothing measured is lost) unless --force; re-running the same matrix into it replaces its cells.
Exit 0 when every cell is MATCH, SKIP or UNCHECKED; 1 when a cell MISMATCHed or PANICked (the
kernel's behaviour); 3 when the only failures are infrastructure (TIMEOUT, BOOT_FAIL, BUILD_FAIL,
ERROR, after --attempts boots); 2 bad input. On SIGINT/SIGTERM every
VM is killed and the host reproducer stopped (it restores the sysctls), results.json keeps
the finished cells with complete: false, and the exit is 130 (SIGINT) or 143 (SIGTERM).
--attempts 0 is a dry run: every input is read and checked and the output directory checked
as above (not created), the plan is printed, nothing is booted, built or downloaded: exit 0.`,
  options: {
    kernels: { type: 'string', arg: 'ID,..', help: 'kernel ids to run (default: all built-in + --kernel-spec ones); `lockstep kernels list`' },
    scenarios: { type: 'string', arg: 'ID,..', help: 'scenario ids (default: all); `lockstep scenarios list`' },
    ...kernelOptions,
    kernel: { type: 'string', multiple: true, arg: 'PATH|URL|debian:PKG[=VER][@SUITE]', help: 'run this kernel without a spec file: a bzImage, a built kernel tree (its directory), https://.../bzImage#sha256=HEX&version=X.Y.Z, or a Debian linux-image-* / linux-binary-* package (debian:PKG@SUITE: any suite the mirror serves)' },
    append: { type: 'string', arg: 'PARAMS', help: 'extra guest kernel command line words, e.g. "loglevel=7 nokaslr"' },
    ...scenarioOptions,
    out: { type: 'string', arg: 'DIR', help: 'output directory', default: 'results/runs/<UTC timestamp>' },
    jobs: { type: 'string', arg: 'N', help: 'boots at once; each TCG guest runs on one host thread (single-threaded TCG), so one per core', default: DEFAULT_JOBS },
    accel: { type: 'string', arg: 'kvm|tcg', help: 'force an accelerator (default: KVM if a probe VM starts, else TCG)' },
    'no-snapshot': { type: 'boolean', help: 'boot every QEMU group; by default a group restores its kernel\'s saved guest (booted once to the reproducer\'s ready point, kept in the cache beside the kernel), which is ~10-25x faster than a boot under TCG' },
    runtime: { type: 'string', arg: 'qemu|virtme', help: 'how VM kernels boot: lockstep\'s own QEMU boot (default, or each spec\'s "runtime"), or virtme-ng (vng) for every VM kernel' },
    timeout: { type: 'string', arg: 'SECONDS', help: 'hard limit per boot (default: scaled by CPUs and ops)' },
    'op-timeout': { type: 'string', arg: 'SECONDS', help: 'limit per op inside the guest', default: '60' },
    cache: { type: 'string', arg: 'DIR', help: 'kernel and image cache (default: $LOCKSTEP_CACHE or ~/.cache/lockstep)' },
    quiet: { type: 'boolean', help: 'no progress lines' },
    shard: { type: 'string', arg: 'I/N', help: 'run only slice I of N (whole boots: kernel x CPU count); join with `lockstep merge`' },
    'splat-policy': { type: 'string', arg: 'FILE', help: 'which kernel splats (WARN, lockdep, KASAN, ...) fail a cell, per kernel id (default: the repo\'s policy/splats.json)' },
    cpus: { type: 'string', arg: 'N,..', help: 'vCPU counts VM groups run "cpus": "any" scenarios at, one boot per count (default 2); host rows use the host\'s online count; pinned scenarios keep theirs' },
    attempts: { type: 'string', arg: 'N', help: 'boots per group at most: a TIMEOUT, BOOT_FAIL or ERROR cell is run again in a fresh boot; a cell that passed only on a retry is marked flaky. 0: check every input and the output directory, print the plan, boot nothing (exit 0)', default: '2' },
    ...artifactUrlOption,
    ...FORCE_OPTION,
  },
  examples: [
    'lockstep run                                   # the default matrix',
    'lockstep run --kernels debian-6.1.190 --scenarios remmap,shared-counter',
    'lockstep run --kernel-spec my-kernels.json --kernels my-5.3 --out /tmp/r',
    'lockstep run --kernel debian:linux-image-6.1.0-54-cloud-amd64-unsigned --scenarios remmap --append loglevel=7',
    'lockstep run --kernel-spec my-kernels.json --out /tmp/r --attempts 0   # check everything, print the plan, boot nothing',
  ],
  async run(v) {
    const { exitForVerdicts, loadKernels, loadScenarios } = await import('../common.ts');
    const { checkUniqueIds } = await import('../../kernels/spec.ts');
    const { resolveKernelArg } = await import('../kernel-arg.ts');
    const { extraCmdlineFromEnv } = await import('../../runner/qemu.ts');
    const { parseShard } = await import('../../matrix/shard.ts');
    const { checkOutputDir, ensureWritableDir, guardMeasured, RESULT_FILES } = await import('../../results/write.ts');
    // --kernel: these kernels (plus any --kernels picks); without it, the spec-file kernels as before.
    const argKernels = ((v.kernel as string[] | undefined) ?? []).map(resolveKernelArg);
    const all = checkUniqueIds([...(await loadKernels(v)), ...argKernels]);
    const kernels = argKernels.length && !v.kernels ? argKernels : pick(all, list(v.kernels), 'kernel', 'kernels');
    if (v.append !== undefined) {
      // the QEMU runtime reads (and checks) $LOCKSTEP_EXTRA_CMDLINE once, before any boot
      process.env.LOCKSTEP_EXTRA_CMDLINE = [process.env.LOCKSTEP_EXTRA_CMDLINE, String(v.append)].filter((x) => x && x.trim()).join(' ');
      try { extraCmdlineFromEnv(); } catch {
        throw new ConfigError('command line', '--append', `${JSON.stringify(v.append)} is not plain kernel parameters (key or key=value of [A-Za-z0-9_.,:/+-], at most 32)`, 'give space-separated words like --append "loglevel=7 nokaslr"');
      }
    }
    // a bad file in a --scenario-file directory: reported now, the rest runs, exit 2 at the end (#16 item 7)
    const badFiles: ConfigError[] = [];
    const allScenarios = await loadScenarios(v, badFiles);
    for (const e of badFiles) console.error(`lockstep run: ${e.message}`);
    if (badFiles.length > 0 && allScenarios.length === 0) throw badFiles[0]!;
    const scenarios = pick(allScenarios, list(v.scenarios), 'scenario', 'scenarios');
    const accel = v.accel as string | undefined;
    const shard = v.shard !== undefined ? parseShard(String(v.shard)) : undefined;
    const runtime = v.runtime as string | undefined;
    if (runtime !== undefined && runtime !== 'qemu' && runtime !== 'virtme') throw new ConfigError('command line', '--runtime', `${JSON.stringify(runtime)} is not qemu or virtme`, 'use --runtime virtme (boot through vng) or --runtime qemu, or leave it out');
    if (accel !== undefined && accel !== 'kvm' && accel !== 'tcg') throw new ConfigError('command line', '--accel', `${JSON.stringify(accel)} is not kvm or tcg`, 'use --accel kvm or --accel tcg, or leave it out');
    const outDir = resolve(v.out === 'results/runs/<UTC timestamp>' ? join('results', 'runs', new Date().toISOString().replace(/[:.]/g, '-')) : String(v.out));
    // Flags are checked before anything is printed, and the header waits for the
    // first progress line, so bad input or a missing tool gives exactly one line.
    const { jobs, timeoutMs, opTimeoutS, splatPolicy, attempts, anyCpus, baseUrl } = await runFlags(v);
    const planned = v.shard !== undefined ? [] : kernels.flatMap((k) => scenarios.map((s) => ({ kernel: k.id, scenario: s.id })));
    if (attempts === 0) return printPlan({ kernels, scenarios, outDir, shard: v.shard as string | undefined, anyCpus, planned, force: Boolean(v.force) });
    // the output directory: writable, and never a run with cells this run will not measure again (unless
    // --force), checked before any boot; re-running the same matrix (or a larger one) into it replaces its cells
    await ensureWritableDir(outDir);
    await checkOutputDir(outDir, RESULT_FILES);
    await guardMeasured(outDir, { cells: planned }, Boolean(v.force));
    const ac = new AbortController();
    // Exit 130 after SIGINT, 143 (128 + 15) after SIGTERM, once every child is gone and results.json is written.
    let caught: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (ac.signal.aborted) {
        // a second signal: do not wait for the cleanup (VMs were SIGKILLed at the first)
        console.error(`lockstep: ${sig} again: exiting now`);
        process.exit(sig === 'SIGTERM' ? 143 : 130);
      }
      caught = sig;
      console.error(`lockstep: ${sig}: stopping VMs and the reproducer, keeping finished cells in ${outDir}`);
      ac.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const quiet = Boolean(v.quiet);
    // the re-run command of each cell, quoted for a POSIX shell (shell-quote): a path or --append value is one word, never code
    const flags = (flag: string, xs: readonly string[]): string[] => xs.flatMap((x) => [flag, x]);
    const rerunFlags = [
      ...flags('--kernel-spec', ((v['kernel-spec'] as string[] | undefined) ?? []).map((f) => resolve(f))),
      ...flags('--kernel', (v.kernel as string[] | undefined) ?? []),
      ...(v.append !== undefined ? ['--append', String(v.append)] : []),
      ...flags('--scenario-file', ((v['scenario-file'] as string[] | undefined) ?? []).map((f) => resolve(f))),
    ];
    let header = quiet ? '' : `lockstep: ${kernels.length} kernels x ${scenarios.length} scenarios -> ${outDir}`;
    const progress = (l: string): void => {
      if (quiet) return;
      if (header) { console.error(header); header = ''; }
      console.error(l);
    };
    try {
      const { runMatrix } = await import('../../matrix/run.ts');
      const { defaultCacheDir } = await import('../../kernels/artifact.ts');
      const { shellQuote } = await import('../../util/quote.ts');
      const { renderTable } = await import('../../results/table.ts');
      const { writeReports, writeStepSummary } = await import('../../report/files.ts');
      const { renderSummary } = await import('../../report/summary.ts');
      const r = await runMatrix({
        kernels, scenarios, outDir,
        cacheDir: v.cache ? resolve(String(v.cache)) : defaultCacheDir(),
        jobs,
        accel: accel as 'kvm' | 'tcg' | undefined,
        timeoutMs,
        opTimeoutS,
        signal: ac.signal,
        log: progress,
        shard,
        splatPolicy,
        attempts, anyCpus,
        snapshots: v['no-snapshot'] !== true,
        runtime: runtime === 'virtme' ? 'virtme' : undefined,
        rerun: (k, s) => shellQuote(['node', 'bin/lockstep.mjs', 'run', '--kernels', k, '--scenarios', s, ...rerunFlags]),
      });
      const bad = r.cells.filter((c) => !['MATCH', 'SKIP', 'UNCHECKED'].includes(c.verdict));
      console.log(renderTable(r));
      const w = await writeReports(r, outDir, { artifactBaseUrl: baseUrl });
      await writeStepSummary(renderSummary(r, w.logic));
      console.error(`lockstep: wrote ${join(outDir, 'results.json')}, table.md, report.html, junit.xml, results.tap, results.ktap; ${r.cells.length - bad.length}/${r.cells.length} cells MATCH/SKIP/UNCHECKED`);
      if (ac.signal.aborted) return caught === 'SIGTERM' ? 143 : 130;
      if (badFiles.length > 0) {
        console.error(`lockstep run: ${badFiles.length} scenario file${badFiles.length === 1 ? '' : 's'} could not be loaded (above); the others ran: exit 2`);
        return EXIT.badInput;
      }
      return exitForVerdicts(r.cells.map((c) => c.verdict));
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

/** The numeric and file flags of `run`, checked (ConfigError naming the flag); --attempts 0 is the plan mode. */
async function runFlags(v: Record<string, unknown>) {
  const { DEFAULT_SPLAT_POLICY, loadSplatPolicy } = await import('../../policy/load.ts');
  const jobs = int(v.jobs, 'jobs', 1, 64);
  const timeoutMs = v.timeout !== undefined ? int(v.timeout, 'timeout', 5, 86_400) * 1000 : undefined;
  const opTimeoutS = int(v['op-timeout'], 'op-timeout', 1, 3600);
  const splatPolicy = v['splat-policy'] !== undefined
    ? await loadSplatPolicy(checkInputPath(String(v['splat-policy']), '--splat-policy', 'give a splat policy .json file, or leave the flag out for policy/splats.json', 'file', true), String(v['splat-policy']))
    : await loadSplatPolicy(DEFAULT_SPLAT_POLICY, 'policy/splats.json');
  const attempts = int(v.attempts, 'attempts', 0, 10);
  const anyCpus = list(v.cpus)?.map((n) => int(n, 'cpus', 1, 256));
  if (v.cpus !== undefined && !anyCpus?.length) throw new ConfigError('command line', '--cpus', 'no CPU count given', 'pass e.g. --cpus 1,2,4,8');
  return { jobs, timeoutMs, opTimeoutS, splatPolicy, attempts, anyCpus, baseUrl: artifactBaseUrl(v) };
}

/** The deepest existing directory at or above `dir` (where mkdir -p would start). */
function existingAncestor(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

/**
 * `run --attempts 0`: every input was read and checked; check the output
 * directory as a real run would (not a file or FIFO, writable, no measured
 * cells lost without --force) without creating it, print the plan on stdout
 * and boot, build or download nothing. Returns exit 0; throws ConfigError
 * where a real run would refuse.
 */
async function printPlan(p: { kernels: readonly KernelSpec[]; scenarios: readonly CompiledScenario[]; outDir: string; shard?: string; anyCpus?: number[]; planned: readonly { kernel: string; scenario: string }[]; force: boolean }): Promise<number> {
  const { checkOutputDir, guardMeasured, RESULT_FILES } = await import('../../results/write.ts');
  await checkOutputDir(p.outDir, RESULT_FILES);
  const base = existingAncestor(p.outDir);
  try { await access(base, constants.W_OK | constants.X_OK); } catch (e) {
    throw new ConfigError('command line', '--out', `${p.outDir}: ${base} is not writable by this user (${(e as NodeJS.ErrnoException).code ?? 'access'})`, 'choose an output directory this user can write to');
  }
  await guardMeasured(p.outDir, { cells: p.planned }, p.force);
  const lines = [
    'lockstep run --attempts 0: the plan; nothing is booted, built or downloaded',
    `kernels (${p.kernels.length}): ${p.kernels.map((k) => `${k.id} (${k.kind})`).join(', ')}`,
    `scenarios (${p.scenarios.length}): ${p.scenarios.map((s) => s.id).join(', ')}`,
    `cells: ${p.kernels.length * p.scenarios.length}${p.shard !== undefined ? `, of which this run would measure shard ${p.shard} (whole boots)` : ''}`,
    `vCPU counts for "any" scenarios: ${p.anyCpus?.join(',') ?? '2 (default)'}`,
    `output: ${p.outDir} (${existsSync(join(p.outDir, 'results.json')) ? 'its results.json would be replaced' : base === p.outDir ? 'exists, no results.json yet' : 'would be created'})`,
  ];
  for (const l of lines) console.log(l);
  return EXIT.ok;
}
