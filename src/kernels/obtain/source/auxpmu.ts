// The lockstep_aux software PMU (harness/auxpmu/lockstep_aux.c) built into
// every source kernel lockstep builds from a spec: the file is copied into
// the shared tree as kernel/events/lockstep_aux.c and kernel/events/Makefile
// gets `obj-y += lockstep_aux.o` (kernel/events/ is built only with
// CONFIG_PERF_EVENTS, which the fragment sets). Its text is part of the tree
// key, so a changed driver is a new tree. Variants relink from that tree.

import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoPath } from '../../../util/repo-root.ts';

/** Where the driver lives in this checkout. */
export const auxPmuSourcePath = (): string => repoPath('harness', 'auxpmu', 'lockstep_aux.c');

/** Its path inside a kernel tree, and the kbuild line that builds it in. */
export const AUX_PMU_TREE_FILE = 'kernel/events/lockstep_aux.c';
export const AUX_PMU_MAKE_LINE = 'obj-y += lockstep_aux.o';

/** The driver's text (read once per call). Throws when the checkout lacks it. */
export const readAuxPmuSource = (): Promise<string> => readFile(auxPmuSourcePath(), 'utf8');

/**
 * `makefile` with the driver's kbuild line appended, or unchanged when it is
 * there already. Pure.
 */
export function withAuxPmuLine(makefile: string): string {
  if (makefile.split('\n').some((l) => l.trim() === AUX_PMU_MAKE_LINE)) return makefile;
  return `${makefile.endsWith('\n') || makefile === '' ? makefile : `${makefile}\n`}# lockstep: software AUX PMU (harness/auxpmu)\n${AUX_PMU_MAKE_LINE}\n`;
}

/**
 * Put the driver into lockstep's copy of a tree at `src` (idempotent). The
 * Makefile is replaced by a new file, never written through a hard link to
 * a user's tree. Throws on I/O errors (a tree without kernel/events/Makefile
 * is not a kernel tree lockstep can build).
 */
export async function installAuxPmu(src: string, driver: string): Promise<void> {
  const mk = join(src, 'kernel/events/Makefile');
  const text = await readFile(mk, 'utf8');
  const next = withAuxPmuLine(text);
  if (next !== text) {
    await writeFile(`${mk}.lockstep-tmp`, next);
    await rename(`${mk}.lockstep-tmp`, mk);
  }
  const dst = join(src, AUX_PMU_TREE_FILE);
  if ((await readFile(dst, 'utf8').catch(() => null)) !== driver) {
    await writeFile(`${dst}.lockstep-tmp`, driver);
    await rename(`${dst}.lockstep-tmp`, dst);
  }
}

/** Shell lines of reproduce.sh that do what installAuxPmu does, from "$HERE/inputs/lockstep_aux.c". */
export const auxPmuShell = (): string =>
  [`cp "$HERE/inputs/lockstep_aux.c" ${AUX_PMU_TREE_FILE}`, `grep -qx '${AUX_PMU_MAKE_LINE}' kernel/events/Makefile || echo '${AUX_PMU_MAKE_LINE}' >> kernel/events/Makefile`].join('\n');

