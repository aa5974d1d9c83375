import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { release as osRelease } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { BisectFacts } from '../../export/bugreport.ts';
import type { Logic, SimulateOptions } from '../../model/index.ts';
import type { CompiledScenario } from '../../scenario/ops.ts';
import type { BisectState } from '../../bisect/state.ts';
import { ConfigError } from '../../util/errors.ts';
import { checkInputPath, inputProblem } from '../../util/input.ts';
import { type Command, int, resultsPath } from '../command.ts';

/** Bisect facts from a saved bisect state (lockstep/bisect-state@1) and an optional bisect.log beside it. */
export async function bisectFacts(path: string): Promise<BisectFacts> {
  const { parseState, BISECT_STATE_SCHEMA } = await import('../../bisect/state.ts');
  // never a FIFO or device (reading one would block): the path, each candidate in a directory, bisect.log
  const abs = checkInputPath(path, '--bisect', 'pass the bisect state file or its directory', 'file-or-dir', true);
  let file = abs;
  if (existsSync(abs) && statSync(abs).isDirectory()) {
    const cands = readdirSync(abs).filter((f) => f.endsWith('.json')).map((f) => join(abs, f))
      .filter((f) => inputProblem(f) === null).filter((f) => { try { return JSON.parse(readFileSync(f, 'utf8')).schema === BISECT_STATE_SCHEMA; } catch { return false; } });
    if (!cands.length) throw new ConfigError(abs, '', `no bisect state (${BISECT_STATE_SCHEMA}) in this directory`, 'pass the directory or file `lockstep bisect` saved its state in (lockstep-bisect.json)');
    file = cands[0]!;
  } else if (!existsSync(abs)) throw new ConfigError('command line', '--bisect', `${abs} does not exist`, 'pass the bisect state file or its directory');
  const st: BisectState = parseState(readFileSync(file, 'utf8'), file);
  const word = (m: string | undefined): string => (m === 'old' ? 'good' : m === 'new' ? 'bad' : 'skip');
  const log = Object.entries(st.steps).filter(([, s]) => s.mark).map(([k, s]) =>
    st.mode === 'git' ? `git bisect ${word(s.mark)} ${k}   # ${s.label}: ${s.why ?? ''}` : `# ${word(s.mark)}: ${k} (${s.label}): ${s.why ?? ''}`);
  const extra = join(dirname(file), 'bisect.log');
  if (inputProblem(extra) === null) log.push(`# ${extra}:`, ...readFileSync(extra, 'utf8').split('\n').filter(Boolean));
  let firstBad: string | null = null;
  let lastGood: string | null = null;
  const res = st.result ?? {};
  const fromResult = (keys: string[]): string | null => { for (const k of keys) if (typeof res[k] === 'string') return res[k] as string; return null; };
  firstBad = fromResult(['first_bad', 'firstBad', 'first_new', 'commit']);
  lastGood = fromResult(['last_good', 'lastGood', 'last_old']);
  if (st.mode === 'list' && firstBad === null) {
    const marks = st.positions.map((p) => st.steps[p]?.mark);
    const fb = marks.findIndex((m) => m === 'new');
    if (fb >= 0) {
      firstBad = st.positions[fb]!;
      const lg = marks.slice(0, fb).lastIndexOf('old');
      lastGood = lg >= 0 ? st.positions[lg]! : null;
    }
  }
  return { kind: st.mode === 'git' ? 'commit' : 'release', firstBad, lastGood, log, source: file };
}

export const command: Command = {
  name: 'bugreport',
  args: 'KERNEL:SCENARIO [DIR]',
  summary: 'a syzbot-style report of one cell plus a standalone C reproducer',
  description: `Writes OUT/report.txt, laid out like a syzbot report (title; kernel release, source,
config, compiler; console output; the measured vs expected ops; with --bisect the
first bad commit or release and the bisect log), and OUT/repro.c, a single-file C
program generated from the scenario (gcc -static repro.c) for every scenario but
fault injection. Run as root on a test machine it checks the machine, sets the
scenario's sysctls (restored on exit), forks its worker and helpers as a fresh
uid, runs the same ops, prints each measured value beside the expected one (all
logics' predictions are in its comments) and exits 1 with a BUG line where the
kernel differs (its output is KTAP, one test per op; exit 4 = skip, as a
kselftest). The expected logic is --against, else the kernel's own when the cell
MISMATCHed, else V3 (the intended rule: 003461559ef7) with the kernel's counter,
so a cell that matches a buggy logic (V0, or V4's re-mmap charge) is reported
against the rule it breaks. DIR is a run directory (default results/latest).`,
  options: {
    against: { type: 'string', arg: 'LOGIC', help: 'the logic the report and repro.c expect (V0..V4[/shared|/perf])' },
    bisect: { type: 'string', arg: 'PATH', help: 'a saved bisect (lockstep-bisect.json or its directory; a bisect.log beside it is included)' },
    cpus: { type: 'string', arg: 'N', help: 'generate repro.c for N online CPUs (default: the scenario\'s)' },
    out: { type: 'string', arg: 'DIR', help: 'where to write (default: DIR/bugreport-KERNEL-SCENARIO)' },
    'artifact-base-url': { type: 'string', arg: 'URL', help: 'https URL the run directory is published at: "console output:" is the cell\'s console log under it' },
    'reported-by': { type: 'string', arg: 'NAME <ADDR>', help: 'add a Reported-by: tag for the fix commit' },
  },
  examples: ['lockstep bugreport host:remmap results/latest', 'lockstep bugreport pre-fix:incident --bisect /srv/linux/.git/lockstep-bisect.json'],
  async run(v, pos) {
    const m = /^([^:]+):(.+)$/.exec(pos[0] ?? '');
    if (!m || pos.length > 2) throw new ConfigError('command line', 'KERNEL:SCENARIO', `expected KERNEL:SCENARIO [DIR], got ${JSON.stringify(pos.join(' '))}`, 'e.g. `lockstep bugreport host:remmap results/latest`');
    const [, kernel, scenario] = m as unknown as [string, string, string];
    const { diffCell } = await import('../../diff/index.ts');
    const { artifactUrl, httpsBase } = await import('../../export/artifact-url.ts');
    const { bugTitle, compilerFromBanner, gitSource, renderBugReport } = await import('../../export/bugreport.ts');
    const { generateCReproducer } = await import('../../export/creproducer.ts');
    const { provenance } = await import('../../export/provenance.ts');
    const { logicLabel, parseLogic, simulate, simOptionsForVersion } = await import('../../model/index.ts');
    const { scenarioDefs } = await import('../../report/analysis.ts');
    const { builtinDefsByHash } = await import('../../report/files.ts');
    const { checkOutputDir, readResults, writeAtomic } = await import('../../results/write.ts');
    const src = resultsPath(pos[1] ?? 'results/latest');
    const r = await readResults(src);
    const c = r.cells.find((x) => x.kernel === kernel && x.scenario === scenario);
    if (!c) throw new ConfigError(src, 'cells', `no cell ${kernel}:${scenario}`, `choose from: ${r.cells.slice(0, 12).map((x) => `${x.kernel}:${x.scenario}`).join(', ')}${r.cells.length > 12 ? ', ...' : ''}`);
    // the cell's own def (an "any" scenario has one per CPU count it ran at), else the id's
    const def = r.scenarios.find((s) => s.hash === c.scenario_hash)?.def ?? scenarioDefs(r, builtinDefsByHash()).get(scenario);
    if (!def) throw new ConfigError(src, 'scenarios', `the definition of scenario ${scenario} is not in this run`, 're-run the cell with this lockstep (results.json stores the scenario)');
    if (!c.measured.length) throw new ConfigError(src, `cells[${kernel}:${scenario}]`, `the cell is ${c.verdict} and has no measurements`, 'report a cell that ran (MATCH, MISMATCH or UNCHECKED)');
    const p = provenance(r, c);
    const opts: SimulateOptions = { ...(p.kernelVersion ? simOptionsForVersion(p.kernelVersion) : {}), ...(c.calibrated ?? {}) };
    const own: Logic | null = p.expectedLogic ? await judgedLogic(p.expectedLogic, def, c.expected, opts) : null;
    const parseAgainst = (l: string): Logic => {
      try { return parseLogic(l.includes('/') ? l : `${l}/${own?.counter ?? 'shared'}`); } catch {
        throw new ConfigError('command line', '--against', `${JSON.stringify(l)} is not a logic`, 'use V0..V4, optionally /shared or /perf');
      }
    };
    let ref: Logic;
    let why: string;
    if (v.against !== undefined) { ref = parseAgainst(String(v.against)); why = 'given with --against'; }
    else if (own && c.verdict === 'MISMATCH') { ref = own; why = `the logic ${r.kernels.find((k) => k.id === kernel)?.expect_reason ?? 'the kernel version implies'}`; }
    else { ref = { accounting: 'V3', counter: own?.counter ?? 'shared' }; why = 'the intended rule (003461559ef7 "perf/core: Fix mlock accounting in perf_mmap()", v5.6): charge the user up to its allowance, only the rest to the process, and give back exactly what was charged'; }
    const refExpected = simulate(def, ref, opts);
    const ownExpected = own && logicLabel(own) !== logicLabel(ref) ? { logic: own, expected: simulate(def, own, opts) } : null;
    const divergence = diffCell(def.ops, c.measured, refExpected).firstDivergence ?? null;
    const cpus = v.cpus !== undefined ? int(v.cpus, 'cpus', 1, 8192) : def.cpus;
    const cdef = { ...def, cpus };
    const others = [own, ...(['V0', 'V1', 'V1a', 'V1b', 'V2', 'V3', 'V4'] as const).map((a): Logic => ({ accounting: a, counter: ref.counter }))]
      .filter((l): l is Logic => l !== null && logicLabel(l) !== logicLabel(ref))
      .filter((l, k, all) => all.findIndex((x) => logicLabel(x) === logicLabel(l)) === k);
    const base = v['artifact-base-url'] === undefined ? undefined : httpsBase(String(v['artifact-base-url']));
    const reportedBy = v['reported-by'] === undefined ? null : reporter(String(v['reported-by']));
    const consoleFile = c.console_log ? resolve(dirname(src), c.console_log) : null;
    const consoleText = consoleFile && existsSync(consoleFile) ? readFileSync(consoleFile, 'utf8') : null;
    // the kernel's own banner: from its boot console, else /proc/version when it is the running kernel
    const compiler = (consoleText ? compilerFromBanner(consoleText) : null)
      ?? (p.release && p.release === osRelease() && existsSync('/proc/version') ? compilerFromBanner(readFileSync('/proc/version', 'utf8')) : null);
    // "console output:" only where it points somewhere real: under the published URL, or a copy beside report.txt
    const consoleLog = base && c.console_log ? artifactUrl(base, c.console_log) ?? null : consoleText !== null ? 'console.log (beside this report)' : null;
    const bisect = v.bisect !== undefined ? await bisectFacts(String(v.bisect)) : null;
    const input = {
      kernel, scenario: def, verdict: c.verdict, release: p.release, version: p.kernelVersion, source: p.kernelSource, configSha256: p.configSha256,
      compiler, consoleLog, git: gitSource(p.kernelSource), reportedBy, accel: c.accel, cpus: c.cpus, measured: c.measured,
      reference: { logic: ref, expected: refExpected, why }, own: ownExpected, divergence, reproFile: 'repro.c', rerun: c.rerun, bisect,
    };
    const report = renderBugReport(input);
    const cfile = generateCReproducer({
      scenario: cdef, reference: { logic: ref, expected: simulate(cdef, ref, opts) },
      others: others.map((l) => ({ logic: l, expected: simulate(cdef, l, opts) })),
      title: bugTitle(input),
      notes: ['', `Measured by lockstep on ${p.release ?? kernel} (${c.verdict} against ${own ? logicLabel(own) : 'no expected logic'}):`,
        divergence ? `first divergence from ${logicLabel(ref)}: op ${divergence.i} (${divergence.op}) ${divergence.field} measured ${JSON.stringify(divergence.measured)}, expected ${JSON.stringify(divergence.expected)}` : `no divergence from ${logicLabel(ref)}`],
    });
    const out = v.out ? resolve(String(v.out)) : join(dirname(src), `bugreport-${kernel}-${scenario}`);
    await checkOutputDir(out, ['report.txt', 'repro.c', 'console.log']);
    await writeAtomic(join(out, 'report.txt'), report);
    await writeAtomic(join(out, 'repro.c'), cfile);
    if (consoleLog?.startsWith('console.log') && consoleFile) await copyFile(consoleFile, join(out, 'console.log'));
    process.stdout.write(report);
    console.error(`lockstep bugreport: wrote ${join(out, 'report.txt')} and ${join(out, 'repro.c')}`);
    return 0;
  },
};

/** --reported-by: "Name <local@domain>" on one line, as the kernel's Reported-by: tags are (Documentation/process/submitting-patches.rst). */
function reporter(v: string): string {
  if (!/^[^<>\n\r]*\S <[^<>@\s]+@[^<>@\s]+>$/.test(v)) throw new ConfigError('command line', '--reported-by', `${JSON.stringify(v)} is not "Name <address>"`, 'e.g. --reported-by "Jane Doe <jane@example.org>"');
  return v;
}

/**
 * The concrete logic a cell was judged by: its expected label, or for an open
 * counter ("V4/unknown", src/kernels/expect.ts) the candidate whose
 * predictions are the cell's stored expected ops (the one the measurement
 * fitted), else the first (shared). Throws RangeError on a label that is
 * neither.
 */
async function judgedLogic(label: string, def: CompiledScenario, expected: readonly unknown[], opts: SimulateOptions): Promise<Logic> {
  const { candidateLogics, parseLogic, simulate } = await import('../../model/index.ts');
  const m = /^(.+)\/unknown$/.exec(label);
  if (!m) return parseLogic(label);
  const all = candidateLogics({ accounting: parseLogic(`${m[1]}/shared`).accounting, counter: 'unknown' });
  const same = JSON.stringify(expected);
  return all.find((l) => JSON.stringify(simulate(def, l, opts)) === same) ?? all[0]!;
}

