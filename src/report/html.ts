// The report page: one self-contained HTML file (inline CSS, inline SVG, no
// scripts, nothing fetched) with the kernels x scenarios verdicts, the
// classified logic per kernel, first EPERM points, one VmPin plot per kernel,
// a plot per op of every failed cell that measured something (VmPin and probe
// headroom, expected against measured, its first divergent op marked) and
// every cell's provenance. Pure: results in, HTML out.

import { ALL_LOGICS } from '../model/index.ts';
import { machineText, releaseText } from '../results/table.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import type { CellResult, Results } from '../results/schema.ts';
import {
  cellKey, choosePlotScenario, counts, epermText, expectedSeries, FAILING, firstDivergentOp, type KernelLogic, kernelIds, measuredSeries, opSeries,
  scenarioIds,
} from './analysis.ts';
import { esc, linePlot } from './svg.ts';
import { type CompatTable, renderCompatHtml } from './compat.ts';
import { isMeasured } from '../diff/verdicts.ts';

export interface HtmlOptions {
  defs: ReadonlyMap<string, CompiledScenario>;
  logic: ReadonlyMap<string, KernelLogic>;
  /** scenario to plot; default choosePlotScenario() */
  plotScenario?: string | null;
  title?: string;
  /** where the results directory is published: log paths (relative to it) become links under this URL */
  artifactBaseUrl?: string;
  /** the compatibility table (results/compat.json) to render after the classified logic, if any */
  compat?: CompatTable;
}

/** A log path (relative to the results directory) as code, or as a link under `base`. */
function logLink(path: string | null | undefined, base?: string): string {
  if (!path) return '<code>-</code>';
  if (!base) return `<code>${esc(path)}</code>`;
  const url = `${base.replace(/\/+$/, '')}/${path.split('/').map(encodeURIComponent).join('/')}`;
  return `<a href="${esc(url)}"><code>${esc(path)}</code></a>`;
}

const COLORS: Record<string, string> = {
  MATCH: '#d6f5d6', MISMATCH: '#ffd6d6', SKIP: '#eeeeee', UNCHECKED: '#dde8ff', ERROR: '#ffe2b3',
  TIMEOUT: '#ffe2b3', PANIC: '#ff9e9e', BOOT_FAIL: '#ffc9a8', BUILD_FAIL: '#ffc9a8',
};

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#222;max-width:1600px}
h1{font-size:1.5em;margin:0 0 .3em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0} th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
thead th{background:#f3f3f3;position:sticky;top:0} .scroll{overflow-x:auto}
.tablebox{overflow:auto;max-width:100%;max-height:85vh;border:1px solid #ccc;margin:.5em 0}
.tablebox table{margin:0} .tablebox thead th{z-index:2} .tablebox tbody th{position:sticky;left:0;background:#fafafa;z-index:1}
th.scen{font-size:11px;padding:4px 2px;vertical-align:bottom} th.scen span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap} td.cell{padding:3px 1px} .cell-plot p.reason{font-size:12px;max-width:860px;margin:2px 0 4px}
td.cell{white-space:nowrap;font-family:ui-monospace,monospace;font-size:11px} td.cell small{color:#555} td.cell small.flaky{white-space:normal}
${Object.entries(COLORS).map(([v, c]) => `td.v-${v}{background:${c}}`).join('\n')}
.meta{color:#444} code{font-size:12px} .plots{display:flex;flex-wrap:wrap;gap:12px}
.plot-card{border:1px solid #ccc;padding:6px;background:#fff} .plot-card h3{font-size:13px;margin:0 0 4px}
.legend span{display:inline-block;padding:1px 6px;margin-right:4px;border:1px solid #bbb;font-size:12px}
details{margin:.3em 0} summary{cursor:pointer} .ok{color:#070} .bad{color:#b00}
`;

/** "flaky: BOOT_FAIL, then MATCH" under a cell that passed only on a retry. */
const flakyNote = (c: CellResult): string =>
  c.flaky && c.attempts ? `<br><small class="flaky" data-attempts="${c.attempts.length}">flaky: ${esc(c.attempts.map((a) => a.verdict).join(', then '))}</small>` : '';

function cellHtml(c: CellResult | undefined, kernel: string, scenario: string): string {
  const attrs = `data-kernel="${esc(kernel)}" data-scenario="${esc(scenario)}"`;
  if (!c) return `<td class="cell v-none" ${attrs} data-verdict="">-</td>`;
  const e = c.first_eperm_measured === c.first_eperm_expected || c.verdict === 'UNCHECKED'
    ? epermText(c.first_eperm_measured)
    : `${epermText(c.first_eperm_measured)} (exp ${epermText(c.first_eperm_expected)})`;
  const showE = isMeasured(c.verdict);
  return `<td class="cell v-${c.verdict}" ${attrs} data-verdict="${c.verdict}"${c.reason ? ` title="${esc(c.reason)}"` : ''}>` +
    `<span class="verdict">${c.verdict}</span>${showE ? `<br><small class="eperm" title="first map call refused with EPERM">${esc(e)}</small>` : ''}${flakyNote(c)}</td>`;
}

function plotFor(r: Results, kernel: string, scenario: string | null, defs: ReadonlyMap<string, CompiledScenario>): string {
  const c = scenario ? r.cells.find((x) => x.kernel === kernel && x.scenario === scenario) : undefined;
  const measured = c ? measuredSeries(c) : [];
  const expected = c ? expectedSeries(c, scenario ? defs.get(scenario) : undefined) : [];
  const note = !scenario ? 'no scenario with VmPin data in this run'
    : !c ? `no ${scenario} cell for this kernel`
      : !measured.length && !expected.length ? `${c.verdict}: nothing to plot` : undefined;
  const svg = linePlot([
    // measured drawn first: where the two agree, the dashed expected line stays visible on top
    { name: 'measured', values: measured, color: '#d0471b', marker: 'circle' },
    { name: `expected${c?.expected_logic ? ` (${c.expected_logic})` : ''}`, values: expected, color: '#1f5fbf', dash: '6 4', marker: 'square' },
  ], { title: `${kernel}: ${scenario ?? '-'}`, xLabel: 'map call number', yLabel: 'VmPin (pages)', note });
  return `<div class="plot-card" data-kernel="${esc(kernel)}" data-scenario="${esc(scenario ?? '')}"><h3>${esc(kernel)}${c ? ` <small>${c.verdict}</small>` : ''}</h3>${svg}</div>`;
}

/** The two per-op plots of one cell (VmPin, probe headroom), read through analysis.ts's opSeries(). */
function cellPlots(c: CellResult, defs: ReadonlyMap<string, CompiledScenario>): string {
  const ops = opSeries(c, defs.get(c.scenario));
  const div = firstDivergentOp(c);
  const mark = div !== null && div < ops.length
    ? { at: div, label: `op ${div}${c.divergence ? ` ${c.divergence.field}` : ''}` } : undefined;
  const exp = `expected${c.expected_logic ? ` (${c.expected_logic})` : ''}`;
  const tick = (i: number): string => `${i} ${ops[i]?.op ?? ''}`.trim();
  const plot = (what: 'pinned' | 'headroom', yLabel: string, unit: string): string => {
    const measured = ops.map((p) => p[`${what}_measured`]);
    const expected = ops.map((p) => p[`${what}_expected`]);
    return linePlot([
      { name: 'measured', values: measured, color: '#d0471b', marker: 'circle' },
      { name: exp, values: expected, color: '#1f5fbf', dash: '6 4', marker: 'square' },
    ], {
      title: `${c.kernel} x ${c.scenario}: ${what === 'pinned' ? 'VmPin' : 'probe headroom'}`, xLabel: 'op', yLabel, unit, pointName: 'op',
      xTick: tick, mark, width: 430, height: 250,
      note: measured.every((v) => v === null) && expected.every((v) => v === null) ? 'no values for this cell' : undefined,
    });
  };
  return `<div class="cell-plot plot-card" data-kernel="${esc(c.kernel)}" data-scenario="${esc(c.scenario)}" data-verdict="${c.verdict}"` +
    ` data-divergent-op="${div ?? ''}"><h3>${esc(c.kernel)} x ${esc(c.scenario)} <small>${c.verdict}</small></h3>` +
    `${c.reason ? `<p class="reason">${esc(c.reason)}</p>` : ''}${plot('pinned', 'VmPin (pages)', 'pages')}${plot('headroom', 'headroom (1-page maps)', 'maps')}</div>`;
}

export function renderHtml(r: Results, o: HtmlOptions): string {
  const kernels = kernelIds(r);
  const scenarios = scenarioIds(r);
  const byKey = new Map(r.cells.map((c) => [cellKey(c), c]));
  const rec = new Map(r.kernels.map((k) => [k.id, k]));
  const n = counts(r);
  const plotScenario = o.plotScenario === undefined ? choosePlotScenario(r, o.defs) : o.plotScenario;
  const h: string[] = [];
  h.push('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">');
  h.push(`<title>${esc(o.title ?? 'lockstep results')}</title><meta name="viewport" content="width=device-width,initial-scale=1">`);
  h.push(`<style>${CSS}</style></head><body>`);
  h.push(`<h1>${esc(o.title ?? 'lockstep results')}</h1>`);
  h.push(`<p class="meta">Run ${esc(r.started_at)}${r.finished_at ? ` .. ${esc(r.finished_at)}` : ''}` +
    `${r.complete ? '' : ' <strong class="bad">(INCOMPLETE)</strong>'}; host ${esc(r.host.release)}, ${r.host.cpus} CPUs; ` +
    `VMs under ${esc(r.host.accel.toUpperCase())} (${esc(r.host.accel_why)})${r.host.emulator ? `; ${esc(r.host.emulator)}` : ''}; lockstep ${esc(r.lockstep_version)}.</p>`);
  if (r.matrix) h.push(`<p class="meta">Matrix <code>${r.matrix.hash.slice(0, 16)}</code>: ${r.matrix.kernels.length} kernels x ${r.matrix.scenarios.length} scenarios` +
    `${r.shard ? `; this is shard ${r.shard.index}/${r.shard.count} (${r.shard.groups.length} boots)` : ''}` +
    `${r.merged_from ? `; merged from ${r.merged_from.length} shard(s): ${r.merged_from.map((m) => (m.shard ? `${m.shard.index}/${m.shard.count}` : 'whole')).join(', ')}` : ''}.</p>`);
  h.push(`<p id="counts">Cells: <strong>${n.total}</strong>; ${[...n.byVerdict].map(([v, k]) => `${v} ${k}`).join(', ')}.</p>`);
  h.push(`<p class="legend">${Object.entries(COLORS).map(([v, c]) => `<span style="background:${c}">${v}</span>`).join('')}</p>`);

  h.push('<h2>Verdicts</h2>');
  h.push('<p>Each cell: the verdict against the kernel\'s expected logic, then the first <code>map</code> call refused with EPERM ' +
    '(<code>-</code> = none; when measured and expected differ, the expected one follows). Hover a cell for the reason.</p>');
  // Its own scroll box: a wide matrix scrolls inside it (kernel column and header stay put) instead of running off the page.
  h.push('<div class="tablebox" id="verdicts-box"><table id="verdicts"><thead><tr><th>kernel</th><th>expected logic</th><th>classified logic</th>' +
    scenarios.map((s) => `<th class="scen" data-scenario="${esc(s)}"><span>${esc(s)}</span></th>`).join('') + '</tr></thead><tbody>');
  for (const k of kernels) {
    const kr = rec.get(k);
    const lg = o.logic.get(k);
    const agree = lg?.fits && kr?.expected_logic ? lg.fits.some((l) => `${l.accounting}/${l.counter}` === kr.expected_logic) : null;
    h.push(`<tr data-kernel="${esc(k)}"><th>${esc(k)}${kr?.release ? `<br><small>${esc(kr.release)}</small>` : ''}${kr && machineText(kr) ? `<br><small>${esc(machineText(kr))}</small>` : ''}${kr ? `<br><small>${esc(releaseText(kr))}</small>` : ''}</th>` +
      `<td>${esc(kr?.expected_logic ?? 'unknown')}</td>` +
      `<td class="logic${agree === false ? ' bad' : agree ? ' ok' : ''}">${esc(lg?.label ?? '')}</td>` +
      scenarios.map((s) => cellHtml(byKey.get(`${k}\0${s}`), k, s)).join('') + '</tr>');
  }
  h.push('</tbody></table></div>');

  h.push('<h2>Classified logic per kernel</h2>');
  h.push(`<p>Which of the ${ALL_LOGICS.length} models (V0..V4, V1a, V1b x shared/separate counter) explain every finished, non-SKIP cell of the kernel. ` +
    'Several fit when the scenarios cannot tell them apart.</p>');
  h.push('<table id="logic"><thead><tr><th>kernel</th><th>version</th><th>expected</th><th>why expected</th><th>classified</th><th>cells used</th></tr></thead><tbody>');
  for (const k of kernels) {
    const kr = rec.get(k);
    const lg = o.logic.get(k);
    h.push(`<tr data-kernel="${esc(k)}"><td>${esc(k)}</td><td>${esc(kr?.version ?? '?')}</td><td>${esc(kr?.expected_logic ?? 'unknown')}</td>` +
      `<td>${esc(kr?.expect_reason ?? '')}</td><td>${esc(lg?.label ?? '')}</td><td>${lg?.cells ?? 0}</td></tr>`);
  }
  h.push('</tbody></table>');

  if (o.compat) h.push(renderCompatHtml(o.compat));

  h.push(`<h2>VmPin against call number${plotScenario ? `: ${esc(plotScenario)}` : ''}</h2>`);
  h.push('<p>Worker VmPin in pages after each <code>map</code> call: dashed squares the kernel\'s expected logic, solid circles measured.</p>');
  h.push(`<div class="plots" id="plots">${kernels.map((k) => plotFor(r, k, plotScenario, o.defs)).join('')}</div>`);

  const failing = r.cells.filter((c) => FAILING.includes(c.verdict) && c.measured.length);
  if (failing.length) {
    h.push('<h2>Failed cells, op by op</h2>');
    h.push('<p>Every failed cell (MISMATCH, PANIC, ERROR, TIMEOUT...) that measured something: per op of its scenario (0-based, as in the reasons), the worker\'s VmPin in pages ' +
      'and, at <code>probe</code> ops, the headroom (fresh 1-page maps that did not spill); dashed squares the kernel\'s expected logic, solid circles measured, ' +
      'the red line the first op where they differ.</p>');
    h.push(`<div class="plots" id="cell-plots">${failing.map((c) => cellPlots(c, o.defs)).join('')}</div>`);
  }

  const notes = r.cells.filter((c) => c.verdict !== 'MATCH' && c.reason);
  if (notes.length) {
    h.push('<h2>Details</h2><ul id="details">');
    for (const c of notes) h.push(`<li><strong>${esc(c.kernel)} x ${esc(c.scenario)}</strong>: ${c.verdict}: ${esc(c.reason!)}</li>`);
    h.push('</ul>');
  }

  h.push('<h2>Provenance</h2>');
  for (const k of kernels) {
    const cells = r.cells.filter((c) => c.kernel === k);
    const first = cells[0];
    h.push(`<details data-kernel="${esc(k)}"><summary>${esc(k)}: ${cells.length} cells` +
      `${first?.kernel_source ? `; ${esc(first.kernel_source)}` : ''}${first?.kernel_artifact_sha256 ? `; vmlinuz sha256 ${first.kernel_artifact_sha256.slice(0, 12)}` : ''}` +
      `${first?.kernel_config_sha256 ? `; config sha256 ${first.kernel_config_sha256.slice(0, 12)}` : ''}</summary>`);
    h.push('<div class="scroll"><table><thead><tr><th>scenario</th><th>verdict</th><th>started</th><th>duration</th><th>accel</th><th>emulator</th>' +
      '<th>reproducer</th><th>scenario hash</th><th>console log</th><th>re-run</th></tr></thead><tbody>');
    for (const c of cells) {
      h.push(`<tr><td>${esc(c.scenario)}</td><td>${c.verdict}</td><td>${esc(c.started_at)}</td>` +
        `<td>${c.duration_ms != null ? `${(c.duration_ms / 1000).toFixed(2)} s` : '-'}</td>` +
        `<td title="${esc(c.accel_why ?? '')}">${c.accel}</td>` +
        `<td${c.qemu_argv ? ` title="${esc(c.qemu_argv.join(' '))}"` : ''}>${esc(c.qemu_version ?? (c.runtime === 'host' ? 'host (native)' : '-'))}</td>` +
        `<td><code>${esc((c.reproducer_sha256 ?? '-').slice(0, 12))}</code></td><td><code>${esc(c.scenario_hash.slice(0, 12))}</code></td>` +
        `<td>${logLink(c.console_log, o.artifactBaseUrl)}</td><td><code>${esc(c.rerun)}</code></td></tr>`);
    }
    h.push('</tbody></table></div></details>');
  }
  h.push('</body></html>');
  return h.join('\n') + '\n';
}
