// Fuzz of the whole command line (issue 26): random argument vectors, built
// with fast-check from each command's own option table, run in-process
// through main() over EVERY command of `lockstep --help` (and a few heads
// that are not commands). Per vector it asserts: the exit code is 0, 1, 2 or
// 3 (bisect-step: 0 or 255, its "stop git bisect run" code), no stack trace
// on stderr or stdout, no file written outside the scratch directory, no
// process started, no network connection; over the run, nothing changed in
// the repository and no process left behind.
//
// Nothing can boot, build, download or touch the host: while a vector runs,
// child_process, net/dns/fetch and every fs call that writes are wrapped
// (module.syncBuiltinESMExports, so ESM named imports see the wrappers): a
// spawn (but a read-only dpkg-query -W, apt-cache madison or gcc --version), a connection
// or a write outside the scratch directory is refused
// (it throws) and recorded as a finding. And each command that would measure,
// build or download gets a suffix that the command refuses before any of
// that (SAFE_SUFFIX below), after every other input of the vector was read
// and checked; for `run` that suffix is `--attempts 0`, its dry run.
//
// LOCKSTEP_FUZZ_RUNS sets the vector count (default 500, the unit tier's
// share; the issue's figure is 10,000), LOCKSTEP_FUZZ_SEED the seed.

import childProcess from 'node:child_process';
import dns from 'node:dns';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import t from 'tap';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FULL = join(ROOT, 'results', 'results.json');
const RUNS = Number(process.env.LOCKSTEP_FUZZ_RUNS ?? 500);
const SEED = Number(process.env.LOCKSTEP_FUZZ_SEED ?? 26);
const STACK_RE = /^\s+at .+[:(]\d+:\d+\)?$|internal error/m;
const realExecFileSync = childProcess.execFileSync;
const scratch = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'lockstep-cli-fuzz-')));
t.teardown(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * The commands that would measure, build, download or run something, and
 * what makes each refuse before it does (the last word wins for a flag that
 * is given twice; after `--` every word is a positional, which these refuse).
 * Every other command only reads its inputs and writes into its --out (here:
 * inside the scratch directory). A command in neither list fails the test.
 */
const SAFE_SUFFIX: Record<string, string[]> = {
  run: ['--attempts', '0'], // the dry run: every input and the output directory checked, the plan printed, nothing booted
  classify: ['--jobs', '0'], // a fresh run is refused before anything is loaded; DIR|results.json is read and classified in full
  bisect: ['--kernels', 'fuzz-no-such-kernel'], // refused after --scenario and the scenarios, before any state or git
  'bisect-step': ['--scenario', 'fuzz-no-such-scenario'], // refused before the build and the state (exit 255)
  host: ['--', 'fuzz-extra'], // host takes no argument: refused before any probe
  'kernels fetch': ['--', 'fuzz-no-such-kernel'], // every id is looked up before the first download
  'kernels build': ['--', 'fuzz-no-such-kernel'], // the same, before the first build
  'kernels news': ['--suites', 'fuzz/no-such-suite'], // every flag is checked before the mirror is asked
};
const PURE = ['simulate', 'kernels list', 'kernels compat', 'scenarios list', 'table', 'report', 'diff', 'merge', 'explain', 'export kcidb', 'export ktap', 'export kselftest', 'bugreport', 'schema'];
/** Option words never generated: `schema --write` regenerates the repository's schemas/, `report --screenshot` starts Chromium. */
const NEVER = new Set(['--write', '--screenshot']);

// ---------------------------------------------------------------------------
// Guards: while `armed`, refuse and record spawns, connections and writes outside `scratch`.

let armed = false;
let findings: string[] = [];
const inScratch = (p: unknown): boolean => {
  if (typeof p === 'number') return true; // a descriptor: opened (and checked) before
  const s = p instanceof URL ? fileURLToPath(p) : Buffer.isBuffer(p) ? p.toString() : String(p);
  const abs = resolve(s);
  return abs === scratch || abs.startsWith(`${scratch}/`) || abs === '/dev/null';
};
const refuse = (what: string): Error => {
  findings.push(what);
  return Object.assign(new Error(`fuzz guard: ${what}`), { code: 'EPERM' });
};
const writeFlags = (f: unknown): boolean =>
  typeof f === 'number' ? (f & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_APPEND)) !== 0
    : typeof f === 'string' && /[wa+]/.test(f);

/**
 * The processes a vector may start: local, read-only queries that end by
 * themselves: `dpkg-query -W` (is a base source package installed),
 * `apt-cache madison` (the versions of a --kernel debian:PKG), `gcc --version`
 * (the compiler a source kernel's cache key names; `kernels list`).
 */
const readOnlyQuery = (file: unknown, args: unknown): boolean =>
  Array.isArray(args) && ((file === 'dpkg-query' && args[0] === '-W') || (file === 'apt-cache' && args[0] === 'madison')
    || (typeof file === 'string' && /^([a-z0-9_]+-)*(gcc|clang)(-\d+)?$/.test(file) && args.length === 1 && args[0] === '--version'));
let queries = 0;

/** Wrap `obj[name]` so that, armed, a call whose path argument(s) `paths(args)` leave the scratch directory throws. */
function guardFs(obj: Record<string, unknown>, name: string, paths: (a: unknown[]) => unknown[]): void {
  const orig = obj[name];
  if (typeof orig !== 'function') return;
  obj[name] = function (this: unknown, ...a: unknown[]) {
    if (armed) {
      const out = paths(a).filter((p) => p !== undefined && !inScratch(p));
      if (out.length) throw refuse(`fs.${name}(${out.map((p) => JSON.stringify(String(p))).join(', ')}) outside the scratch directory`);
    }
    return (orig as (...x: unknown[]) => unknown).apply(this, a);
  };
}

function installGuards(): void {
  const first = (a: unknown[]) => [a[0]];
  const two = (a: unknown[]) => [a[0], a[1]];
  const fsObj = fs as unknown as Record<string, unknown>;
  const promises = fs.promises as unknown as Record<string, unknown>;
  for (const o of [fsObj, promises]) {
    for (const n of ['writeFile', 'appendFile', 'mkdir', 'mkdtemp', 'rm', 'rmdir', 'unlink', 'truncate', 'chmod', 'chown', 'utimes', 'lchown', 'lutimes']) guardFs(o, n, first);
    for (const n of ['writeFileSync', 'appendFileSync', 'mkdirSync', 'mkdtempSync', 'rmSync', 'rmdirSync', 'unlinkSync', 'truncateSync', 'chmodSync', 'chownSync', 'utimesSync', 'createWriteStream']) guardFs(o, n, first);
    for (const n of ['rename', 'renameSync', 'copyFile', 'copyFileSync', 'cp', 'cpSync', 'link', 'linkSync']) guardFs(o, n, two);
    for (const n of ['symlink', 'symlinkSync']) guardFs(o, n, (a) => [a[1]]);
    for (const n of ['open', 'openSync']) guardFs(o, n, (a) => (writeFlags(a[1]) ? [a[0]] : []));
  }
  // no process but the read-only queries `kernels list` and `run --kernel debian:PKG` make
  const cp = childProcess as unknown as Record<string, unknown>;
  for (const n of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
    const orig = cp[n] as (...x: unknown[]) => unknown;
    cp[n] = function (this: unknown, ...a: unknown[]) {
      if (armed && readOnlyQuery(a[0], a[1])) queries++;
      else if (armed) throw refuse(`child_process.${n}(${JSON.stringify(a[0])}${Array.isArray(a[1]) ? ` ${JSON.stringify(a[1]).slice(0, 200)}` : ''})`);
      return orig.apply(this, a);
    };
  }
  // no network: TCP, UDP-less DNS, unix sockets (docker), fetch
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (this: net.Socket, ...a: unknown[]) {
    if (armed) throw refuse(`net connect ${JSON.stringify(a[0]).slice(0, 200)}`);
    return (connect as (...x: unknown[]) => net.Socket).apply(this, a);
  } as typeof connect;
  for (const o of [dns as unknown as Record<string, unknown>, dns.promises as unknown as Record<string, unknown>]) {
    for (const n of ['lookup', 'resolve', 'resolve4', 'resolve6']) {
      const orig = o[n] as (...x: unknown[]) => unknown;
      o[n] = function (this: unknown, ...a: unknown[]) {
        if (armed) throw refuse(`dns.${n}(${JSON.stringify(a[0])})`);
        return orig.apply(this, a);
      };
    }
  }
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((...a: Parameters<typeof fetch>) => {
    if (armed) return Promise.reject(refuse(`fetch(${JSON.stringify(String(a[0]))})`));
    return realFetch(...a);
  }) as typeof fetch;
  syncBuiltinESMExports();
}

/** main(argv), armed, with stdout and stderr captured and the process state it touches restored; 60 s at most. */
async function inProcess(main: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const env = { ...process.env };
  const listeners = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };
  const realOut = process.stdout.write.bind(process.stdout);
  const realErr = process.stderr.write.bind(process.stderr);
  let out = '';
  let err = '';
  process.stdout.write = ((c: string | Uint8Array) => { out += String(c); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => { err += String(c); return true; }) as typeof process.stderr.write;
  let timer: NodeJS.Timeout | undefined;
  armed = true;
  try {
    const code = await Promise.race([
      main(argv).catch((e: Error) => { err += `internal error (thrown out of main): ${e.stack}`; return 1; }),
      new Promise<number>((res) => { timer = setTimeout(() => { err += 'did not finish in 60 s'; res(-1); }, 60_000); }),
    ]);
    return { code, out, err };
  } finally {
    armed = false;
    clearTimeout(timer);
    process.stdout.write = realOut;
    process.stderr.write = realErr;
    for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
    Object.assign(process.env, env);
    if (process.cwd() !== scratch) process.chdir(scratch);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      for (const l of process.listeners(sig)) if (!listeners[sig].includes(l)) process.off(sig, l);
    }
  }
}

/** Live child processes of `pid` (from /proc). */
function childrenOf(pid: number): string[] {
  const out: string[] = [];
  for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(`${p} ${stat.slice(0, stat.lastIndexOf(')') + 1)}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const gitStatus = (): string => realExecFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=all'], { encoding: 'utf8' });

// ---------------------------------------------------------------------------

t.test(`fuzz: ${RUNS} random argument vectors over every command (seed ${SEED})`, async (t) => {
  // inputs the vectors name, all inside the scratch directory
  const w = (name: string, v: unknown): string => { const p = join(scratch, name); fs.mkdirSync(join(p, '..'), { recursive: true }); fs.writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v)); return p; };
  const full = JSON.parse(fs.readFileSync(FULL, 'utf8')) as { cells: { kernel: string; scenario: string }[]; kernels: { id: string }[] };
  const fullCopy = w('full/results.json', full);
  const shard = w('shard/results.json', { ...full, cells: full.cells.filter((c) => c.kernel === full.kernels[0]!.id) });
  const fifo = join(scratch, 'a.fifo');
  realExecFileSync('mkfifo', ['--', fifo]);
  const file = w('file.txt', 'x');
  const spec = w('spec.json', [{ id: 'fz-img', kind: 'image', path: '/nonexistent/lockstep-fuzz/bzImage', version: '6.1.1', expect: 'auto' }, { id: 'fz-host', kind: 'host', expect: 'V4' }]);
  const scen = w('scen/fz.json', { id: 'fz', description: 'fuzz', cpus: 1, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 8 }, { op: 'probe' }] });
  const policy = w('policy.json', { rules: [{ kernels: '*', note: ['warn'] }] });
  const state = w('state.json', { schema: 'lockstep/bisect-state@1' });
  const cell = full.cells[0]!;

  installGuards();
  const { main } = await import('../../src/cli/main.ts');
  const { COMMANDS } = await import('../../src/cli/commands.ts');
  const names = COMMANDS.map((c) => c.name);
  t.same([...names].sort(), [...PURE, ...Object.keys(SAFE_SUFFIX)].sort(), 'every command of `lockstep --help` is fuzzed, each either pure or with a safe suffix');

  process.chdir(scratch);
  process.env.LOCKSTEP_CACHE = join(scratch, 'cache');
  process.env.LOCKSTEP_ACCEL = 'tcg';
  process.env.HOME = join(scratch, 'home');
  process.env.TMPDIR = join(scratch, 'tmp');
  fs.mkdirSync(process.env.TMPDIR, { recursive: true });
  delete process.env.GITHUB_STEP_SUMMARY;

  const hostile = fc.constantFrom(
    '', '-', '--', '-x', '--frob', '..', '../../x', '/', fifo, file, '/dev/null', join(scratch, 'out'), join(file, 'sub'), fullCopy, join(scratch, 'full'), shard,
    spec, scen, join(scratch, 'scen'), policy, state, scratch, `${cell.kernel}:${cell.scenario}`, 'fz-img', 'fz-host', 'fz', 'host', 'remmap', 'incident', 'debian-6.1.190',
    'ext::sh -c id', '--upload-pack=id', 'http://[::1', 'https://x/y#sha256=zz', 'debian:linux-image-$(id)', '$(touch PWN)', '`id`', "a'b",
    '99999999999999999999T', '1e309', 'NaN', '-1', '0', '1', '2', '0x10', '4097T', 'unlimited', 'V0', 'V9/perf', 'V3/shared', 'all', '1/0', '3/2', '6.1.190', '99999999999999999999.1',
    'x'.repeat(5000), '\u0000', 'line\nbreak', '\u2028', '*', '{a,b}', 'kernel-spec', 'results.json', 'kvm', 'tcg', 'virtme', 'bookworm', 'ktap', 'kcidb', 'results',
  );
  const word = fc.oneof({ weight: 4, arbitrary: hostile }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 300 }).map(String) });
  const common = ['--help', '-h', '--', '--frob', '--out', '--json', '--force', '--kernel-spec', '--scenario-file', '--no-builtin-kernels'];
  const heads: string[][] = [...names.map((n) => n.split(' ')), ['frob'], ['kernels'], ['export'], ['--version'], ['--help'], ['help'], []];
  const label = (head: string[]): string => (COMMANDS.some((c) => c.name === head.join(' ')) ? head.join(' ') : `(${head.join(' ') || 'no arguments'})`);
  const vector = fc.constantFrom(...heads).chain((head) => {
    const c = COMMANDS.find((x) => x.name === head.join(' '));
    const flags = [...new Set([...Object.keys(c?.options ?? {}).map((o) => `--${o}`), ...common])].filter((f) => !NEVER.has(f));
    const flag = fc.constantFrom(...flags);
    // a flag alone, a flag and a value, --flag=value, or a bare word
    const token = fc.oneof(flag.map((f) => [f]), fc.tuple(flag, word).map(([f, x]) => [f, x]), fc.tuple(flag, word).map(([f, x]) => [`${f}=${x}`]), word.map((x) => [x]));
    return fc.array(token, { maxLength: 7 }).map((ts) => ({ name: label(head), argv: [...head, ...ts.flat(), ...(SAFE_SUFFIX[head.join(' ')] ?? [])] }));
  }).filter((v) => !v.argv.some((x) => NEVER.has(x.split('=')[0]!)));

  const childrenBefore = childrenOf(process.pid);
  const repoBefore = gitStatus();
  const failures: string[] = [];
  const exits = new Map<number, number>();
  const perCommand = new Map<string, number>();
  const t0 = Date.now();
  await fc.assert(fc.asyncProperty(vector, async ({ name, argv }) => {
    findings = [];
    perCommand.set(name, (perCommand.get(name) ?? 0) + 1);
    const { code, out, err } = await inProcess(main, argv);
    exits.set(code, (exits.get(code) ?? 0) + 1);
    const allowed = name === 'bisect-step' ? [0, 255] : [0, 1, 2, 3];
    const bad = findings.length ? `guard: ${findings.join('; ')}`
      : !allowed.includes(code) ? `exit ${code}`
        : STACK_RE.test(err) || STACK_RE.test(out) ? 'stack trace' : null;
    if (bad !== null) failures.push(`${bad}: lockstep ${JSON.stringify(argv).slice(0, 600)}: ${err.slice(0, 400)}`);
    return bad === null;
  }), { numRuns: RUNS, seed: SEED, endOnFailure: true }).catch((e: Error) => t.fail(`${failures[0] ?? e.message}`));
  const wall = (Date.now() - t0) / 1000;
  t.same(failures, [], 'per vector: exit 0..3 (bisect-step 0/255), no stack trace, no spawn, no connection, no write outside the scratch directory');
  t.comment(`${RUNS} vectors in ${wall.toFixed(1)} s; exit codes: ${[...exits].sort((a, b) => a[0] - b[0]).map(([c, n]) => `${c}: ${n}`).join(', ')}`);
  t.comment(`read-only package queries let through: ${queries}`);
  t.comment(`per command: ${[...perCommand].sort().map(([c, n]) => `${c}: ${n}`).join(', ')}`);
  t.equal(gitStatus(), repoBefore, 'nothing written into the repository');
  t.notOk(fs.existsSync(join(scratch, 'PWN')), 'no argument reached a shell');
  // tsx's esbuild transform service is a child of this process that a command's first lazy import() may start (src/cli/command.ts): the loader's, not a command's
  t.same(childrenOf(process.pid).filter((c) => !childrenBefore.includes(c) && !/ \(esbuild\)$/.test(c)), [], 'no process left');
  if (RUNS >= 200) for (const n of names) t.ok((perCommand.get(n) ?? 0) > 0, `${n}: fuzzed`);
  process.chdir(ROOT);
});

t.test('the guards refuse and record what the fuzz must never see', async (t) => {
  // installed by the fuzz above; ESM named imports (as src/ uses them) see the wrappers too
  const { writeFile } = await import('node:fs/promises');
  const { spawnSync } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const outside = join(ROOT, 'fuzz-guard-must-not-exist');
  const attempts: [string, () => unknown][] = [
    ['fs/promises writeFile outside', () => writeFile(outside, 'x')],
    ['fs writeFileSync outside', () => writeFileSync(outside, 'x')],
    ['spawnSync', () => spawnSync('true')],
    ['apt-cache other than madison', () => spawnSync('apt-cache', ['update'])],
    ['fetch', () => fetch('http://127.0.0.1:9/')],
    ['net connect', () => net.connect(9, '127.0.0.1')],
  ];
  for (const [what, f] of attempts) {
    findings = [];
    armed = true;
    let threw = false;
    try { await f(); } catch { threw = true; } finally { armed = false; }
    t.ok(threw && findings.length === 1, `${what}: refused and recorded (${findings.join('; ')})`);
  }
  t.notOk(fs.existsSync(outside), 'nothing written');
  armed = true;
  findings = [];
  try { writeFileSync(join(scratch, 'inside.txt'), 'x'); } finally { armed = false; }
  t.same(findings, [], 'a write inside the scratch directory is let through');
});

t.test('run --attempts 0: a dry run that checks everything, prints the plan and boots nothing', async (t) => {
  const { main } = await import('../../src/cli/main.ts');
  const spec = join(scratch, 'dry-spec.json');
  fs.writeFileSync(spec, JSON.stringify({ id: 'dry-img', kind: 'image', path: '/nonexistent/lockstep-fuzz/bzImage', version: '6.1.1', expect: 'auto' }));
  const out = join(scratch, 'dry', 'out');
  findings = [];
  const r = await inProcess(main, ['run', '--no-builtin-kernels', '--kernel-spec', spec, '--scenarios', 'remmap,incident', '--out', out, '--attempts', '0']);
  t.equal(r.code, 0, `exit 0 (${r.err.trim()})`);
  t.match(r.out, /^lockstep run --attempts 0: the plan; nothing is booted, built or downloaded\nkernels \(1\): dry-img \(image\)\nscenarios \(2\): remmap, incident\ncells: 2\n/, 'the plan on stdout');
  t.match(r.out, /output: .*dry\/out \(would be created\)/, 'and where it would write');
  t.notOk(fs.existsSync(join(scratch, 'dry')), 'the output directory is not created');
  t.same(findings, [], 'nothing spawned, connected or written');
  // it refuses what a real run would refuse: a fuller run in --out, an --out that is a file
  fs.mkdirSync(join(scratch, 'dry-full'), { recursive: true });
  fs.copyFileSync(FULL, join(scratch, 'dry-full', 'results.json'));
  const full = await inProcess(main, ['run', '--no-builtin-kernels', '--kernel-spec', spec, '--scenarios', 'remmap', '--out', join(scratch, 'dry-full'), '--attempts', '0']);
  t.equal(full.code, 2, 'exit 2 onto a fuller run');
  t.match(full.err, /holds \d+ measured cell\(s\) the new results lack.*--force/, 'naming the cells it would lose');
  const file = join(scratch, 'dry-file');
  fs.writeFileSync(file, 'x');
  const f = await inProcess(main, ['run', '--no-builtin-kernels', '--kernel-spec', spec, '--scenarios', 'remmap', '--out', file, '--attempts', '0']);
  t.equal(f.code, 2, 'exit 2 for an --out that is a file');
  t.match(f.err, /--out: .*dry-file is a regular file, not a directory/, 'one line saying so');
  const bad = await inProcess(main, ['run', '--attempts', '11']);
  t.match(bad.err, /--attempts: "11" is not a whole number in 0\.\.10/, '--attempts takes 0..10');
});

t.test('bisect-step refuses a bad command line with 255 (git bisect run stops), never 2 (read as "bad")', async (t) => {
  const { main } = await import('../../src/cli/main.ts');
  for (const argv of [['bisect-step', '--frob'], ['bisect-step', 'extra'], ['bisect-step', '--attempts', '0', '--scenario', 'remmap']]) {
    findings = [];
    const { code, err } = await inProcess(main, argv);
    t.equal(code, 255, `${argv.join(' ')}: exit 255 (${err.trim()})`);
    t.same(findings, [], 'nothing spawned or written');
  }
});
