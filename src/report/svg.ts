// A small line plot as inline SVG: VmPin (pages) against map call number or
// op, probe headroom against op; expected and measured overlaid, gaps where an
// op has no value, an optional marker (the first divergent op). Pure string building, no dependencies and
// nothing fetched, so the report page stays self-contained.

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** One line: a value per x position; null leaves a gap (an op without that value). */
export interface Series { name: string; values: readonly (number | null)[]; color: string; dash?: string; marker: 'circle' | 'square' }

export interface PlotOptions {
  title: string; xLabel: string; yLabel: string; width?: number; height?: number; note?: string;
  /** x tick label of position i (default: i + 1) */
  xTick?: (i: number) => string;
  /** a vertical marker at position `at`, labelled (e.g. the first divergent op) */
  mark?: { at: number; label: string };
  /** what a point's tooltip calls x (default: "call") and its unit (default: "pages") */
  pointName?: string; unit?: string;
}

/** Round up to a "nice" axis maximum (1, 2, 2.5, 5 x 10^k). */
export function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1));

export function linePlot(series: readonly Series[], o: PlotOptions): string {
  const W = o.width ?? 420;
  const H = o.height ?? 240;
  const m = { l: 56, r: o.xTick ? 30 : 12, t: 28, b: 52 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const yMax = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null))));
  const tick = o.xTick ?? ((i: number): string => String(i + 1));
  const pointName = o.pointName ?? 'call';
  const unit = o.unit ?? 'pages';
  const x = (i: number): number => m.l + (n === 1 ? pw / 2 : (i * pw) / (n - 1));
  const y = (v: number): number => m.t + ph - (v / yMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">`);
  out.push(`<title>${esc(o.title)}</title>`);
  out.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="12" font-weight="bold">${esc(o.title)}</text>`);
  // grid and y ticks
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${m.l - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${fmt(v)}</text>`);
  }
  // x ticks: at most ~10 labels
  const step = Math.max(1, Math.ceil(n / 10));
  for (let i = 0; i < n; i += step) out.push(`<text x="${x(i).toFixed(1)}" y="${m.t + ph + 14}" text-anchor="middle" font-size="10">${esc(tick(i))}</text>`);
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${H - 22}" text-anchor="middle" font-size="11">${esc(o.xLabel)}</text>`);
  out.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(o.yLabel)}</text>`);
  if (o.mark) {
    const mx = x(o.mark.at).toFixed(1);
    out.push(`<line class="mark" x1="${mx}" x2="${mx}" y1="${m.t}" y2="${m.t + ph}" stroke="#b00" stroke-width="1.5"/>`);
    out.push(`<text class="mark" x="${mx}" y="${m.t - 3}" text-anchor="middle" font-size="10" fill="#b00">${esc(o.mark.label)}</text>`);
  }
  for (const s of series) {
    if (!s.values.some((v) => v !== null)) continue;
    // one polyline per run of values without a gap
    const runs: string[][] = [[]];
    s.values.forEach((v, i) => {
      if (v === null) { if (runs[runs.length - 1]!.length) runs.push([]); return; }
      runs[runs.length - 1]!.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    for (const pts of runs.filter((r) => r.length)) {
      out.push(`<polyline class="series" data-series="${esc(s.name)}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts.join(' ')}"/>`);
    }
    s.values.forEach((v, i) => {
      if (v === null) return;
      const cx = x(i).toFixed(1); const cy = y(v).toFixed(1);
      const tip = `<title>${esc(s.name)} ${pointName} ${esc(tick(i))}: ${v} ${unit}</title>`;
      out.push(s.marker === 'circle'
        ? `<circle cx="${cx}" cy="${cy}" r="3" fill="${s.color}">${tip}</circle>`
        : `<rect x="${(x(i) - 3).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" width="6" height="6" fill="none" stroke="${s.color}">${tip}</rect>`);
    });
  }
  // legend
  let lx = m.l;
  for (const s of series) {
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${H - 7}" y2="${H - 7}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${lx + 22}" y="${H - 3}" font-size="10">${esc(s.name)}${s.values.some((v) => v !== null) ? '' : ' (none)'}</text>`);
    lx += 30 + 6 * s.name.length + 40;
  }
  if (o.note) out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph / 2}" text-anchor="middle" font-size="11" fill="#a00">${esc(o.note)}</text>`);
  out.push('</svg>');
  return out.join('');
}
