// `lockstep kernels news`: every cloud kernel the Debian mirror serves across
// the suites that answer, which of them no published run measured, and the
// expectation each would get. The suites come from lockstep's own apt
// lists (src/kernels/obtain/apt-suite.ts); the pure part is src/kernels/news.ts.

import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ARCH_FACTS } from '../../kernels/arch.ts';
import type { DebRow } from '../../kernels/obtain/deb-kernels.ts';
import { readCompat } from './kernels-compat.ts';
import { ConfigError } from '../../util/errors.ts';
import { checkInputPath, inputProblem } from '../../util/input.ts';
import { type Command, list } from '../command.ts';

/** Every results.json under `dir` (the published runs), parsed; unreadable ones are skipped. */
async function publishedResults(dir: string): Promise<unknown[]> {
  const names = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  const out: unknown[] = [];
  for (const n of names.filter((x) => x === 'results.json' || x.endsWith('/results.json')).sort()) {
    // a FIFO or device named results.json is skipped, never opened (it would block)
    if (inputProblem(join(dir, n)) !== null) continue;
    try { out.push(JSON.parse(await readFile(join(dir, n), 'utf8'))); } catch { /* not a results file */ }
  }
  return out;
}

export const command: Command = {
  name: 'kernels news',
  summary: 'list the Debian cloud kernels the mirror serves, which are new since the published runs, and what each is expected to be',
  description: 'Reads lockstep\'s own apt lists of every Debian suite that answers (or --suites), lists each unsigned cloud-amd64 kernel image '
    + 'with its suite, Debian version, upstream version and the expectation "expect": "auto" gives it, and marks the ones no results.json under '
    + '--results measured (kernels[].resolution) and its compatibility table (DIR/compat.json, `lockstep kernels compat`) lacks. With --specs FILE it also '
    + 'writes pinned kernel specs of the new ones (every one with --all) for `lockstep run --kernel-spec FILE --no-builtin-kernels`; '
    + '`lockstep kernels compat --add` then adds that run to the table. Exit 0; 2 on a suite the mirror does not serve.',
  options: {
    suites: { type: 'string', arg: 'S,..', help: 'suites to read (default: every suite the mirror answers for among bullseye..sid, experimental and their pockets)' },
    results: { type: 'string', arg: 'DIR', help: 'the published runs [default: results]' },
    // the fetcher's DEFAULT_FLAVOUR (kernels/obtain/deb-kernels.ts) is this fact; read here from kernels/arch.ts so
    // that the help loads no fetcher (test/unit/cli-startup.test.ts checks the two agree)
    flavour: { type: 'string', arg: 'F', help: `kernel flavour [default: ${ARCH_FACTS.x86_64.debianFlavour}]` },
    json: { type: 'boolean', help: 'print JSON' },
    specs: { type: 'string', arg: 'FILE', help: 'also write pinned kernel specs ("expect": "auto") of the new kernels (every listed one with --all) to FILE, for `lockstep run --kernel-spec FILE --no-builtin-kernels`' },
    all: { type: 'boolean', help: 'with --specs: every listed kernel, not only the new ones' },
    cache: { type: 'string', arg: 'DIR', help: 'cache dir (apt lists) [default: $LOCKSTEP_CACHE or ~/.cache/lockstep]' },
  },
  examples: ['lockstep kernels news', 'lockstep kernels news --suites trixie,trixie-backports --json'],
  async run(v) {
    const { defaultCacheDir } = await import('../../kernels/artifact.ts');
    const { kernelNews, measuredPackages, renderNews, specsOfNews } = await import('../../kernels/news.ts');
    const { answeringSuites, suiteSource } = await import('../../kernels/obtain/apt-suite.ts');
    const { DEFAULT_FLAVOUR, isSuiteName } = await import('../../kernels/obtain/deb-kernels.ts');
    const { kernelPackages } = await import('../../kernels/obtain/debian.ts');
    const { checkOutputFile, writeAtomic } = await import('../../results/write.ts');
    const cacheDir = v.cache ? resolve(String(v.cache)) : defaultCacheDir();
    // every flag is checked before the mirror is asked
    const resultsDir = checkInputPath(v.results ? String(v.results) : 'results', '--results', 'give the directory of the published runs (results.json files under it)', 'dir', true);
    if (v.specs) await checkOutputFile(resolve(String(v.specs)), 'command line', '--specs');
    if (v.all && !v.specs) throw new ConfigError('command line', '--all', 'only means something with --specs FILE', 'add --specs FILE, or leave --all out');
    const log = (m: string): void => { if (!v.json) console.error(m); };
    const flavour = v.flavour ? String(v.flavour) : DEFAULT_FLAVOUR;
    if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(flavour)) throw new ConfigError('command line', '--flavour', `${JSON.stringify(flavour)} is not a kernel flavour`, 'e.g. cloud-amd64');
    for (const s of list(v.suites) ?? []) if (!isSuiteName(s)) throw new ConfigError('command line', '--suites', `${JSON.stringify(s)} is not a Debian suite name`, 'e.g. trixie-backports');
    if (v.suites !== undefined && !list(v.suites)?.length) throw new ConfigError('command line', '--suites', 'no suite given', 'e.g. --suites trixie,trixie-backports, or leave the flag out');
    const suites = list(v.suites) ?? await answeringSuites({ cacheDir });
    const rows: DebRow[] = [];
    for (const s of suites) {
      const got = await kernelPackages(await suiteSource(s, { cacheDir, log }, { file: 'command line', field: '--suites' }), flavour, undefined, true);
      // a codename's lists include its -security suite: keep each row under the suite it came from, once
      rows.push(...got.filter((r) => (r.suite ?? s) === s || !suites.includes(r.suite ?? s)));
    }
    // measured: every results.json under --results, and the compatibility table's rows (DIR/compat.json)
    const measured = measuredPackages(await publishedResults(resultsDir));
    for (const r of (await readCompat(join(resultsDir, 'compat.json'), '--results', true)).rows) measured.add(`${r.package}=${r.package_version}`);
    const news = kernelNews(rows, measured, flavour);
    if (v.specs) {
      const specs = specsOfNews(v.all ? news : news.filter((r) => r.new));
      await writeAtomic(resolve(String(v.specs)), `${JSON.stringify(specs, null, 2)}\n`);
      log(`wrote ${specs.length} kernel specs to ${String(v.specs)}`);
    }
    if (v.json) console.log(JSON.stringify(news, null, 1));
    else process.stdout.write(renderNews(news, resultsDir));
    return 0;
  },
};
