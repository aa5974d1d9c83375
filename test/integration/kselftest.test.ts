// `lockstep export kselftest`: five scenarios as a selftest directory
// (Makefile with TEST_GEN_PROGS, config, settings, one .c each) that
// `make -C DIR` builds standalone; the expected values are the model's for
// the kernel version named (remmap: V3 on 6.1.190, V4's re-mmap charge on
// 6.15.0); the programs skip (exit 4) unprivileged; bad input is one line,
// exit 2, and a directory with other files is not written into.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { logicForVersion } from '../../src/export/kselftest.ts';
import { linuxSourceTarball } from '../lib/kunit.ts';
import { ConfigError } from '../../src/util/errors.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/lockstep.mjs', ...args], { cwd: ROOT, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'lockstep-kselftest-'));
chmodSync(dir, 0o755);
const FIVE = ['baseline', 'remmap', 'incident', 'cpu-offline', 'fd-handoff'];

t.test('five scenarios: the directory, and make -C DIR builds every program', (t) => {
  const out = join(dir, 'v6.1');
  const r = cli('export', 'kselftest', ...FIVE, '--out', out, '--kernel-version', '6.1.190');
  t.equal(r.status, 0, r.stderr);
  t.strictSame(readdirSync(out).sort(), [...FIVE.map((id) => `${id}.c`), 'Makefile', 'config', 'settings'].sort());
  const mk = readFileSync(join(out, 'Makefile'), 'utf8');
  t.match(mk, new RegExp(`^TEST_GEN_PROGS := ${FIVE.join(' ')}$`, 'm'));
  t.match(mk, /^include \.\.\/lib\.mk$/m, 'lib.mk inside a kernel tree');
  t.match(readFileSync(join(out, 'config'), 'utf8'), /^CONFIG_PERF_EVENTS=y\nCONFIG_HOTPLUG_CPU=y\n$/, 'cpu-offline needs CPU hotplug');
  t.match(readFileSync(join(out, 'settings'), 'utf8'), /^timeout=\d+\n$/);
  const make = spawnSync('make', ['-C', out], { encoding: 'utf8' });
  t.equal(make.status, 0, make.stderr);
  for (const id of FIVE) {
    t.ok(existsSync(join(out, id)), `${id} built`);
    const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', join(out, id)], { encoding: 'utf8', timeout: 60_000 });
    t.equal(run.status, 4, `${id} skips unprivileged: ${run.stdout}`);
  }
  const again = cli('export', 'kselftest', ...FIVE, '--out', out, '--kernel-version', '6.1.190');
  t.equal(again.status, 0, 're-export over its own files and built programs');
  t.end();
});

t.test("inside a kernel tree it builds with the selftests' own lib.mk", (t) => {
  const tarball = linuxSourceTarball();
  if (!tarball) throw new Error('no /usr/src/linux-source-*.tar.xz: run .ci/setup.sh');
  const top = tarball.replace(/^.*\//, '').replace(/\.tar\.xz$/, '');
  const want = ['lib.mk', 'kselftest.h', 'kselftest_harness.h'].map((f) => `${top}/tools/testing/selftests/${f}`).concat(`${top}/scripts/subarch.include`);
  const x = spawnSync('tar', ['-xJf', tarball, '-C', dir, '--', ...want], { encoding: 'utf8' });
  t.equal(x.status, 0, x.stderr);
  const out = join(dir, top, 'tools/testing/selftests/perf_mmap');
  t.equal(cli('export', 'kselftest', 'baseline', 'remmap', '--out', out, '--kernel-version', '6.1.190').status, 0);
  const make = spawnSync('make', ['-C', out], { encoding: 'utf8' });
  t.equal(make.status, 0, make.stderr);
  t.match(make.stdout, /-static\s+baseline\.c\s+-o \S*perf_mmap\/baseline/, "lib.mk's rule built it");
  t.ok(existsSync(join(out, 'baseline')) && existsSync(join(out, 'remmap')));
  t.end();
});

t.test('the expected values follow --kernel-version', (t) => {
  const v4 = join(dir, 'v6.15');
  t.equal(cli('export', 'kselftest', 'remmap', '--out', v4, '--kernel-version', '6.15.0').status, 0);
  const old = readFileSync(join(dir, 'v6.1', 'remmap.c'), 'utf8');
  const neu = readFileSync(join(v4, 'remmap.c'), 'utf8');
  t.match(old, /^#define REF_LOGIC "V3\/perf"$|^#define REF_LOGIC "V3\/shared"$/m);
  t.match(neu, /^#define REF_LOGIC "V4\//m);
  const table = (c: string) => c.split('\n').filter((l) => l.startsWith('\t{ OP_'));
  t.equal(table(old).length, table(neu).length);
  t.not(table(old).join('\n'), table(neu).join('\n'), 'V4 predicts other values for the re-mmaps');
  t.strictSame(logicForVersion('6.15.0').accounting, 'V4');
  t.strictSame(logicForVersion('5.4.0').accounting, 'V1a');
  t.end();
});

t.test('bad input: one line, exit 2; a foreign directory is left alone', (t) => {
  const cases: [string[], RegExp][] = [
    [['nosuch', '--out', join(dir, 'x'), '--kernel-version', '6.1.190'], /no built-in scenario "nosuch"/],
    [['baseline', '--out', join(dir, 'x'), '--kernel-version', 'banana'], /--kernel-version: "banana" is not a kernel version/],
    [['baseline', '--kernel-version', '6.1.190'], /--out: missing/],
    [['baseline', '--out', join(dir, 'x')], /--kernel-version: missing/],
  ];
  for (const [args, re] of cases) {
    const r = cli('export', 'kselftest', ...args);
    t.equal(r.status, 2, args.join(' '));
    t.match(r.stderr, re);
    t.equal(r.stderr.trim().split('\n').length, 1);
  }
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  const r = cli('export', 'kselftest', 'baseline', '--out', foreign, '--kernel-version', '6.1.190');
  t.equal(r.status, 2);
  t.strictSame(readdirSync(foreign), ['notes.txt'], 'nothing written');
  t.throws(() => logicForVersion('x'), ConfigError);
  t.end();
});
