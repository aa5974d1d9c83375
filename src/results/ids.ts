// The kernels and scenarios of a run in their order: the records' order
// first, then any id only a cell names. Pure; every reader of a run (the
// table, report.html, JUnit, KTAP, KCIDB) lists them this way.

import type { Results } from './schema.ts';

/** Kernel ids of `r`: kernels[] in order, then ids only cells name. */
export function kernelIds(r: Results): string[] {
  const ids = r.kernels.map((k) => k.id);
  for (const c of r.cells) if (!ids.includes(c.kernel)) ids.push(c.kernel);
  return ids;
}

/** Scenario ids of `r`: scenarios[] in order (once per id), then ids only cells name. */
export function scenarioIds(r: Results): string[] {
  const ids = [...new Set(r.scenarios.map((s) => s.id))];
  for (const c of r.cells) if (!ids.includes(c.scenario)) ids.push(c.scenario);
  return ids;
}
