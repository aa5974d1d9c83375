// Hostile input (issue 26): every numbered case of the issue through the real
// CLI (a child process per case, cwd a scratch directory). Pure: no QEMU, no
// network, no kernel build. The fuzz of the whole command line (every
// command, fast-check) is test/unit/cli-fuzz.test.ts; a FIFO or device as
// any input file, test/unit/input-files.test.ts.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minimatch } from 'minimatch';
import t, { type Test } from 'tap';
import { parseSplatPolicy, splatDecider } from '../../src/policy/splats.ts';
import { GIT_ALLOW_PROTOCOL, gitUrlProblem } from '../../src/util/git-url.ts';
import { shellQuote } from '../../src/util/quote.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'lockstep.mjs');
/** The published run the repository ships: a "fuller run" to protect. */
const FULL = join(ROOT, 'results', 'results.json');
/** Its cell count (594 on 7 December 2026), read, so republishing results/ does not break these cases. */
const FULL_CELLS = (JSON.parse(readFileSync(FULL, 'utf8')) as { cells: unknown[] }).cells.length;
const scratch = mkdtempSync(join(tmpdir(), 'lockstep-hostile-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** The real CLI in a child process, cwd `scratch`; SIGKILLed after `killAfterMs` (a blocked CLI fails the case). */
function cli(args: string[], killAfterMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LOCKSTEP_ACCEL: 'tcg', LOCKSTEP_CACHE: join(scratch, 'cache') };
    delete env.GITHUB_STEP_SUMMARY;
    const p = spawn(process.execPath, [BIN, ...args], { cwd: scratch, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const killer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.on('error', reject);
    p.on('close', (code, signal) => { clearTimeout(killer); resolve({ code, signal, stdout, stderr }); });
  });
}

const STACK_RE = /^\s+at .+[:(]\d+:\d+\)?$|internal error/m;

/** Exit 2 with exactly one stderr line, no stack, matching `re`. */
function refused(t: Test, r: Run, re: RegExp, what: string): void {
  t.equal(r.code, 2, `${what}: exit 2 (got ${r.code} ${r.signal ?? ''}: ${r.stderr.slice(0, 300)})`);
  t.notMatch(r.stderr, STACK_RE, `${what}: no stack trace`);
  t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
  t.match(r.stderr, re, `${what}: says why`);
}

/** A kernel whose bzImage does not exist: a run of it fails before any boot, even where a refusal under test is missing. */
const noBootSpec = (): string => writeJson(join(scratch, 'no-boot.json'), { id: 'no-boot', kind: 'image', path: '/nonexistent/lockstep-test/bzImage', version: '6.1.1', expect: 'auto' });
const NO_BOOT = (): string[] => ['--no-builtin-kernels', '--kernel-spec', noBootSpec(), '--scenarios', 'remmap'];

const dir = (name: string): string => { const d = join(scratch, name); mkdirSync(d, { recursive: true }); return d; };
const mkfifo = (path: string): void => { execFileSync('mkfifo', ['--', path]); };
const writeJson = (path: string, v: unknown): string => { writeFileSync(path, typeof v === 'string' ? v : JSON.stringify(v)); return path; };
const full = (): Record<string, unknown> & { cells: { kernel: string; scenario: string; verdict: string }[]; kernels: { id: string }[] } => JSON.parse(readFileSync(FULL, 'utf8'));

/** A copy of the shipped run with only the cells of its first kernel (a shard's worth). */
function partialRun(name: string): string {
  const r = full();
  r.cells = r.cells.filter((c) => c.kernel === r.kernels[0]!.id);
  const d = dir(name);
  writeJson(join(d, 'results.json'), r);
  return d;
}

t.test('1. source.git never reaches git as an option or a remote helper', async (t) => {
  const pwned = join(scratch, 'PWNED');
  for (const git of [`--upload-pack=touch ${pwned}`, `ext::sh -c touch% ${join(scratch, 'EXT')}`, 'fd::3', 'ftp://example.org/linux.git', '-oProxyCommand=x']) {
    const f = writeJson(join(scratch, 'git-spec.json'), { id: 'src', kind: 'source', source: { git, ref: 'main' }, version: '6.1.1', expect: 'auto' });
    refused(t, await cli(['kernels', 'list', '--no-builtin-kernels', '--kernel-spec', f]), /git-spec\.json: source\.git: .*Fix: /, `kernels list, git ${JSON.stringify(git)}`);
    const fetch = await cli(['kernels', 'fetch', 'src', '--no-builtin-kernels', '--kernel-spec', f]);
    t.equal(fetch.code, 2, `kernels fetch refuses ${JSON.stringify(git)}`);
    t.notOk(existsSync(pwned) || existsSync(join(scratch, 'EXT')), 'no command of the spec ran');
  }
  // what stays allowed
  for (const ok of ['https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git', 'git://host/linux.git', 'ssh://git@host/linux.git', 'file:///srv/linux.git', 'git@github.com:torvalds/linux.git']) {
    t.equal(gitUrlProblem(ok), null, `${ok} allowed`);
  }
  t.equal(gitUrlProblem('/srv/linux.git', true), null, 'an absolute path where the caller allows local paths');
  t.not(gitUrlProblem('/srv/linux.git'), null, 'but not elsewhere');
  t.not(gitUrlProblem('https://user:secret@host/x.git'), null, 'no credentials');
  t.same(GIT_ALLOW_PROTOCOL.split(':').sort(), ['file', 'git', 'http', 'https', 'ssh'], 'git itself only speaks these transports');
});

t.test('2. export --out never replaces a device, FIFO or directory', async (t) => {
  const fifo = join(scratch, 'out.fifo');
  mkfifo(fifo);
  const link = join(scratch, 'out-link');
  symlinkSync(fifo, link);
  const d = dir('export-dir');
  for (const [out, kind] of [[fifo, /a FIFO, not a regular file/], [link, /a FIFO, not a regular file/], [d, /a directory, not a regular file/]] as const) {
    for (const fmt of ['ktap', 'kcidb']) refused(t, await cli(['export', fmt, FULL, '--out', out]), kind, `export ${fmt} --out ${out}`);
  }
  t.ok(statSync(fifo).isFIFO(), 'the FIFO is still a FIFO');
  t.ok(statSync(d).isDirectory(), 'the directory is still a directory');
  t.same(readdirSync(d), [], 'and holds nothing');
  // a regular file is replaced, as before
  const file = writeJson(join(scratch, 'old.ktap'), 'old');
  t.equal((await cli(['export', 'ktap', FULL, '--out', file])).code, 0, 'a regular file is replaced');
  t.match(readFileSync(file, 'utf8'), /^KTAP version 1/, 'with the KTAP text');
});

t.test('3. merge, report and run never overwrite a fuller run without --force', async (t) => {
  const shard = partialRun('shard');
  const before = readFileSync(FULL, 'utf8');
  for (const cmd of [['merge', shard], ['report', shard], ['run', ...NO_BOOT()]]) {
    const target = dir(`fuller-${cmd[0]}`);
    writeFileSync(join(target, 'results.json'), before);
    refused(t, await cli([...cmd, '--out', target]), /holds \d+ measured cell\(s\) the new results lack \(kernels .+\); writing would lose them\. Fix: .*--force/, `${cmd[0]} onto a ${FULL_CELLS}-cell run`);
    t.equal(readFileSync(join(target, 'results.json'), 'utf8'), before, `${cmd[0]}: the fuller results.json is untouched`);
  }
  const forced = dir('fuller-forced');
  writeFileSync(join(forced, 'results.json'), before);
  const m = await cli(['merge', shard, '--out', forced, '--force']);
  t.equal(m.code, 0, `merge --force replaces it: ${m.stderr.slice(0, 200)}`);
  t.ok((JSON.parse(readFileSync(join(forced, 'results.json'), 'utf8')) as { cells: unknown[] }).cells.length < FULL_CELLS, 'with the shard');
});

t.test('4. results.json is checked for consistency; diff fails on lost cells', async (t) => {
  const ghost = full();
  ghost.cells[0]!.kernel = 'no-such-kernel';
  refused(t, await cli(['table', writeJson(join(scratch, 'ghost.json'), ghost)]), /cells\[0\]\.kernel: "no-such-kernel" is not in kernels\[\]/, 'a cell naming an unlisted kernel');
  const ghostScenario = full();
  ghostScenario.cells[0]!.scenario = 'no-such-scenario';
  refused(t, await cli(['diff', FULL, writeJson(join(scratch, 'ghost-s.json'), ghostScenario)]), /cells\[0\]\.scenario: "no-such-scenario" is not in scenarios\[\]/, 'a cell naming an unlisted scenario');
  // a kernel id that is a path: bugreport must not write outside its --out
  const trav = full();
  const victim = trav.cells.find((c) => c.verdict === 'MISMATCH') ?? trav.cells[0]!;
  const old = victim.kernel;
  const evil = '../../../escaped';
  trav.kernels.forEach((k) => { if (k.id === old) k.id = evil; });
  trav.cells.forEach((c) => { if (c.kernel === old) c.kernel = evil; });
  const td = dir('trav/a/b');
  writeJson(join(td, 'results.json'), trav);
  const b = await cli(['bugreport', `${evil}:${victim.scenario}`, td]);
  refused(t, b, /kernels\[\d+\]\.id: "\.\.\/\.\.\/\.\.\/escaped" is not an id lockstep writes/, 'bugreport of a kernel id holding ../');
  t.notOk(readdirSync(scratch).some((f) => f.includes('escaped')), 'nothing written outside the results directory');
  // a run that measured nothing never passes against a baseline
  const zero = full();
  zero.cells = [];
  const d = await cli(['diff', FULL, writeJson(join(scratch, 'zero.json'), zero)]);
  t.equal(d.code, 1, `diff of a 0-cell run against ${FULL_CELLS} cells: exit 1`);
  t.match(d.stdout, new RegExp(`${FULL_CELLS} cell\\(s\\) of .* missing from `), 'saying how many cells are missing');
  const j = await cli(['diff', '--json', FULL, join(scratch, 'zero.json')]);
  t.equal((JSON.parse(j.stdout) as { counts: { missing: number } }).counts.missing, FULL_CELLS, '--json counts them');
  t.equal((await cli(['diff', FULL, FULL])).code, 0, 'the same run against itself: exit 0');
});

t.test('5. one line, never a stack trace', async (t) => {
  const file = writeJson(join(scratch, 'a-regular-file'), 'x');
  refused(t, await cli(['report', FULL, '--out', file]), /a regular file, not a directory/, 'report --out FILE');
  refused(t, await cli(['merge', FULL, '--out', file]), /a regular file, not a directory/, 'merge --out FILE');
  const r = full();
  const cell = r.cells.find((c) => c.scenario === 'remmap')!;
  refused(t, await cli(['bugreport', `${cell.kernel}:${cell.scenario}`, FULL, '--out', file]), /a regular file, not a directory/, 'bugreport --out FILE');
  refused(t, await cli(['export', 'ktap', FULL, '--out', dir('ktap-out')]), /a directory, not a regular file/, 'export --out DIR');
  refused(t, await cli(['run', '--kernel', 'http://[::1', '--attempts', '1']), /--kernel: "http:\/\/\[::1": not a valid URL/, "--kernel 'http://[::1'");
  refused(t, await cli(['report', FULL, '--out', join(file, 'sub')]), /--out: .*a-regular-file\/sub is under a file that is not a directory/, 'an unwritable results directory (under a file)');
  refused(t, await cli(['run', ...NO_BOOT(), '--out', join(file, 'sub')]), /--out: .*is under a file that is not a directory/, 'run into an unwritable directory, before any boot');
  // a valid scenario at the schema's limit: 19,990 map calls (and one over it refused)
  const big = writeJson(join(scratch, 'big.json'), { id: 'big', description: 'at the limit', cpus: 1, ops: [{ op: 'map', buf: 'b', cpu: 0, count: 19990, data_pages: 1 }, { op: 'probe' }] });
  const one = await cli(['simulate', 'big', '--scenario-file', big, '--logic', 'V3'], 300_000);
  t.equal(one.code, 0, `simulate, one logic: exit 0 ${one.stderr.slice(0, 200)}`);
  t.match(one.stdout, /refused: map EPERM #\d+-#19990/, 'and its summary line');
  const all = await cli(['simulate', 'big', '--scenario-file', big, '--logic', 'all'], 300_000);
  t.equal(all.code, 0, `simulate --logic all: exit 0 ${all.stderr.slice(0, 200)}`);
  const over = writeJson(join(scratch, 'over.json'), { id: 'over', description: 'over the limit', cpus: 1, ops: [{ op: 'map', buf: 'b', cpu: 0, count: 20001, data_pages: 1 }] });
  refused(t, await cli(['simulate', 'over', '--scenario-file', over, '--logic', 'V3']), /count.*20000|20000/, 'a count over the schema\'s limit is refused at load');
  t.notMatch(one.stderr + all.stderr, STACK_RE, 'no stack trace');
});

t.test('6. sizes that overflow are refused', async (t) => {
  const base = ['explain', '--logic', 'V3', '--cpus', '2', '--rings', '2'];
  refused(t, await cli([...base, '--rlimit-memlock', '99999999999999999999T']), /--rlimit-memlock: "99999999999999999999T" is more than 4398046511104 kB/, 'RLIMIT_MEMLOCK of 1e20 TiB');
  refused(t, await cli([...base, '--rlimit-memlock', '4097T']), /more than/, 'just above 4 PiB');
  t.equal((await cli([...base, '--rlimit-memlock', '4096T'])).code, 0, '4 PiB is taken');
  refused(t, await cli([...base, '--charged', '0x10']), /--charged: "0x10" is not a whole number/, 'a hex count');
});

t.test('7. smaller ones', async (t) => {
  refused(t, await cli(['explain', 'extra', '--logic', 'V3', '--cpus', '2', '--rings', '2']), /unexpected argument "extra"/, 'explain extra');
  refused(t, await cli(['kernels', 'list', 'junk']), /unexpected argument "junk"/, 'kernels list junk');
  refused(t, await cli(['--version', '--frob']), /--version takes no arguments/, '--version --frob');
  refused(t, await cli(['kernels', 'frob']), /unknown subcommand "frob" of "kernels"/, 'kernels frob');
  // duplicate keys: the last one would silently win
  const spec = writeJson(join(scratch, 'dup-spec.json'), '{"id": "a", "kind": "host", "expect": "V0", "expect": "V4"}');
  refused(t, await cli(['kernels', 'list', '--no-builtin-kernels', '--kernel-spec', spec]), /duplicate key "expect"/, 'a spec with a duplicate key');
  const scen = writeJson(join(scratch, 'dup-scen.json'), '{"id": "d", "description": "x", "cpus": 1, "ops": [{"op": "map", "buf": "a", "buf": "b", "cpu": 0, "data_pages": 1}]}');
  refused(t, await cli(['simulate', 'd', '--scenario-file', scen]), /duplicate key "buf" in ops\[0\]/, 'a scenario with a duplicate key');
  const pol = writeJson(join(scratch, 'dup-pol.json'), '{"rules": [{"kernels": "*", "fail": ["warn"], "fail": []}]}');
  refused(t, await cli(['run', '--splat-policy', pol, ...NO_BOOT(), '--out', join(scratch, 'never')]), /duplicate key "fail"/, 'a splat policy with a duplicate key');
  // a FIFO as an input file: refused, not blocking (the child is killed after 60 s)
  const fifo = join(scratch, 'spec.fifo');
  mkfifo(fifo);
  refused(t, await cli(['kernels', 'list', '--kernel-spec', fifo], 60_000), /a FIFO, not a regular file/, 'a FIFO as --kernel-spec');
  refused(t, await cli(['run', '--splat-policy', fifo, ...NO_BOOT(), '--out', join(scratch, 'never')], 60_000), /a FIFO, not a regular file/, 'a FIFO as --splat-policy');
  // a pathological glob: refused when it needs many separate '*', and a run of wildcards matches as minimatch does, compiled once
  t.throws(() => parseSplatPolicy({ rules: [{ kernels: '*a*b*c*d', fail: ['warn'] }] }, 'p.json'), /rules\[0\]\.kernels: has 4 separate "\*"/);
  t.throws(() => parseSplatPolicy({ rules: [{ kernels: '{a,b}{c,d}{e,f}', fail: ['warn'] }] }, 'p.json'), /3 "\{" groups/);
  const glob = '*?*?*?*?*?*?*?*?x';
  const p = parseSplatPolicy({ rules: [{ kernels: '*', note: ['warn'] }, { kernels: glob, fail: ['warn'] }] }, 'p.json');
  for (const id of ['x', 'abcdefgx', 'abcdefghx', 'abcdefghijklx', 'abcdefghijklmnop', 'a'.repeat(60) + 'x']) {
    const want = id.length <= 20 ? minimatch(id, glob) : id.length >= 9 && id.endsWith('x');
    t.equal(splatDecider(p, id).action('warn') === 'fail', want, `${glob} against ${id.length} characters`);
  }
  // re-run commands: quoted for a POSIX shell, read back by sh as the same words
  const words = ['node', 'bin/lockstep.mjs', 'run', '--kernel-spec', "/tmp/a b/it's $(touch x).json", '--append', 'loglevel=7 nokaslr', '--kernels', 'debian-6.1.190'];
  const cmd = shellQuote(words);
  t.equal(execFileSync('sh', ['-c', `printf '%s\\n' ${cmd}`], { encoding: 'utf8' }), `${words.join('\n')}\n`, 'sh reads the quoted command back word for word');
  t.match(cmd, /^node bin\/lockstep\.mjs run --kernel-spec /, 'plain words stay bare');
});
