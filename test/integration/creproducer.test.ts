// repro.c for every built-in scenario (issue 28): generated from the op
// script and the model's predictions, it compiles static with gcc and clang
// (-Wall -Wextra -Werror), the kernel's scripts/checkpatch.pl (taken at test
// time from Debian's linux-source tarball, never committed) finds 0 errors
// and 0 warnings, its op table carries simulate()'s values op by op, and,
// run as an unprivileged uid, it changes nothing and skips with the
// kselftest code 4 and a KTAP plan. Running it as root in guests is the
// integration tier's job.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { type Logic, logicLabel, simulate } from '../../src/model/index.ts';
import { generateCReproducer } from '../../src/export/creproducer.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { kernelTools, parseKtap } from '../lib/kunit.ts';
import { runOnCores } from '../lib/on-cores.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-crepro-'));
chmodSync(dir, 0o755);
const V3: Logic = { accounting: 'V3', counter: 'shared' };
const OTHERS: Logic[] = [{ accounting: 'V0', counter: 'shared' }, { accounting: 'V4', counter: 'perf' }];
const scenarios = builtinScenarios().map((l) => l.compiled);

let tools: ReturnType<typeof kernelTools> | undefined;

function generate(id: string): string {
  const s = scenarios.find((x) => x.id === id)!;
  return generateCReproducer({
    scenario: s, reference: { logic: V3, expected: simulate(s, V3) },
    others: OTHERS.map((l) => ({ logic: l, expected: simulate(s, l) })),
    title: `perf_mmap: ${id} against ${logicLabel(V3)}`, notes: ['', 'a note line'],
  });
}

t.test('all 27 built-in scenarios export', (t) => {
  t.equal(scenarios.length, 27);
  for (const s of scenarios) writeFileSync(join(dir, `${s.id}.c`), generate(s.id));
  t.end();
});

t.test('each compiles static with gcc and clang, -Wall -Wextra -Werror', async (t) => {
  const builds = scenarios.flatMap((s) => ['gcc', 'clang'].map((cc) => ({ id: s.id, cc, out: join(dir, `${s.id}-${cc}`) })));
  const runs = await runOnCores(builds.map((b) => [b.cc, '-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', b.out, join(dir, `${b.id}.c`)]));
  builds.forEach((b, k) => {
    t.equal(runs[k]!.code, 0, `${b.cc} ${b.id}: ${runs[k]!.stderr}`);
    if (b.cc === 'gcc') chmodSync(b.out, 0o755);
  });
});

t.test('checkpatch.pl --no-tree -f: 0 errors, 0 warnings', async (t) => {
  tools ??= kernelTools();
  const runs = await runOnCores(scenarios.map((s) => ['perl', tools!.checkpatch, '--no-tree', '-f', join(dir, `${s.id}.c`)]));
  scenarios.forEach((s, k) => {
    const r = runs[k]!;
    t.match(r.stdout, /^total: 0 errors, 0 warnings, \d+ lines checked$/m, `${s.id}: ${r.stdout.split('\n').filter((l) => /^(WARNING|ERROR)/.test(l)).slice(0, 5).join('; ')}`);
    t.equal(r.code, 0, s.id);
  });
});

t.test("the op table carries the model's prediction for every op", (t) => {
  for (const s of scenarios) {
    const c = generate(s.id);
    const rows = [...c.matchAll(/^\t\{ OP_([A-Z_]+), (-?\d+), (-?\d+), (-?\d+), (-?\d+), ([01]), (\w+), (-?\d+), (-?\d+), (-?\d+),$/gm)];
    const e = simulate(s, V3);
    t.equal(rows.length, s.ops.length, `${s.id}: one row per op`);
    const bad = rows.map((m, k) => {
      const want = [e[k]!.ok ? '1' : '0', e[k]!.errno || '0', String(e[k]!.pinned), String(e[k]!.headroom ?? -1)];
      const got = [m[6], m[7], m[8], m[9]];
      return JSON.stringify(got) === JSON.stringify(want) ? null : `op ${k} (${s.ops[k]!.op}): ${got.join(' ')} != ${want.join(' ')}`;
    }).filter(Boolean);
    t.strictSame(bad, [], s.id);
    t.match(c, new RegExp(`^#define NOPS ${s.ops.length}$`, 'm'));
    t.match(c, /V4\/perf: (ok|EPERM|ENOMEM|EINVAL|EBUSY) VmPin \d+ pages/, `${s.id}: other logics in comments`);
  }
  t.end();
});

t.test('as an unprivileged uid it changes nothing: one skipped KTAP test, exit 4 (KSFT_SKIP)', (t) => {
  tools ??= kernelTools();
  for (const id of ['incident', 'baseline', 'cpu-offline', 'fd-handoff']) {
    const bin = join(dir, `${id}-gcc`);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', bin], { encoding: 'utf8', timeout: 60_000 });
    if (r.error) throw r.error;
    t.equal(r.status, 4, `${id}: ${r.stdout}`);
    t.match(r.stdout, new RegExp(`^KTAP version 1\\n1\\.\\.1\\nok 1 ${id} # SKIP (needs \\d+ online CPUs|run as root)`), id);
    writeFileSync(join(dir, `${id}.ktap`), r.stdout);
    const { tree } = parseKtap(tools.kunit, join(dir, `${id}.ktap`));
    t.equal(tree.errors, 0, `${id}: kunit_parser reads it with no error`);
    t.equal(tree.subtests[0]?.status, 'SKIPPED');
  }
  t.end();
});

t.test('fault-injection ops are refused with a one-line ConfigError', (t) => {
  const s = { ...scenarios.find((x) => x.id === 'baseline')!, ops: [{ op: 'hang' as const, seconds: 1 }] };
  t.throws(() => generateCReproducer({ scenario: s, reference: { logic: V3, expected: simulate(s, V3) }, others: [], title: 'x', notes: [] }), ConfigError);
  t.end();
});
