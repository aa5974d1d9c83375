// The published formats of a real run: host kernel (three specs of it: the
// right expectation, a deliberately wrong one, none) and Debian 6.1.190 in
// QEMU. report.html rendered by headless Chromium and its table read back
// from the DOM; JUnit, TAP, the step summary; `lockstep diff` on a
// deliberately changed cell; results.json validation on read.

import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser } from 'tap-parser';
import { FAILING } from '../../src/report/analysis.ts';
import { type Results, verdictClass } from '../../src/results/schema.ts';
import { SMOKE_RECIPE, smokeRun } from '../lib/smoke-run.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 600_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { env: { ...process.env, GITHUB_STEP_SUMMARY: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = ''; let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', rej);
    p.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}
const lockstep = (args: string[], env: NodeJS.ProcessEnv = {}) => sh(process.execPath, [join(ROOT, 'bin/lockstep.mjs'), ...args], env);

/** Headless Chromium, isolated profile, nothing fetched from the network. */
async function chromium(url: string, extra: string[], profile: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return sh('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, ...extra, url], {}, 120_000);
}

const dir = await mkdtemp(join(tmpdir(), 'lockstep-report-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
// The suite's shared real run (test/lib/smoke-run.ts): host.json and
// debian-6.1.190.json, and the same host kernel under a wrong expectation (a
// real MISMATCH) and under none (UNCHECKED), over shared-counter, remmap,
// sysctl-lowered and cpu-offline. Read only: every output goes under `dir`.
const shared = await smokeRun(SMOKE_RECIPE);
const out = shared.dir;
const run = { code: shared.code, stderr: shared.stderr };
const results: Results = shared.results;
const verdict = (k: string, s: string) => results.cells.find((c) => c.kernel === k && c.scenario === s)?.verdict;

t.test('the run: real cells of every kind the formats must carry', async (t) => {
  t.equal(run.code, 1, `a MISMATCH makes the run exit 1 (${run.stderr.slice(-1500)})`);
  t.equal(results.cells.length, 16, '4 kernels x 4 scenarios');
  t.equal(verdict('debian-6.1.190', 'remmap'), 'MATCH');
  t.equal(verdict('debian-6.1.190', 'cpu-offline'), 'MATCH');
  t.equal(verdict('host', 'cpu-offline'), 'SKIP');
  t.equal(verdict('host-unknown', 'remmap'), 'UNCHECKED');
  t.ok(results.cells.some((c) => c.kernel === 'host-as-v2-perf' && c.verdict === 'MISMATCH'), 'the wrong model mismatches');
  const c = results.cells.find((x) => x.kernel === 'debian-6.1.190' && x.scenario === 'remmap')!;
  t.equal(c.kernel_version, '6.1.190');
  t.match(c.kernel_source, /^debian:linux-image-6\.1\.0-54-cloud-amd64-unsigned=6\.1\.190-1$/);
  t.match(c.kernel_config_sha256, /^[0-9a-f]{64}$/);
  t.match(c.kernel_artifact_sha256, /^[0-9a-f]{64}$/);
  t.match(c.reproducer_sha256, /^[0-9a-f]{64}$/);
  t.match(c.qemu_version, /^QEMU emulator version \d/);
  t.equal(c.qemu_argv![0], 'qemu-system-x86_64');
  t.ok(c.qemu_argv!.includes('-kernel'));
  t.ok(c.accel_why && c.accel_why.length > 3, `accel why: ${c.accel_why}`);
  t.ok(typeof c.duration_ms === 'number' && c.duration_ms >= 0, `duration ${c.duration_ms} ms`);
  t.ok(Date.parse(c.started_at) >= Date.parse(results.started_at), 'cell start is its own, after the run start');
  t.match(c.rerun, /--kernels debian-6\.1\.190 --scenarios remmap/);
  t.notOk(c.console_log!.startsWith('/'), `console log path relative to the results directory: ${c.console_log}`);
  t.ok((await stat(join(out, c.console_log!))).size > 1000, 'console log exists');
  const h = results.cells.find((x) => x.kernel === 'host' && x.scenario === 'remmap')!;
  t.equal(h.qemu_version, null, 'host cells name no emulator');
  t.equal(h.kernel_artifact_sha256, null);
  t.equal(h.reproducer_sha256, c.reproducer_sha256, 'one reproducer binary');
  t.ok(results.matrix?.hash.match(/^[0-9a-f]{64}$/));
  t.ok(results.scenarios.every((s) => s.def?.id === s.id), 'scenario definitions travel with the results');
});

t.test('report.html in headless Chromium: the table read back from the DOM equals results.json', async (t) => {
  const html = await readFile(join(out, 'report.html'), 'utf8');
  // Self-contained: no scripts, no external resources of any kind.
  t.notMatch(html, /<script|<link|<img|<iframe|@import|url\(/i);
  t.notMatch(html, /\s(src|href)=/i);
  t.equal([...html.matchAll(/https?:\/\/[^"\s<]*/g)].map((m) => m[0]).filter((u) => u !== 'http://www.w3.org/2000/svg').length, 0, 'only the SVG namespace URI');

  const profile = await mkdtemp(join(tmpdir(), 'lockstep-chromium-'));
  t.teardown(() => rm(profile, { recursive: true, force: true }));
  const dom = await chromium(`file://${join(out, 'report.html')}`, ['--dump-dom'], profile);
  t.equal(dom.code, 0, dom.stderr.slice(-1000));
  t.match(dom.stdout, /<table id="verdicts">/, 'Chromium rendered the page');

  // Rows and cells as the browser parsed them.
  const table = dom.stdout.slice(dom.stdout.indexOf('<table id="verdicts">'), dom.stdout.indexOf('</table>', dom.stdout.indexOf('<table id="verdicts">')));
  const read = new Map<string, string>();
  for (const m of table.matchAll(/<td class="cell[^"]*" data-kernel="([^"]+)" data-scenario="([^"]+)" data-verdict="[^"]*"[^>]*><span class="verdict">([A-Z_]+)<\/span>/g)) {
    read.set(`${m[1]} x ${m[2]}`, m[3]!);
  }
  t.same(Object.fromEntries([...read].sort()), Object.fromEntries(results.cells.map((c) => [`${c.kernel} x ${c.scenario}`, c.verdict]).sort()),
    'every verdict in the page equals results.json');
  const rows = [...table.matchAll(/<tr data-kernel="([^"]+)">/g)].map((m) => m[1]);
  t.same(rows, results.kernels.map((k) => k.id), 'one row per kernel, in order');
  // first EPERM points shown for measured cells
  const sl = results.cells.find((c) => c.kernel === 'host-as-v2-perf' && c.verdict === 'MISMATCH')!;
  const cellHtml = new RegExp(`data-kernel="host-as-v2-perf" data-scenario="${sl.scenario}"[^]*?</td>`).exec(table)![0];
  t.match(cellHtml, sl.first_eperm_measured === sl.first_eperm_expected ? /EPERM/ : /\(exp /, 'a mismatch shows the expected EPERM point too');

  const plots = dom.stdout.slice(dom.stdout.indexOf('id="plots"'), dom.stdout.indexOf('<h2>', dom.stdout.indexOf('id="plots"')));
  const cards = [...plots.matchAll(/<div class="plot-card" data-kernel="([^"]+)" data-scenario="([^"]*)">/g)].map((m) => m[1]);
  t.same(cards, results.kernels.map((k) => k.id), 'one plot card per kernel');
  t.equal((plots.match(/<svg /g) ?? []).length, results.kernels.length, 'one <svg> plot per kernel');
  t.match(plots, /data-scenario="sysctl-lowered"/, 'default plot scenario: sysctl-lowered');
  const deb = results.cells.find((c) => c.kernel === 'debian-6.1.190' && c.scenario === 'sysctl-lowered')!;
  const debPlot = /data-kernel="debian-6\.1\.190"[^]*?<\/svg>/.exec(plots)![0];
  t.equal((debPlot.match(/<circle /g) ?? []).length, deb.pinned_measured.length, 'one measured point per map call');
  t.equal((debPlot.match(/<rect /g) ?? []).length, deb.pinned_expected.length, 'one expected point per map call');

  // Classified logic per kernel, as the page shows it.
  const logicRow = (k: string) => new RegExp(`<tr data-kernel="${k}"><th>[^]*?<td class="logic[^"]*">([^<]*)</td>`).exec(table)![1];
  t.equal(logicRow('host'), 'V4/shared', 'the host (6.18) classifies as V4 with the shared counter');
  t.equal(logicRow('host-as-v2-perf'), 'V4/shared', 'the same kernel classifies the same whatever it was expected to be');
  t.equal(logicRow('debian-6.1.190'), 'V1|V3/shared', 'V1 and V3 cannot be told apart by these scenarios');

  // Every failed cell that measured something has its own plots: VmPin and probe headroom per op, first divergent op marked.
  const shown = results.cells.filter((c) => FAILING.includes(c.verdict) && c.measured.length);
  t.ok(shown.some((c) => c.verdict === 'MISMATCH' && c.divergence), 'a MISMATCH with a divergence to show');
  const cellCards = [...dom.stdout.matchAll(/<div class="cell-plot plot-card" data-kernel="([^"]+)" data-scenario="([^"]+)" data-verdict="([A-Z_]+)" data-divergent-op="(\d*)">([^]*?)<\/svg><svg[^]*?<\/svg><\/div>/g)];
  t.same(cellCards.map((m) => `${m[1]} x ${m[2]} ${m[3]}`).sort(), shown.map((c) => `${c.kernel} x ${c.scenario} ${c.verdict}`).sort(), 'one card per failed cell with measurements (not for MATCH, SKIP, UNCHECKED)');
  for (const m of cellCards) {
    const c = shown.find((x) => x.kernel === m[1] && x.scenario === m[2])!;
    const card = m[0];
    const [pin, head] = card.split('</svg>');
    t.equal((pin!.match(/<circle /g) ?? []).length, c.measured.filter((x) => Number.isFinite(x.vmpin_kb)).length, `${m[1]} x ${m[2]}: a measured VmPin point per op`);
    t.equal((pin!.match(/<rect /g) ?? []).length, c.expected.length, `${m[1]} x ${m[2]}: an expected VmPin point per op`);
    t.equal((head!.match(/<circle /g) ?? []).length, c.measured.filter((x) => x.headroom !== undefined).length, 'a measured headroom point per probe');
    t.equal((head!.match(/<rect /g) ?? []).length, c.expected.filter((x) => x.headroom !== undefined).length, 'an expected headroom point per probe');
    t.match(pin!, /data-series="measured" fill="none" stroke="#d0471b" stroke-width="2" points=/, 'measured solid');
    if (c.expected.length) t.match(pin!, /data-series="expected[^"]*" fill="none" stroke="#1f5fbf" stroke-width="2" stroke-dasharray="6 4"/, 'expected dashed');
    else t.match(pin!, />expected \(none\)<\/text>/, 'no expected logic (UNCHECKED): the legend says none');
    if (c.divergence) {
      t.equal(m[4], String(c.divergence.i));
      // the marker stands at the divergent op's x, where that op's measured point is
      const mark = /<line class="mark" x1="([\d.]+)"/.exec(pin!)![1];
      const k = c.measured.filter((x) => Number.isFinite(x.vmpin_kb)).findIndex((x) => x.i === c.divergence!.i);
      const pts = [...pin!.matchAll(/<circle cx="([\d.]+)"/g)].map((x) => x[1]);
      t.equal(pts[k], mark, `${m[1]} x ${m[2]}: marker at op ${c.divergence.i}`);
      t.match(pin!, new RegExp(`>op ${c.divergence.i} ${c.divergence.field}</text>`), 'the marker names the op and field');
    } else t.notMatch(pin!, /class="mark"/, 'no divergence, no marker');
  }

  const png = join(dir, 'report.png');
  const shot = await lockstep(['report', out, '--out', join(dir, 'shot'), '--screenshot', png]);
  t.equal(shot.code, 0, shot.stderr.slice(-500));
  const head = await readFile(png);
  t.equal(head.subarray(1, 4).toString(), 'PNG');
  t.ok(head.length > 20_000, `screenshot has content (${head.length} bytes)`);
});

/** Layout facts of a report page at a window width, measured by Chromium in a copy of the page with a measuring script appended. */
async function layout(html: string, width: number): Promise<Record<string, number>> {
  const probe = join(dir, `measure-${width}.html`);
  await writeFile(join(dir, 'measure.js'), `
    const box = document.getElementById('verdicts-box'), t = document.getElementById('verdicts');
    const ths = t.querySelectorAll('thead th'), last = ths[ths.length - 1].getBoundingClientRect(), b = box.getBoundingClientRect();
    document.body.setAttribute('data-layout', JSON.stringify({ viewport: innerWidth, boxClient: box.clientWidth, boxScroll: box.scrollWidth,
      boxRight: b.right, lastColumnRight: last.right, pageScroll: document.documentElement.scrollWidth }));`);
  await writeFile(probe, html.replace('</body>', '<script src="measure.js"></script></body>'));
  const profile = await mkdtemp(join(tmpdir(), 'lockstep-chromium-'));
  try {
    const d = await chromium(`file://${probe}`, ['--dump-dom', `--window-size=${width},1000`], profile);
    const m = /data-layout="([^"]*)"/.exec(d.stdout);
    if (!m) throw new Error(`no layout read back: ${d.stderr.slice(-500)}`);
    return JSON.parse(m[1]!.replace(/&quot;/g, '"')) as Record<string, number>;
  } finally { await rm(profile, { recursive: true, force: true }); }
}

t.test('the verdict table of the published matrix (21 x 27, vertical scenario headers, a flaky note) fits its box at 1400 px; a wider matrix scrolls inside the box, not the page', async (t) => {
  const pub = join(dir, 'published');
  const r = await lockstep(['report', join(ROOT, 'results', 'results.json'), '--out', pub]);
  t.equal(r.code, 0, r.stderr);
  const html = await readFile(join(pub, 'report.html'), 'utf8');
  const published: Results = JSON.parse(await readFile(join(pub, 'results.json'), 'utf8'));
  t.ok(published.scenarios.length >= 15, `${published.scenarios.length} scenarios`);
  const l = await layout(html, 1400);
  t.equal(l.viewport, 1400);
  t.ok(l.lastColumnRight <= l.boxRight, `last column ends at ${l.lastColumnRight} px, inside the box (${l.boxRight} px)`);
  t.ok(l.boxScroll <= l.boxClient, `nothing to scroll at 1400 px (${l.boxScroll} <= ${l.boxClient})`);
  t.ok(l.pageScroll <= 1400, 'the page itself does not scroll sideways');
  // Narrower than the table: the box scrolls, the page does not.
  const n = await layout(html, 900);
  t.ok(n.boxScroll > n.boxClient, `the box scrolls at 900 px (${n.boxScroll} > ${n.boxClient})`);
  t.ok(n.pageScroll <= 900, `the page does not (${n.pageScroll} px)`);
});

t.test('JUnit XML, TAP and the step summary', async (t) => {
  const xml = await readFile(join(out, 'junit.xml'), 'utf8');
  const failing = results.cells.filter((c) => FAILING.includes(c.verdict)).length;
  const skipped = results.cells.filter((c) => c.verdict === 'SKIP').length;
  t.ok(failing > 0 && skipped > 0);
  t.equal((xml.match(/<testcase /g) ?? []).length, results.cells.length, 'one testcase per cell');
  const infra = results.cells.filter((c) => verdictClass(c.verdict) === 'infra').length;
  t.equal((xml.match(/<failure /g) ?? []).length + (xml.match(/<error /g) ?? []).length, failing);
  t.equal((xml.match(/<error /g) ?? []).length, infra, 'infrastructure verdicts are <error>');
  t.equal((xml.match(/<skipped /g) ?? []).length, skipped);
  t.match(xml, new RegExp(`<testsuites name="lockstep" tests="${results.cells.length}" failures="${failing - infra}" errors="${infra}" time="`));
  t.equal((xml.match(/<testsuite /g) ?? []).length, results.kernels.length, 'one suite per kernel');
  t.match(xml, /<testcase classname="lockstep\.host-as-v2-perf" name="[a-z-]+" time="\d+\.\d{3}">\n {6}<failure type="MISMATCH" message="MISMATCH: op \d+/);
  t.notMatch(xml.replace(/<\?xml[^>]*\?>/, '').replace(/<\/?[a-z-]+(\s+[a-z]+="[^"<>]*")*\s*\/?>/g, ''), /[<>]/, 'no stray markup: every < and > belongs to a tag');

  const tap = await lockstep(['report', out, '--tap', '--out', join(dir, 'again')]);
  t.equal(tap.code, 0, tap.stderr);
  const parsed = await new Promise<{ ok: boolean; count: number; pass: number; fail: number; skip: number }>((res) => {
    const p = new Parser((r) => res(r as never));
    p.end(tap.stdout);
  });
  t.equal(parsed.count, results.cells.length);
  t.equal(parsed.fail, failing);
  t.equal(parsed.skip, skipped);
  t.notOk(parsed.ok);
  t.equal(await readFile(join(dir, 'again', 'results.json'), 'utf8'), await readFile(join(out, 'results.json'), 'utf8'), '--out elsewhere publishes results.json too');

  const summaryFile = join(dir, 'summary.md');
  await writeFile(summaryFile, '');
  const s = await lockstep(['report', out, '--out', join(dir, 'again')], { GITHUB_STEP_SUMMARY: summaryFile });
  t.equal(s.code, 0);
  const md = await readFile(summaryFile, 'utf8');
  t.match(md, /^## lockstep matrix\n\n❌ 16 cells: /);
  t.match(md, /\| debian-6\.1\.190 \| V3\/shared \| V1\\\|V3\/shared \|/, 'the classifier\'s label, its | escaped for markdown');
  t.match(md, /<summary>Failing cells<\/summary>[^]*\*\*host-as-v2-perf x /);
});

t.test('lockstep diff flags a deliberately changed cell and exits 1', async (t) => {
  const same = await lockstep(['diff', out, join(out, 'results.json')]);
  t.equal(same.code, 0, same.stdout + same.stderr);
  t.match(same.stdout, /No changes\./);

  const changed = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
  const c = changed.cells.find((x) => x.kernel === 'debian-6.1.190' && x.scenario === 'remmap')!;
  t.equal(c.verdict, 'MATCH');
  c.verdict = 'MISMATCH';
  c.first_eperm_measured = 7;
  const newDir = join(dir, 'changed');
  await lockstep(['report', out, '--out', newDir]);
  await writeFile(join(newDir, 'results.json'), JSON.stringify(changed));
  const d = await lockstep(['diff', out, newDir]);
  t.equal(d.code, 1, 'regression: exit 1');
  t.match(d.stdout, /REGRESSION debian-6\.1\.190 x remmap: MATCH EPERM - -> MISMATCH EPERM #7 \(verdict, first_eperm\)/);
  t.match(d.stdout, /1 regression\(s\), 1 cell change\(s\)\./);

  // A changed measurement that moves the classification is a regression even with verdicts equal.
  const moved = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
  const m = moved.cells.find((x) => x.kernel === 'host-unknown' && x.scenario === 'remmap')!;
  const lastProbe = [...m.measured].reverse().find((x) => x.op === 'probe')!;
  lastProbe.headroom = lastProbe.headroom! + 1;
  await writeFile(join(dir, 'moved.json'), JSON.stringify(moved));
  const dm = await lockstep(['diff', out, join(dir, 'moved.json')]);
  t.equal(dm.code, 1);
  t.match(dm.stdout, /REGRESSION host-unknown: classification changed: V4\/shared -> none/);

  // Kernels coming are reported, not regressions; a kernel going loses its
  // measured cells: they are `missing` and fail the diff (issue 26: a nightly
  // that measured less than its baseline does not pass).
  const better = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
  better.kernels = better.kernels.filter((k) => k.id !== 'host-as-v2-perf');
  better.cells = better.cells.filter((x) => x.kernel !== 'host-as-v2-perf');
  await writeFile(join(dir, 'better.json'), JSON.stringify(better));
  const db = await lockstep(['diff', out, join(dir, 'better.json')]);
  t.equal(db.code, 1, db.stdout);
  t.match(db.stdout, /Kernels removed: host-as-v2-perf/);
  t.match(db.stdout, /MISSING host-as-v2-perf x remmap: MISMATCH EPERM - -> absent \(removed\)/);
  t.match(db.stdout, /0 regression\(s\), \d+ cell change\(s\)\. \d+ cell\(s\) of .* missing from /);
  const back = await lockstep(['diff', join(dir, 'better.json'), out]);
  t.equal(back.code, 0);
  t.match(back.stdout, /Kernels added: host-as-v2-perf/);
});

t.test('results.json is validated on read', async (t) => {
  const orig = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
  const bad = async (mutate: (o: Record<string, any>) => void, re: RegExp, what: string) => {
    const o = structuredClone(orig);
    mutate(o);
    const f = join(dir, `bad-${what.replace(/\W+/g, '-')}.json`);
    await writeFile(f, JSON.stringify(o));
    const r = await lockstep(['report', f, '--out', join(dir, 'bad-out')]);
    t.equal(r.code, 2, `${what}: exit 2`);
    t.match(r.stderr, re, what);
  };
  await bad((o) => { o.schema = 'lockstep/results@3'; }, /schema: unknown results schema "lockstep\/results@3" \(this lockstep reads lockstep\/results@1, lockstep\/results@2\)\. Fix: /, 'unknown version');
  await bad((o) => { o.cells[3].verdict = 'PASSED'; }, /cells\[3\]\.verdict: "PASSED" is not one of MATCH, /, 'bad verdict');
  await bad((o) => { o.cells.push(o.cells[0]); }, /a second cell for /, 'duplicate cell');
  await bad((o) => { o.cells[0].first_eperm_measured = 0; }, /cells\[0\]\.first_eperm_measured: not null or a call number/, 'bad eperm');
  await bad((o) => { delete o.kernels; }, /kernels: missing or not an array/, 'no kernels');
  const diffBad = await lockstep(['diff', out, join(dir, 'bad-unknown-version.json')]);
  t.equal(diffBad.code, 2, 'diff refuses it too');
});
