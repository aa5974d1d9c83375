import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { KernelClassification } from '../../diff/evidence.ts';
import type { CompiledScenario } from '../../scenario/ops.ts';
import type { Results } from '../../results/schema.ts';
import { ConfigError } from '../../util/errors.ts';
import { type Command, DEFAULT_JOBS, int, kernelOptions, list, pick, scenarioOptions } from '../command.ts';

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
    const { loadKernels, loadScenarios } = await import('../common.ts');
    const { classifyKernel } = await import('../../diff/evidence.ts');
    const { classificationText } = await import('../classify-view.ts');
    const wanted = list(v.kernel);
    let r: Results;
    const known = new Map<string, CompiledScenario>();
    if (pos.length === 1) {
      const p = resolve(pos[0]!);
      const file = existsSync(p) && statSync(p).isDirectory() ? join(p, 'results.json') : p;
      const { readResults } = await import('../../results/write.ts');
      const { scenarioHash } = await import('../../scenario/load.ts');
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
      const { runMatrix } = await import('../../matrix/run.ts');
      const { defaultCacheDir } = await import('../../kernels/artifact.ts');
      const { shellQuote } = await import('../../util/quote.ts');
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
