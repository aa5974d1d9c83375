import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type KernelClassification, classifyKernel, refutationText } from '../../diff/evidence.ts';
import { defaultCacheDir } from '../../kernels/artifact.ts';
import { runMatrix } from '../../matrix/run.ts';
import { scenarioHash } from '../../scenario/load.ts';
import type { CompiledScenario } from '../../scenario/ops.ts';
import type { Results } from '../../results/schema.ts';
import { readResults } from '../../results/write.ts';
import { shellQuote } from '../../util/quote.ts';
import { ConfigError } from '../../util/errors.ts';
import { type Command, DEFAULT_JOBS, int, kernelOptions, list, loadKernels, loadScenarios, pick, scenarioOptions } from '../common.ts';

/**
 * How the logics the cells fit (["V4/shared", ...]) stand to the expected
 * label: none expected, consistent or NOT; for an expectation whose counter
 * the facts table leaves open ("V4/unknown"), the logic is compared and the
 * counter the cells measure is named.
 */
function agreementText(logics: readonly string[], expected: string | null): string {
  if (expected === null) return 'no expected logic (expect: unknown)';
  if (!expected.endsWith('/unknown')) return logics.includes(expected) ? `consistent with the expected ${expected}` : `NOT the expected ${expected}`;
  const logic = expected.slice(0, -'/unknown'.length);
  const counters = [...new Set(logics.filter((l) => l.startsWith(`${logic}/`)).map((l) => l.split('/')[1]))];
  if (!counters.length) return `NOT the expected ${logic} (counter open)`;
  return `consistent with the expected ${logic}; the counter, open in the facts table, measures ${counters.join(' or ')}`;
}

/** The report for one kernel, as printed. */
export function classificationText(c: KernelClassification, expected: string | null): string {
  const lines: string[] = [];
  const agree = agreementText(c.logics, expected);
  lines.push(`${c.kernel}: ${c.label}  (${c.scenarios.length} cells; ${agree})`);
  if (c.status === 'ambiguous') lines.push('  the scenarios run cannot tell these apart; add cells that separate them (remmap: V4, shared-counter: the counter, sysctl-lowered: V2, overage: V0)');
  if (c.status === 'none') lines.push('  no logic of the model explains every cell: see the evidence, and `lockstep diff` for the cells themselves');
  if (c.evidence.length) {
    lines.push('  evidence:');
    for (const r of c.evidence) lines.push(`    ${refutationText(r)}`);
  } else if (c.scenarios.length) {
    lines.push('  evidence: no cell ruled out any candidate');
  }
  for (const x of c.ignored) lines.push(`  left out ${x.scenario}: ${x.reason}`);
  return lines.join('\n');
}

export const command: Command = {
  name: 'classify',
  args: '[DIR|results.json]',
  summary: 'say which accounting logic a kernel behaves like, from its measured cells only',
  description: `Classifies each kernel (or the one given with --kernel) against all fourteen logics
(V0, V1, V1a, V1b, V2, V3, V4 x shared/perf counter): a logic survives when the
simulator's prediction matches every measured cell op by op. Prints the logic
(V1, V1a, V1b and V3 are one class, "V1|V3", where no AUX cell ran; where the
lockstep_aux PMU let AUX cells run, V1 and V1a are named alone and V1b|V3
stay one class: same split, same AUX unmap), or
"ambiguous: ..." when the cells cannot decide, with the evidence: which
scenario ruled out which candidates, on which op. Cells that did not run
(SKIP, ERROR, ...) are left out and listed. Kernels with expect: unknown
(UNCHECKED cells) are classified the same way.
With DIR it reads DIR/results.json (scenario definitions from the file, or
from the built-in/--scenario-file ones with the same hash); without, it runs
the kernel's matrix first (like \`lockstep run\`) into --out.
Exit 0 when every classified kernel fits at least one logic, 1 otherwise.`,
  options: {
    kernel: { type: 'string', arg: 'ID,..', help: 'kernel id(s) to classify (default: every kernel of the results)' },
    scenarios: { type: 'string', arg: 'ID,..', help: 'scenario ids for a fresh run (default: all)' },
    ...kernelOptions,
    ...scenarioOptions,
    out: { type: 'string', arg: 'DIR', help: 'output directory of a fresh run', default: 'results/runs/<UTC timestamp>' },
    jobs: { type: 'string', arg: 'N', help: 'boots at once in a fresh run (one per core)', default: DEFAULT_JOBS },
    cache: { type: 'string', arg: 'DIR', help: 'kernel and image cache (default: $LOCKSTEP_CACHE or ~/.cache/lockstep)' },
    json: { type: 'boolean', help: 'print the classifications as JSON' },
  },
  examples: [
    'lockstep classify --kernel debian-6.1.190 results/latest',
    'lockstep classify --kernel host --scenarios remmap,shared-counter,sysctl-lowered,overage',
  ],
  async run(v, pos) {
    if (pos.length > 1) throw new ConfigError('command line', 'DIR', 'expected at most one results directory or results.json', 'e.g. `lockstep classify --kernel host results/latest`');
    const wanted = list(v.kernel);
    let r: Results;
    const known = new Map<string, CompiledScenario>();
    if (pos.length === 1) {
      const p = resolve(pos[0]!);
      const file = existsSync(p) && statSync(p).isDirectory() ? join(p, 'results.json') : p;
      r = await readResults(file);
      // Definitions for results written without them: built-ins and --scenario-file, matched by hash.
      for (const s of await loadScenarios(v)) known.set(scenarioHash(s), s);
    } else {
      if (!wanted) throw new ConfigError('command line', '--kernel', 'a fresh run needs the kernel(s) to classify', 'pass --kernel ID (see `lockstep kernels list`), or give a results directory');
      // every flag of a fresh run is checked before anything is loaded or run
      const jobs = int(v.jobs, 'jobs', 1, 64);
      const kernels = pick(await loadKernels(v), wanted, 'kernel', 'kernel');
      const scenarios = pick(await loadScenarios(v), list(v.scenarios), 'scenario', 'scenarios');
      const outDir = resolve(v.out === 'results/runs/<UTC timestamp>' ? join('results', 'runs', new Date().toISOString().replace(/[:.]/g, '-')) : String(v.out));
      console.error(`lockstep classify: running ${kernels.length} kernel(s) x ${scenarios.length} scenarios -> ${outDir}`);
      r = await runMatrix({
        kernels, scenarios, outDir, cacheDir: v.cache ? resolve(String(v.cache)) : defaultCacheDir(), jobs,
        opTimeoutS: 60, log: (l) => console.error(l), rerun: (k, s) => shellQuote(['node', 'bin/lockstep.mjs', 'run', '--kernels', k, '--scenarios', s]),
      });
    }
    const ids = wanted ?? r.kernels.map((k) => k.id);
    const out: { c: KernelClassification; expected: string | null }[] = [];
    for (const id of ids) {
      const k = r.kernels.find((x) => x.id === id);
      if (!k) throw new ConfigError('command line', '--kernel', `no kernel ${JSON.stringify(id)} in these results`, `choose from: ${r.kernels.map((x) => x.id).join(', ')}`);
      out.push({ c: classifyKernel(r, id, known), expected: k.expected_logic });
    }
    if (v.json) console.log(JSON.stringify(out.map(({ c, expected }) => ({ ...c, expected_logic: expected })), null, 1));
    else console.log(out.map(({ c, expected }) => classificationText(c, expected)).join('\n\n'));
    return out.every(({ c }) => c.status === 'identified' || c.status === 'ambiguous') ? 0 : 1;
  },
};
