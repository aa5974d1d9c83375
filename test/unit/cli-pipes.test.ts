// Every command survives a reader that goes away (`lockstep ... | head -1`):
// real child processes whose stdout pipe is closed before they write, and a
// real shell pipeline. Exit 0 (the command's own code), nothing on stderr
// about EPIPE, and a command that writes files still writes them.

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'lockstep.mjs');

/** Run lockstep with its stdout (and optionally stderr) pipe closed by the reader at once. */
function closedPipe(args: string[], closeStderr = false): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((done, fail) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    // the parent's read end goes away before the child (a second or more of start-up) writes a byte
    c.stdout.destroy();
    let stderr = '';
    if (closeStderr) c.stderr.destroy();
    else c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    c.on('error', fail);
    c.on('close', (code, signal) => done({ code, signal, stderr }));
  });
}

const COMMANDS: string[][] = [
  ['simulate', 'remmap', '--logic', 'V4'],
  ['simulate', 'remmap', '--logic', 'all'],
  ['simulate', 'rlimit-sweep', '--logic', 'V3', '--json'],
  ['simulate', 'incident', '--logic', 'all', '--json'],
  ['scenarios', 'list'],
  ['--help'],
  ['simulate', '--help'],
  ['scenarios', 'list', '--help'],
  ['--version'],
  ['kernels', 'list'],
  ['table', 'results'],
  ['diff', 'results', 'results'],
];

t.test('a closed stdout: exit 0 and no EPIPE stack trace, command by command', async (t) => {
  // three at a time (each is a node start-up and little else); asserted in list order
  const results: Awaited<ReturnType<typeof closedPipe>>[] = [];
  for (let k = 0; k < COMMANDS.length; k += 3) results.push(...(await Promise.all(COMMANDS.slice(k, k + 3).map((a) => closedPipe(a)))));
  for (const [k, args] of COMMANDS.entries()) {
    const r = results[k]!;
    t.equal(r.signal, null, `${args.join(' ')}: not killed by a signal`);
    t.equal(r.code, 0, `${args.join(' ')}: exit 0`);
    t.notMatch(r.stderr, /EPIPE|Unhandled 'error' event|\n\s+at /, `${args.join(' ')}: nothing on stderr about the pipe (${r.stderr.slice(0, 200)})`);
  }
});

t.test('report --tap with stdout and stderr closed still writes every report file', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'lockstep-pipes-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await closedPipe(['report', 'results', '--tap', '--out', out], true);
  t.equal(r.code, 0, 'exit 0');
  for (const f of ['results.json', 'table.md', 'report.html', 'junit.xml', 'results.tap', 'results.ktap']) t.ok(existsSync(join(out, f)), `${f} written`);
});

t.test('the shell pipeline of the report: lockstep simulate remmap --logic V4 | head -1', (t) => {
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" simulate remmap --logic V4 | head -1; echo "status \${PIPESTATUS[0]}"`], { cwd: ROOT, encoding: 'utf8' });
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 2, 'one line through head, then the status');
  t.match(lines[0]!, /^remmap under V4\/shared: /);
  t.equal(lines[1], 'status 0', 'lockstep exited 0');
  t.notMatch(r.stderr, /EPIPE|\n\s+at /, 'no stack trace');
  t.end();
});

t.test('an error on stdout other than a closed pipe is not swallowed: a full disk fails the command in one line', { skip: !existsSync('/dev/full') && 'no /dev/full here' }, (t) => {
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" scenarios list > /dev/full`], { cwd: ROOT, encoding: 'utf8' });
  t.equal(r.status, 1, 'ENOSPC is an error: exit 1');
  t.match(r.stderr, /^lockstep: cannot write stdout: ENOSPC/, 'said in one line');
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.end();
});
