// report.txt's syzbot-layout header: HEAD commit and git tree for a git
// build, the compiler from the kernel's own banner (its boot console or
// /proc/version), `console output:` only where it points somewhere real (a
// copy beside the report, or the URL under --artifact-base-url), and a
// Reported-by: tag when the reporter is named. The CLI runs on a copy of
// the published run with a console log written for one cell.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilerFromBanner, gitSource } from '../../src/export/bugreport.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/lockstep.mjs', ...args], { cwd: ROOT, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'lockstep-bugreport-header-'));
const BANNER = '[    0.000000] Linux version 6.1.0-54-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.190-1 (2026-10-01)';

t.test('compiler from a kernel banner', (t) => {
  t.equal(compilerFromBanner(`noise\n${BANNER}\nmore`), 'gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40');
  t.equal(compilerFromBanner('Linux version 6.12.0 (u@h) (Debian clang version 16.0.6 (15), Debian LLD 16.0.6) #1 SMP'), 'Debian clang version 16.0.6 (15), Debian LLD 16.0.6');
  t.equal(compilerFromBanner('no banner here'), null);
  t.equal(compilerFromBanner('Linux version 6.1 (u@h) #1 SMP'), null, 'a banner without a compiler');
  t.end();
});

t.test('git tree and HEAD commit only from a git source', (t) => {
  const sha = 'a'.repeat(40);
  t.strictSame(gitSource(`git:https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git@${sha}`), { tree: 'https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git', commit: sha });
  t.equal(gitSource('debian:linux-image-6.1.0-54-cloud-amd64-unsigned=6.1.190-1'), null);
  t.equal(gitSource('git:https://x/y.git@v6.1'), null, 'a ref that is not a commit');
  t.equal(gitSource(null), null);
  t.end();
});

/** A copy of the published run; with `log`, the cell's console log exists beside it. */
function run(name: string, log: boolean): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  copyFileSync(join(ROOT, 'results/results.json'), join(d, 'results.json'));
  const r = JSON.parse(readFileSync(join(d, 'results.json'), 'utf8'));
  const c = r.cells.find((x: any) => x.kernel === 'debian-6.1.190' && x.scenario === 'remmap');
  if (log) {
    mkdirSync(dirname(join(d, c.console_log)), { recursive: true });
    writeFileSync(join(d, c.console_log), `SeaBIOS\n${BANNER}\nlockstep: done\n`);
  }
  return d;
}

t.test('the CLI: compiler, console output, Reported-by', (t) => {
  const d = run('with-log', true);
  const r = cli('bugreport', 'debian-6.1.190:remmap', d, '--out', join(d, 'out'), '--reported-by', 'Jane Doe <jane@example.org>');
  t.equal(r.status, 0, r.stderr);
  const rep = readFileSync(join(d, 'out', 'report.txt'), 'utf8');
  t.match(rep, /^compiler: {7}gcc-12 \(Debian 12\.2\.0-14\+deb12u1\) 12\.2\.0, GNU ld \(GNU Binutils for Debian\) 2\.40$/m);
  t.match(rep, /^console output: console\.log \(beside this report\)$/m);
  t.equal(readFileSync(join(d, 'out', 'console.log'), 'utf8'), `SeaBIOS\n${BANNER}\nlockstep: done\n`, 'the log is there');
  t.match(rep, /^Reported-by: Jane Doe <jane@example\.org>$/m);
  t.notMatch(rep, /^HEAD commit:/m, 'a Debian package has no commit');
  t.notMatch(rep, /compiler: +not recorded/);

  const u = cli('bugreport', 'debian-6.1.190:remmap', d, '--out', join(d, 'out-url'), '--artifact-base-url', 'https://ci.example.org/runs/42');
  t.equal(u.status, 0, u.stderr);
  t.match(readFileSync(join(d, 'out-url', 'report.txt'), 'utf8'), /^console output: https:\/\/ci\.example\.org\/runs\/42\/logs\/debian-6\.1\.190%402cpu\/console\.log$/m);
  t.notOk(existsSync(join(d, 'out-url', 'console.log')), 'no copy needed');
  t.end();
});

t.test('no log, no compiler known: the lines are left out, not filled with placeholders', (t) => {
  const d = run('no-log', false);
  const r = cli('bugreport', 'debian-6.1.190:remmap', d, '--out', join(d, 'out'));
  t.equal(r.status, 0, r.stderr);
  const rep = readFileSync(join(d, 'out', 'report.txt'), 'utf8');
  t.notMatch(rep, /^console output:/m);
  t.notMatch(rep, /^compiler:/m);
  t.notMatch(rep, /^Reported-by:/m);
  t.end();
});

t.test('bad flags: one line, exit 2', (t) => {
  const d = run('bad', false);
  for (const [flag, value] of [['--reported-by', 'jane@example.org'], ['--reported-by', 'Jane <a@b>\nX'], ['--artifact-base-url', 'http://x/'], ['--artifact-base-url', 'file:///x']]) {
    const r = cli('bugreport', 'debian-6.1.190:remmap', d, '--out', join(d, 'out'), flag!, value!);
    t.equal(r.status, 2, `${flag} ${JSON.stringify(value)}`);
    t.equal(r.stderr.trim().split('\n').length, 1);
    t.match(r.stderr, flag!);
  }
  t.end();
});
