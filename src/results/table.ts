// The markdown table of a run: kernels x scenarios with verdicts and first
// EPERM points, then what went wrong where. Pure: Results in, text out.

import type { CellResult, KernelRecord, Results } from './schema.ts';
import { classifyKernel } from '../diff/evidence.ts';
import type { CompiledScenario } from '../scenario/ops.ts';

const eperm = (n: number | null): string => (n === null ? '-' : `#${n}`);

function cellText(c: CellResult | undefined): string {
  if (!c) return '';
  const e = c.first_eperm_measured === c.first_eperm_expected || c.verdict === 'UNCHECKED'
    ? eperm(c.first_eperm_measured)
    : `${eperm(c.first_eperm_measured)} (exp ${eperm(c.first_eperm_expected)})`;
  const flaky = c.flaky ? ` (flaky: ${c.attempts?.length ?? 2} boots)` : '';
  switch (c.verdict) {
    case 'MATCH': case 'MISMATCH': case 'UNCHECKED': return `${c.verdict} ${e}${flaky}`;
    default: return `${c.verdict}${flaky}`;
  }
}

/**
 * A record's release kind when its results predate release_kind: a source
 * kernel is real when its provenance says "+ 0 patch(es)" (built from a
 * release's tree as it is), else a stand-in.
 */
const recordedKind = (k: KernelRecord): 'real' | 'stand-in' | 'image' =>
  k.kind === 'image' ? 'image' : k.kind !== 'source' ? 'real' : / \+ 0 patch\(es\)/.test(k.source ?? '') ? 'real' : 'stand-in';

/**
 * The release column: "real" (as its distribution ships it, or built here
 * from a release's tree without patches) or "stand-in" (patched here to stand
 * for a logic), and for Debian kernels the suite, the rule and the package
 * version that ran: "real: sid latest = 7.2.13-1".
 */
export function releaseText(k: KernelRecord): string {
  const kind = k.release_kind ?? recordedKind(k);
  const res = k.resolution;
  if (!res) return kind;
  const rule = res.rule === 'pinned' || res.rule === 'candidate' || res.rule === 'cached' ? '' : ` ${res.rule}`;
  return `${kind}: ${res.suite ?? 'host apt'}${rule} = ${res.package_version}`;
}

/** "arm64, 64 KiB pages", "arm64", or "" for an x86_64 kernel with 4 KiB pages. */
export const machineText = (k: KernelRecord): string =>
  [k.arch && k.arch !== 'x86_64' ? k.arch : '', k.page_kb && k.page_kb !== 4 ? `${k.page_kb} KiB pages` : ''].filter(Boolean).join(', ');

/** The classified column: the one classifier's label for what the kernel's measured cells alone fit. */
function classifiedText(r: Results, kernel: string, known: ReadonlyMap<string, CompiledScenario>): string {
  // "V1|V3/shared": a bare | would split the markdown cell
  return classifyKernel(r, kernel, known).label.replace(/\|/g, '\\|');
}

/**
 * table.md. `known`: scenario definitions by hash for results written
 * without them (the run's own definitions always win).
 */
export function renderTable(r: Results, known: ReadonlyMap<string, CompiledScenario> = new Map()): string {
  const kernels = r.kernels.map((k) => k.id);
  const scenarios = [...new Set(r.scenarios.map((s) => s.id))];
  const byKey = new Map(r.cells.map((c) => [`${c.kernel}\0${c.scenario}`, c]));
  const counts = new Map<string, number>();
  for (const c of r.cells) counts.set(c.verdict, (counts.get(c.verdict) ?? 0) + 1);
  const out: string[] = [];
  out.push(`# lockstep results`, '');
  out.push(`Run ${r.started_at}${r.finished_at ? ` .. ${r.finished_at}` : ''}${r.complete ? '' : ' (INCOMPLETE: interrupted or still running)'}; ` +
    `host ${r.host.release}, ${r.host.cpus} CPUs, VMs under ${r.host.accel.toUpperCase()} (${r.host.accel_why}).`, '');
  out.push(`Cells: ${r.cells.length}; ${[...counts].map(([v, n]) => `${v} ${n}`).join(', ')}.`, '');
  out.push('Each cell: verdict against the kernel\'s expected logic, then the first `map` call refused with EPERM (`-` = none); ' +
    'when measured and expected differ, the expected one follows. ' +
    '"classified": the logic(s) the measured cells alone fit, V1|V3 being one class without AUX cells (`lockstep classify` shows the evidence).', '');
  out.push(`| kernel | expected logic | classified | ${scenarios.join(' | ')} | release |`);
  out.push(`|---|---|---|${scenarios.map(() => '---').join('|')}|---|`);
  for (const k of r.kernels) {
    const machine = machineText(k);
    out.push(`| ${k.id}${k.release || machine ? ` (${[k.release, machine].filter(Boolean).join('; ')})` : ''} | ${k.expected_logic ?? 'unknown'} | ${classifiedText(r, k.id, known)} | ` +
      `${scenarios.map((s) => cellText(byKey.get(`${k.id}\0${s}`))).join(' | ')} | ${releaseText(k)} |`);
  }
  const notes = r.cells.filter((c) => c.verdict !== 'MATCH' && c.reason);
  if (notes.length) {
    out.push('', '## Details', '');
    for (const c of notes) out.push(`- **${c.kernel} x ${c.scenario}**: ${c.verdict}: ${c.reason}`);
  }
  const retried = r.cells.filter((c) => c.attempts && c.attempts.length > 1);
  if (retried.length) {
    out.push('', '## Retried cells', '', 'An infrastructure failure (TIMEOUT, BOOT_FAIL, ERROR) gets a fresh boot (`run --attempts`); a cell that passed only then is flaky.', '');
    for (const c of retried) out.push(`- ${c.kernel} x ${c.scenario}${c.flaky ? ' (flaky)' : ''}: ${c.attempts!.map((a) => `${a.attempt}: ${a.verdict}${a.reason ? ` (${a.reason.split('\n')[0]})` : ''}`).join('; ')}`);
  }
  const calibrated = r.cells.filter((c) => c.calibrated && Object.keys(c.calibrated).length);
  if (calibrated.length) {
    out.push('', '## Measured model inputs', '');
    for (const c of calibrated) out.push(`- ${c.kernel} x ${c.scenario}: ${Object.entries(c.calibrated!).map(([k, v]) => `${k}=${v}`).join(', ')}`);
  }
  out.push('', `Kernels: ${kernels.length}. Expected logic per kernel and why:`, '');
  for (const k of r.kernels) out.push(`- ${k.id} (${k.kind}, ${k.version}): ${k.expected_logic ?? 'unknown'}: ${k.expect_reason}`);
  const resolved = r.kernels.filter((k) => k.resolution);
  if (resolved.length) {
    out.push('', 'Debian kernels as resolved when the run started (package, version, suite, .deb sha256):', '');
    for (const k of resolved) {
      const x = k.resolution!;
      out.push(`- ${k.id}: ${x.package}=${x.package_version} (upstream ${x.version}) from ${x.suite ?? "the machine's apt sources"}, ${x.rule}, sha256 ${x.deb_sha256}`);
    }
  }
  return out.join('\n') + '\n';
}
