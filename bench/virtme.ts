// Boot to first result: virtme-ng (`vng --run`, the host's root over 9p,
// modules loaded from its initramfs) vs lockstep's own QEMU boot (a small
// busybox initramfs), on the same kernels, TCG, one scenario per boot,
// runs alternated so machine load hits both alike. Speed is measured here,
// never asserted in tests.
//
//   node --import tsx bench/virtme.ts [--runs N] [--only debian|source]   (npm run bench:virtme)
//
// Kernels: the Debian 6.1.192 generic image (the cloud flavour has no 9p)
// and the built-in source kernel current-6.1 (built again with vng's
// options for the virtme runtime).

import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir } from '../src/kernels/artifact.ts';
import { builtinSpecs, parseSpec, type KernelSpec } from '../src/kernels/spec.ts';
import { runMatrix } from '../src/matrix/run.ts';
import { builtinScenarios } from '../src/scenario/load.ts';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '3' }, only: { type: 'string' } } });
const runs = Math.max(1, Number(args.runs) || 3);
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

const deb = { kind: 'debian-image', package: 'linux-image-6.1.0-56-amd64-unsigned', version: '6.1.192', package_version: '6.1.192-2', expect: 'auto' };
const src = (await builtinSpecs()).find((k) => k.id === 'current-6.1')!;
const all: [string, KernelSpec, KernelSpec][] = [
  ['Debian 6.1.192 generic', parseSpec({ id: 'deb-qemu', ...deb }, 'bench'), parseSpec({ id: 'deb-vng', ...deb, runtime: 'virtme' }, 'bench')],
  ['source current-6.1', src, { ...src, id: 'current-6.1-vng', runtime: 'virtme' } as KernelSpec],
];
const pairs = all.filter(([label]) => !args.only || label.startsWith(args.only === 'debian' ? 'Debian' : 'source'));
const baseline = builtinScenarios().find((s) => s.id === 'baseline')!.compiled;

const rows: string[] = [];
for (const [label, q, v] of pairs) {
  const boot: Record<string, number[]> = { qemu: [], virtme: [] };
  const wall: Record<string, number[]> = { qemu: [], virtme: [] };
  for (let i = 0; i < runs; i++) {
    for (const k of i % 2 ? [v, q] : [q, v]) {
      const out = await mkdtemp(join(tmpdir(), 'lockstep-bench-vng-'));
      try {
        const r = await runMatrix({ kernels: [k], scenarios: [baseline], outDir: out, cacheDir: defaultCacheDir(), jobs: 1, opTimeoutS: 60, attempts: 1, log: () => {}, rerun: () => '' });
        const c = r.cells[0]!;
        const rt = k.runtime === 'virtme' ? 'virtme' : 'qemu';
        if (c.boot_ms == null) { console.error(`bench: ${label} ${rt}: ${c.verdict} ${c.reason ?? ''}`); continue; }
        boot[rt]!.push(c.boot_ms);
        wall[rt]!.push(c.group_wall_ms ?? 0);
        console.error(`bench: ${label} ${rt} run ${i + 1}: first result ${secs(c.boot_ms)}, boot ${secs(c.group_wall_ms ?? 0)} (load ${loadavg()[0]!.toFixed(1)})`);
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    }
  }
  for (const rt of ['qemu', 'virtme']) {
    if (boot[rt]!.length) rows.push(`| ${label} | ${rt === 'qemu' ? "lockstep's QEMU boot" : 'vng --run'} | ${secs(median(boot[rt]!))} | ${secs(median(wall[rt]!))} | ${boot[rt]!.length} |`);
  }
}
console.log('| kernel | runtime | boot to first result (median) | whole boot, one scenario (median) | runs |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);
