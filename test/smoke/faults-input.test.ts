// Bad input through the real CLI: every case exits 2 with exactly one line
// on stderr that names the file (or "command line" / "environment"), the
// field, and the fix. Plus a scan of the sources for anything that could
// hand a string to a shell.

import t from 'tap';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEBIAN_SPEC, lockstep, ROOT, tmp } from '../lib/faults-util.ts';
import { runBatch } from '../lib/cli-batch.ts';

const dir = tmp('input');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const w = (name: string, v: unknown): string => {
  const p = join(dir, name);
  writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v));
  return p;
};
const deb = DEBIAN_SPEC;
const sc = { id: 'good', description: 'x', cpus: 2, ops: [{ op: 'probe' }] };
const goodK = w('good-k.json', deb);
const goodS = w('good-s.json', sc);
const out = join(dir, 'out');
const base = ['run', '--no-builtin-kernels', '--no-builtin-scenarios', '--out', out];

interface Case { name: string; args: string[]; env?: NodeJS.ProcessEnv; line: RegExp }
const cases: Case[] = [];
const kcase = (name: string, v: unknown, field: string, problem: RegExp): void => {
  const f = w(`k-${name}.json`, v);
  cases.push({ name: `kernel spec: ${name}`, args: [...base, '--kernel-spec', f, '--scenario-file', goodS], line: new RegExp(`^lockstep run: ${f}: ${field}${problem.source}.*\\. Fix: \\S`) });
};
const scase = (name: string, v: unknown, field: string, problem: RegExp): void => {
  const f = w(`s-${name}.json`, v);
  cases.push({ name: `scenario: ${name}`, args: [...base, '--kernel-spec', goodK, '--scenario-file', f], line: new RegExp(`^lockstep run: ${f}: ${field}${problem.source}.*\\. Fix: \\S`) });
};
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

kcase('not-json', '{"id": "x", ', '', /not valid JSON/);
kcase('wrong-type', { ...deb, version: 6 }, 'version: ', /must be a string, got number 6/);
kcase('unknown-field', { ...deb, colour: 'red' }, 'colour: ', /unknown field/);
kcase('dotdot-id', { ...deb, id: '../etc' }, 'id: ', /invalid value "\.\.\/etc"/);
kcase('shell-package', { ...deb, package: 'linux-image;rm -rf /' }, 'package: ', /contains the shell metacharacter ";"/);
kcase('shell-version', { ...deb, version: '6.1.190`id`' }, 'version: ', /contains the shell metacharacter "`"/);
kcase('subst-package-version', { ...deb, package_version: '$(reboot)' }, 'package_version: ', /contains the shell metacharacter "\$"/);
kcase('dotdot-path', { id: 'img', kind: 'image', version: '6.1.190', path: '/tmp/../etc/passwd' }, 'path: ', /.*contains "\.\."/);
kcase('relative-path', { id: 'img', kind: 'image', version: '6.1.190', path: '../x' }, 'path: ', /.*is a relative path/);
kcase('bad-kind', { ...deb, kind: 'windows' }, 'kind: ', /unknown kind "windows"/);
kcase('bad-sha', { id: 'img', kind: 'image', version: '6.1', url: 'http://x/y', sha256: 'zz' }, 'sha256: ', /.*not a sha256/);
kcase('array-element', [deb, { ...deb, id: 'b', expect: 'V9' }], esc('[1].expect: '), /invalid value "V9"/);
kcase('top-number', 42, '', /a kernel spec must be a JSON object, got number/);
kcase('control-char', { ...deb, description: 'a\u0000b' }, 'description: ', /contains control character U\+0000/);
kcase('missing-version', { id: 'x', kind: 'debian-image', package: 'linux-image-x' }, 'version: ', /.*/);

scase('not-json', '[{', '', /is not valid JSON/);
scase('cpus-string', { ...sc, cpus: '2' }, 'cpus: ', /cpus must be a whole number, got string "2"/);
scase('unknown-field', { ...sc, colour: 1 }, 'colour: ', /unknown field "colour"/);
scase('negative-pages', { ...sc, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: -1 }] }, esc('ops[0].data_pages: '), /data_pages -1 is out of range/);
scase('absurd-cpus', { ...sc, cpus: 100000 }, 'cpus: ', /cpus 100000 is out of range/);
scase('zero-cpus', { ...sc, cpus: 0 }, 'cpus: ', /cpus 0 is out of range/);
scase('dotdot-id', { ...sc, id: '../../etc/passwd' }, 'id: ', /id "\.\.\/\.\.\/etc\/passwd" is not/);
// descriptions never reach a shell (#16 item 7); names do
scase('shell-buffer-name', { ...sc, ops: [{ op: 'map', buf: '$(rm -rf /)', cpu: 0, data_pages: 1 }] }, 'ops\\[0\\]\\.buf: ', /.*shell metacharacter "\$"/);
scase('shell-buffer', { ...sc, ops: [{ op: 'map', buf: 'a;b', cpu: 0, data_pages: 1 }] }, esc('ops[0].buf: '), /.*shell metacharacter ";"/);
scase('shell-sysrq-key', { ...sc, fault_injection: true, ops: [{ op: 'sysrq', key: ';' }] }, esc('ops[0].key: '), /.*shell metacharacter ";"/);
scase('fault-op-unflagged', { ...sc, ops: [{ op: 'hang', seconds: 5 }] }, esc('ops[0].op: '), /"hang" is a fault-injection op/);
scase('no-ops', { ...sc, ops: [] }, 'ops: ', /ops is empty/);
scase('top-array', [1, 2], '', /a scenario must be a JSON object, got array/);
scase('huge-count', { ...sc, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 1, count: 1e9 }] }, esc('ops[0].count: '), /count 1000000000 is out of range/);
scase('fractional-pages', { ...sc, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 1.5 }] }, esc('ops[0].data_pages: '), /.*got 1\.5/);
scase('infinite-number', '{"id":"x","description":"x","cpus":2,"mlock_kb":1e400,"ops":[{"op":"probe"}]}', 'mlock_kb: ', /.*got Infinity/);
scase('cpu-out-of-range', { ...sc, ops: [{ op: 'map', buf: 'a', cpu: 9, data_pages: 1 }] }, esc('ops[0].cpu: '), /CPU 9 does not exist/);
scase('proto-key', '{"__proto__":{"x":1},"id":"x","description":"x","cpus":2,"ops":[{"op":"probe"}]}', '__proto__: ', /unknown field "__proto__"/);

const ok = [...base, '--kernel-spec', goodK, '--scenario-file', goodS];
const flag = (name: string, extra: string[], line: RegExp): void => { cases.push({ name: `flag: ${name}`, args: [...ok, ...extra], line }); };
flag('--jobs 0', ['--jobs', '0'], /^lockstep run: command line: --jobs: "0" is not a whole number in 1\.\.64\. Fix: /);
flag('--timeout -5', ['--timeout', '-5'], /^lockstep run: command line: Option '--timeout' argument is ambiguous\..*Fix: /);
flag('--timeout=-5', ['--timeout=-5'], /^lockstep run: command line: --timeout: "-5" is not a whole number in 5\.\.86400\. Fix: /);
flag('--op-timeout abc', ['--op-timeout', 'abc'], /^lockstep run: command line: --op-timeout: "abc" is not a whole number/);
flag('--kernels x;y', ['--kernels', 'x;y'], /^lockstep run: command line: --kernels: no kernel "x;y"\. Fix: choose from: debian-6\.1\.190$/);
flag('--scenarios ../x', ['--scenarios', '../x'], /^lockstep run: command line: --scenarios: no scenario "\.\.\/x"\. Fix: /);
flag('--accel foo', ['--accel', 'foo'], /^lockstep run: command line: --accel: "foo" is not kvm or tcg\. Fix: /);
flag('unknown flag', ['--bogus'], /^lockstep run: command line: Unknown option '--bogus'.*Fix: /);
cases.push({ name: 'missing spec file', args: [...base, '--kernel-spec', join(dir, 'nope.json'), '--scenario-file', goodS], line: new RegExp(`^lockstep run: ${join(dir, 'nope.json')}: cannot read .*\\(ENOENT\\)\\. Fix: `) });
cases.push({ name: 'missing scenario file', args: [...base, '--kernel-spec', goodK, '--scenario-file', join(dir, 'nope-s.json')], line: new RegExp(`^lockstep run: ${join(dir, 'nope-s.json')}: cannot be read \\(ENOENT\\)\\. Fix: `) });

const env = (name: string, e: NodeJS.ProcessEnv, line: RegExp, args = ok): void => { cases.push({ name: `environment: ${name}`, args, env: e, line }); };
env('LOCKSTEP_QEMU=/nonexistent', { LOCKSTEP_QEMU: '/nonexistent' }, /^lockstep run: environment: LOCKSTEP_QEMU: \/nonexistent cannot be run \(ENOENT\)\. Fix: point LOCKSTEP_QEMU at/);
env('LOCKSTEP_QEMU=/bin/false', { LOCKSTEP_QEMU: '/bin/false' }, /^lockstep run: environment: LOCKSTEP_QEMU: \/bin\/false --version failed \(exit 1\)\. Fix: /);
env('LOCKSTEP_BUSYBOX=/nonexistent', { LOCKSTEP_BUSYBOX: '/nonexistent' }, /^lockstep run: environment: busybox-static \(\/nonexistent\) is missing\. Fix: LOCKSTEP_BUSYBOX=\/nonexistent must name a static busybox binary; unset it to use \/bin\/busybox/);
env('LOCKSTEP_BUSYBOX=/bin/ls (dynamic)', { LOCKSTEP_BUSYBOX: '/bin/ls' }, /^lockstep run: environment: .*\/bin\/ls is dynamically linked.*Fix: LOCKSTEP_BUSYBOX=\/bin\/ls must name a static busybox binary/);
env('LOCKSTEP_EXTRA_CMDLINE with ;', { LOCKSTEP_EXTRA_CMDLINE: 'quiet init=/bin/sh;reboot' }, /^lockstep run: environment: LOCKSTEP_EXTRA_CMDLINE: "init=\/bin\/sh;reboot" is not a plain kernel parameter.*Fix: /);
// A stopped engine leaves no socket to connect to (DOCKER_HOST points where none listens).
env('stopped Docker engine', { DOCKER_HOST: `unix://${join(dir, 'docker.sock')}` },
  /^lockstep run: environment: a running Docker engine \(no socket at unix:\/\/.*dockerd is not running\) is missing\. Fix: start the Docker engine/,
  [...base, '--kernel-spec', w('ct.json', { id: 'host-ct', kind: 'host', runtime: 'container' }), '--scenario-file', goodS]);

t.test('bad input: exit 2, one line naming file, field and fix', async (t) => {
  // Files and flags: every case through main() in one lockstep process per
  // core (test/lib/cli-batch.ts). Environment cases each get a process of
  // their own: lockstep reads the environment (QEMU, busybox, the Docker
  // engine) once per process. Asserted in list order.
  const own = cases.filter((c) => c.env);
  const batched = cases.filter((c) => !c.env);
  const halves = [batched.filter((_, k) => k % 2 === 0), batched.filter((_, k) => k % 2 === 1)];
  const [runs, alone] = await Promise.all([
    Promise.all(halves.map((h) => runBatch(h.map((c) => ({ argv: c.args, env: { LOCKSTEP_ACCEL: 'tcg' } })), { cwd: ROOT, timeoutMs: 300_000 }))),
    Promise.all(own.map((c) => lockstep(c.args, { env: c.env, killAfterMs: 120_000 }))),
  ]);
  const results = new Map<string, { code: number | null; stderr: string }>([
    ...halves.flatMap((h, j) => h.map((c, k) => [c.name, runs[j]![k]!] as const)),
    ...own.map((c, k) => [c.name, alone[k]!] as const),
  ]);
  for (const c of cases) {
    const r = results.get(c.name)!;
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    t.equal(r.code, 2, `${c.name}: exit 2`);
    t.equal(lines.length, 1, `${c.name}: one line\n${r.stderr}`);
    t.match(lines[0], c.line, `${c.name}`);
    t.notMatch(r.stderr, /internal error|TypeError|at .*\.ts:\d+/, `${c.name}: no stack trace`);
  }
  t.notOk(existsSync(join(out, 'results.json')), 'no run started: no results.json written');
});

/** Every .ts / .mjs / .c file of the product (not tests). */
function sources(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = join(d, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sources(p);
    return /\.(ts|mjs|c)$/.test(e.name) ? [p] : [];
  });
}

t.test('no string reaches a shell: the code never uses one', async (t) => {
  const files = [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'bin')), ...sources(join(ROOT, 'harness'))];
  t.ok(files.length > 30, `${files.length} source files`);
  const bad: string[] = [];
  const rules: [RegExp, string][] = [
    [/\bexecSync\s*\(|\bexec\s*\(\s*[`'"]/, 'child_process exec/execSync (runs through /bin/sh)'],
    [/\bshell\s*:\s*(true|['"`])/, 'spawn/execFile with shell'],
    [/\bspawn(Sync)?\s*\(\s*['"`](\/bin\/)?(ba|da)?sh['"`]/, 'spawning a shell'],
    [/\bexecFile(Sync)?\s*\(\s*['"`](\/bin\/)?(ba|da)?sh['"`]/, 'execFile of a shell'],
    [/\b(system|popen)\s*\(/, 'system()/popen() in C'],
    [/import\s*\{[^}]*\bexec\b[^}]*\}\s*from\s*['"]node:child_process['"]/, 'importing exec'],
  ];
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const [re, what] of rules) {
      const lines = text.split('\n');
      lines.forEach((l, k) => { if (re.test(l) && !/^\s*(\/\/|\*|#)/.test(l)) bad.push(`${f.slice(ROOT.length)}:${k + 1}: ${what}: ${l.trim()}`); });
    }
  }
  t.same(bad, [], 'every child process is spawned with an argument array, never a shell');
});

t.test('a misspelt Debian package is bad input, not a BOOT_FAIL cell: exit 2, one line naming the spec file, field and fix', async (t) => {
  const f = w('k-misspelt.json', { ...deb, id: 'misspelt', package: 'linux-image-6.1.0-54-cloud-amd64-unsigend' });
  const o = join(dir, 'out-misspelt');
  const r = await lockstep(['run', '--no-builtin-kernels', '--no-builtin-scenarios', '--kernel-spec', f, '--scenario-file', goodS, '--out', o, '--quiet'], { killAfterMs: 300_000 });
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  t.equal(r.code, 2, r.stderr);
  t.equal(lines.length, 1, r.stderr);
  t.match(lines[0], new RegExp(`^lockstep run: ${esc(f)}: package: the machine's apt sources \\(\\S+\\) has no linux-image-6\\.1\\.0-54-cloud-amd64-unsigend=.*\\. Fix: run \`apt-get update\``));
  // What the run had is kept (here: nothing measured), and no cell pretends the kernel failed to boot.
  const res = JSON.parse(readFileSync(join(o, 'results.json'), 'utf8')) as { complete: boolean; cells: { verdict: string }[] };
  t.equal(res.complete, false, 'the run did not finish');
  t.notOk(res.cells.some((c) => c.verdict === 'BOOT_FAIL' || c.verdict === 'BUILD_FAIL'), 'no BOOT_FAIL/BUILD_FAIL cell for bad input');
});

t.test('list-mode bisect does not retry bad input: exit 2 at once, one error line, no attempt saved', async (t) => {
  const f = w('k-misspelt-bisect.json', [{ ...deb, id: 'misspelt-a', package: 'linux-image-6.1.0-54-cloud-amd64-unsigend' }, { ...deb, id: 'second' }]);
  const o = join(dir, 'out-bisect-misspelt');
  const r = await lockstep(['bisect', '--no-builtin-kernels', '--kernel-spec', f, '--kernels', 'misspelt-a,second', '--no-builtin-scenarios', '--scenario-file', goodS,
    '--scenario', 'good', '--attempts', '3', '--out', o], { killAfterMs: 300_000 });
  t.equal(r.code, 2, r.stderr);
  // progress lines come first; the error is one line, the last
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => /\. Fix: /.test(l));
  t.equal(errors.length, 1, r.stderr);
  t.equal(errors[0], lines[lines.length - 1]);
  t.match(errors[0], new RegExp(`^lockstep bisect: ${esc(f)}: \\[0\\]\\.package: the machine's apt sources .* has no linux-image-6\\.1\\.0-54-cloud-amd64-unsigend=.*\\. Fix: `));
  t.notMatch(r.stderr, /retrying|attempt 2/, 'no second attempt');
  const state = JSON.parse(readFileSync(join(o, 'bisect-state.json'), 'utf8')) as { steps: Record<string, { attempts: unknown[] }> };
  t.same(state.steps['misspelt-a']?.attempts ?? [], [], 'no attempt recorded for bad input');
});
