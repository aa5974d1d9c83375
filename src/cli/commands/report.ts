import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, MissingDependencyError } from '../../util/errors.ts';
import { readCompat } from './kernels-compat.ts';
import { artifactBaseUrl, artifactUrlOption, type Command, FORCE_OPTION, resultsPath } from '../command.ts';

/** A PNG of the page as headless Chromium renders it (isolated profile, no network services). */
async function screenshot(html: string, png: string): Promise<void> {
  const profile = await mkdtemp(join(tmpdir(), 'lockstep-chromium-'));
  try {
    await promisify(execFile)(process.env.LOCKSTEP_CHROMIUM ?? 'chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--hide-scrollbars', '--window-size=1700,1900',
      `--screenshot=${png}`, `file://${html}`], { timeout: 120_000 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingDependencyError('chromium', 'apt-get install chromium (or set LOCKSTEP_CHROMIUM)');
    throw e;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

export const command: Command = {
  name: 'report',
  args: 'DIR|results.json',
  summary: 'write table.md, report.html, junit.xml, results.tap and results.ktap for a run',
  description: `Reads results.json (validating its schema) and writes, next to it or into --out:
  table.md     the markdown compatibility table
  report.html  a self-contained page (inline CSS and SVG, no network): kernels x
               scenarios verdicts, classified logic per kernel, first EPERM points,
               one VmPin-against-call-number plot per kernel, per-cell provenance
  junit.xml    one testcase per cell (failure: MISMATCH/PANIC; error: ERROR/TIMEOUT/BOOT_FAIL/BUILD_FAIL; skipped: SKIP)
  results.tap  the same as a TAP 14 stream
  results.ktap the same as KTAP version 1, nested kernel -> scenario (kselftest style)
With --out elsewhere, results.json is copied there too (publishing). When
$GITHUB_STEP_SUMMARY is set, a markdown summary is appended to it. An --out
directory holding another results.json with cells this run lacks is refused
(exit 2) unless --force.`,
  options: {
    out: { type: 'string', arg: 'DIR', help: 'where to write (default: the results directory)' },
    'plot-scenario': { type: 'string', arg: 'ID', help: 'scenario to plot (default: sysctl-lowered, incident, ... whichever the run has)' },
    tap: { type: 'boolean', help: 'also print the TAP stream to stdout' },
    title: { type: 'string', arg: 'TEXT', help: 'page title', default: 'lockstep results' },
    screenshot: { type: 'string', arg: 'PNG', help: 'also save a PNG of report.html rendered by headless Chromium' },
    compat: { type: 'string', arg: 'FILE', help: 'render this compatibility table (e.g. results/compat.json, `lockstep kernels compat`) in report.html' },
    ...artifactUrlOption,
    ...FORCE_OPTION,
  },
  examples: ['lockstep report results/latest', 'lockstep report results/latest --out results --compat results/compat.json --screenshot results/report.png   # publish'],
  async run(v, pos) {
    if (pos.length !== 1) throw new ConfigError('command line', 'DIR', 'expected one results directory or results.json', 'e.g. `lockstep report results/latest`');
    const { checkOutputDir, checkOutputFile, guardMeasured, readResults, RESULT_FILES } = await import('../../results/write.ts');
    const { renderSummary } = await import('../../report/summary.ts');
    const { renderTap } = await import('../../report/tap.ts');
    const { writeReports, writeStepSummary } = await import('../../report/files.ts');
    const src = resultsPath(pos[0]!);
    const r = await readResults(src);
    const plot = v['plot-scenario'] as string | undefined;
    if (plot !== undefined && !r.scenarios.some((s) => s.id === plot)) {
      throw new ConfigError('command line', '--plot-scenario', `${JSON.stringify(plot)} is not in this run`, `choose from: ${r.scenarios.map((s) => s.id).join(', ')}`);
    }
    const out = v.out ? resolve(String(v.out)) : dirname(src);
    await checkOutputDir(out, RESULT_FILES);
    if (join(out, 'results.json') !== src) await guardMeasured(out, r, Boolean(v.force));
    if (v.screenshot) await checkOutputFile(resolve(String(v.screenshot)), 'command line', '--screenshot');
    const compat = v.compat ? await readCompat(resolve(String(v.compat)), '--compat', false) : undefined;
    const w = await writeReports(r, out, { plotScenario: plot, title: String(v.title), artifactBaseUrl: artifactBaseUrl(v), ...(compat ? { compat } : {}) });
    if (join(out, 'results.json') !== src) { await copyFile(src, join(out, 'results.json')); w.files.unshift(join(out, 'results.json')); }
    const summary = await writeStepSummary(renderSummary(r, w.logic));
    if (v.tap) process.stdout.write(renderTap(r));
    if (v.screenshot) { await screenshot(join(out, 'report.html'), resolve(String(v.screenshot))); w.files.push(resolve(String(v.screenshot))); }
    console.error(`lockstep report: wrote ${w.files.join(', ')}${summary ? `; step summary appended to ${summary}` : ''}`);
    return 0;
  },
};
