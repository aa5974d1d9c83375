// Writing a run's report files next to its results.json. The only I/O of
// src/report: everything it writes is rendered by the pure modules.

import { join } from 'node:path';
import { appendFile } from 'node:fs/promises';
import { builtinScenarios, scenarioHash } from '../scenario/load.ts';
import type { CompiledScenario } from '../scenario/ops.ts';
import type { Results } from '../results/schema.ts';
import { renderTable } from '../results/table.ts';
import { writeAtomic } from '../results/write.ts';
import { classifyAll, type KernelLogic, scenarioDefs } from './analysis.ts';
import { renderHtml } from './html.ts';
import type { CompatTable } from './compat.ts';
import { renderJunit } from './junit.ts';
import { renderTap } from './tap.ts';
import { renderKtap } from '../export/ktap.ts';

/** Built-in scenarios by content hash: definitions for results written without them. */
export function builtinDefsByHash(): Map<string, CompiledScenario> {
  return new Map(builtinScenarios().map((l) => [scenarioHash(l.compiled), l.compiled]));
}

export interface Written { files: string[]; logic: Map<string, KernelLogic>; defs: Map<string, CompiledScenario> }

/** table.md, report.html, junit.xml, results.tap, results.ktap into `dir`. */
export async function writeReports(r: Results, dir: string, opts: { plotScenario?: string | null; title?: string; artifactBaseUrl?: string; compat?: CompatTable } = {}): Promise<Written> {
  const builtin = builtinDefsByHash();
  const defs = scenarioDefs(r, builtin);
  const logic = classifyAll(r, defs);
  const files: [string, string][] = [
    ['table.md', renderTable(r, builtin)],
    ['report.html', renderHtml(r, { defs, logic, plotScenario: opts.plotScenario, title: opts.title, artifactBaseUrl: opts.artifactBaseUrl, compat: opts.compat })],
    ['junit.xml', renderJunit(r)],
    ['results.tap', renderTap(r)],
    ['results.ktap', renderKtap(r)],
  ];
  for (const [name, text] of files) await writeAtomic(join(dir, name), text);
  return { files: files.map(([n]) => join(dir, n)), logic, defs };
}

/** Append to $GITHUB_STEP_SUMMARY when it is set (GitHub Actions). */
export async function writeStepSummary(markdown: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const f = env.GITHUB_STEP_SUMMARY;
  if (!f) return null;
  await appendFile(f, markdown);
  return f;
}
