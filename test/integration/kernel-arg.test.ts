// One-argument kernels: `lockstep run --kernel debian:PKG` boots a Debian
// image under QEMU without a spec file, with --append reaching the guest's
// command line; the argument parser, the bzImage header reader and
// `lockstep --version`. The boot is heavy: run this file under the lock.
// Tier: integration (its subtests moved unchanged from test/kernel-arg.test.ts; the rest is in test/unit/kernel-arg.test.ts).

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveKernelArg } from '../../src/cli/kernel-arg.ts';
import { checkResults } from '../../src/results/schema.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// TCG, as the other VM tests: a KVM probe here can pass while real guests hang in early boot.
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/lockstep.mjs', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 1_500_000, env: { ...process.env, LOCKSTEP_ACCEL: 'tcg' } });
const dir = mkdtempSync(join(tmpdir(), 'lockstep-karg-'));
const PKG = 'linux-image-6.1.0-54-cloud-amd64-unsigned';

t.test(`run --kernel debian:${PKG} boots it, --append reaches the guest`, (t) => {
  const out = join(dir, 'run');
  const r = cli('run', '--kernel', `debian:${PKG}`, '--scenarios', 'baseline,remmap', '--append', 'loglevel=6 lockstep_test_marker=1', '--out', out, '--quiet');
  t.equal(r.status, 0, r.stderr.slice(-2000));
  const res = checkResults(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')), 'results.json');
  t.strictSame(res.kernels.map((k) => k.id), ['deb-6.1.0-54-cloud-amd64']);
  t.equal(res.cells.length, 2);
  for (const c of res.cells) {
    t.equal(c.verdict, 'MATCH', `${c.scenario}: ${c.reason ?? ''}`);
    t.equal(c.kernel_release, '6.1.0-54-cloud-amd64', 'the Debian kernel really booted');
    t.equal(c.runtime, 'qemu');
    const argv = c.qemu_argv ?? [];
    t.match(argv[argv.indexOf('-append') + 1] ?? '', /loglevel=6 lockstep_test_marker=1/, '--append is on the guest command line');
    t.match(c.rerun, /--kernel debian:linux-image-6\.1\.0-54-cloud-amd64-unsigned/, 'the rerun command carries --kernel');
  }
  const con = res.cells[0]!.console_log;
  if (con && existsSync(con)) t.match(readFileSync(con, 'utf8'), /lockstep_test_marker=1/, 'the guest saw it (Command line:)');
  t.ok(existsSync(join(out, 'results.ktap')), 'results.ktap beside results.tap');
  t.end();
});

// A suite other than the machine's: looked up in lockstep's own lists of that
// suite (never the machine's apt sources), as the `source` of a published
// Debian row reads ("debian:PKG=VERSION@SUITE"), so that line re-runs as is.
// Bullseye is past its LTS end: its 5.10 point release no longer moves.
const BULLSEYE = 'linux-image-5.10.0-32-cloud-amd64-unsigned';
t.test(`run --kernel debian:${BULLSEYE}=5.10.223-1@bullseye boots the bullseye kernel on any Debian host`, (t) => {
  const s = resolveKernelArg(`debian:${BULLSEYE}@bullseye`);
  t.match(s, { kind: 'debian-image', package: BULLSEYE, suite: 'bullseye', version: 'latest' }, 'no version: the suite\'s newest, resolved at run start');
  t.match(resolveKernelArg(`debian:${BULLSEYE}=5.10.223-1@bullseye`), { suite: 'bullseye', version: '5.10.223', package_version: '5.10.223-1' });
  t.throws(() => resolveKernelArg(`debian:${BULLSEYE}@buster-lts`), /--kernel debian:.*@buster-lts: suite: "buster-lts" is not a Debian suite name/, 'a name no suite has is refused with the field named');
  const out = join(dir, 'bullseye');
  const r = cli('run', '--kernel', `debian:${BULLSEYE}=5.10.223-1@bullseye`, '--scenarios', 'baseline', '--out', out, '--quiet');
  t.equal(r.status, 0, r.stderr.slice(-2000));
  const res = checkResults(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')), 'results.json');
  t.equal(res.cells[0]?.verdict, 'MATCH', res.cells[0]?.reason ?? '');
  t.equal(res.cells[0]?.kernel_release, '5.10.0-32-cloud-amd64', 'the bullseye kernel really booted');
  t.match(res.kernels[0], { resolution: { suite: 'bullseye', package: BULLSEYE, package_version: '5.10.223-1' } });
  const bad = cli('run', '--kernel', `debian:${BULLSEYE}=5.10.999-1@bullseye`, '--scenarios', 'baseline', '--out', join(dir, 'bad'), '--quiet');
  t.equal(bad.status, 2, 'a version the suite lacks is a user error (exit 2)');
  t.match(bad.stderr, /bullseye/, bad.stderr.slice(-600));
  t.end();
});
