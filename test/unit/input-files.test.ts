// No FIFO or device as an input file (issue 26): every file or directory a
// user names (--kernel-spec, --scenario-file, --splat-policy, --kernel,
// bisect's --state/--tree/--build-cmd, bugreport's --bisect, kernels news'
// --results, a kernel spec's config fragment and patches, the results.json
// of report, table, diff, merge, classify, export and bugreport) is refused
// with one line naming the option (or file and field) and the fix, exit 2,
// instead of blocking on the open or the read. The cases run through the
// real main() in one child process, SIGKILLed after 120 s (a blocked CLI
// fails, it does not hang the suite). Nothing boots or builds: every kernel
// named is a bzImage path that does not exist, `run` gets --attempts 0 (its
// dry run: past the input checks it only prints a plan), `kernels build`
// --state.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { runBatch, type BatchRun } from '../lib/cli-batch.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'lockstep.mjs');
const FULL = join(ROOT, 'results', 'results.json');
const scratch = mkdtempSync(join(tmpdir(), 'lockstep-inputs-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Every case in one child process (test/lib/cli-batch.ts: main() in-process,
 * cwd `scratch`), SIGKILLed after 120 s: a case that blocks fails itself and
 * every case after it, it does not hang the suite.
 */
const batch = (argvs: string[][]): Promise<BatchRun[]> =>
  runBatch(argvs, { cwd: scratch, env: { ...process.env, LOCKSTEP_ACCEL: 'tcg', LOCKSTEP_CACHE: join(scratch, 'cache') }, timeoutMs: 120_000 });

const fifo = join(scratch, 'in.fifo');
execFileSync('mkfifo', ['--', fifo]);
const fifoDir = join(scratch, 'fifo-dir');
mkdirSync(fifoDir);
execFileSync('mkfifo', ['--', join(fifoDir, 'results.json')]);
const scenDir = join(scratch, 'scen-dir');
mkdirSync(scenDir);
execFileSync('mkfifo', ['--', join(scenDir, 'x.json')]);
symlinkSync(fifo, join(scenDir, 'y.json'));
const specs = join(scratch, 'specs.json');
writeFileSync(specs, JSON.stringify(['a', 'b'].map((id) => ({ id, kind: 'image', path: `/nonexistent/lockstep-test/${id}/bzImage`, version: '6.1.1', expect: 'auto' }))));
// source specs whose kconfig fragment / patch is a FIFO (`kernels build --state` reads them, builds nothing)
const srcSpec = join(scratch, 'src-specs.json');
const guestConfig = join(ROOT, 'kernels', 'config', 'lockstep-guest.config');
writeFileSync(srcSpec, JSON.stringify([
  { id: 'frag-fifo', kind: 'source', version: '6.1.192', distro: 'debian', source: { debian_package: 'linux-source-6.1' }, config: fifo, patches: [], expect: 'V3/perf' },
  { id: 'patch-fifo', kind: 'source', version: '6.1.192', distro: 'debian', source: { debian_package: 'linux-source-6.1' }, config: guestConfig, patches: [fifo], expect: 'V3/perf' },
]));
const NO_BOOT = ['--no-builtin-kernels', '--kernel-spec', specs, '--scenarios', 'remmap', '--out', join(scratch, 'never'), '--attempts', '0'];
const cell = (JSON.parse(readFileSync(FULL, 'utf8')) as { cells: { kernel: string; scenario: string }[] }).cells[0]!;
const BISECT = ['--no-builtin-kernels', '--kernel-spec', specs, '--scenario', 'remmap', '--kernels', 'a,b', '--out', join(scratch, 'never-b')];

const FIFO = /is a FIFO, not a regular file/;
/** [what, argv, exit, stderr]: the option named, the kind of path, a fix. */
const cases: [string, string[], number, RegExp][] = [
  ['run --kernel-spec FIFO', ['run', ...NO_BOOT, '--kernel-spec', fifo], 2, /--kernel-spec: .*in\.fifo is a FIFO, not a regular file\. Fix: /],
  ['kernels list --kernel-spec /dev/null', ['kernels', 'list', '--kernel-spec', '/dev/null'], 2, /--kernel-spec: \/dev\/null is a character device, not a regular file\. Fix: /],
  ['run --scenario-file FIFO', ['run', ...NO_BOOT, '--scenario-file', fifo], 2, /--scenario-file: .*is a FIFO, not a regular file or a directory\. Fix: /],
  // in a --scenario-file directory: a FIFO entry is not a file (skipped); a symlink to one is refused before it is opened
  ['simulate --scenario-file DIR holding a FIFO x.json and a link y.json to a FIFO', ['simulate', 'x', '--scenario-file', scenDir], 2, /y\.json: is not a regular file\. Fix: /],
  ['run --splat-policy FIFO', ['run', ...NO_BOOT, '--splat-policy', fifo], 2, /--splat-policy: .*is a FIFO, not a regular file\. Fix: /],
  ['run --kernel FIFO', ['run', '--kernel', fifo, '--scenarios', 'remmap', '--out', join(scratch, 'never'), '--attempts', '0'], 2, /--kernel: .*is a FIFO, not a regular file\. Fix: /],
  ['bisect --state FIFO', ['bisect', ...BISECT, '--state', fifo], 2, /--state: .*is a FIFO, not a regular file\. Fix: /],
  ['bisect --tree FIFO', ['bisect', '--scenario', 'remmap', '--tree', fifo, '--good', 'a', '--bad', 'b', '--out', join(scratch, 'never-b')], 2, /--tree: .*is a FIFO, not a directory\. Fix: /],
  ['bisect --tree DIR --state FIFO', ['bisect', '--scenario', 'remmap', '--tree', scratch, '--good', 'a', '--bad', 'b', '--state', fifo, '--out', join(scratch, 'never-b')], 2, /--state: .*is a FIFO, not a regular file\. Fix: /],
  ['bisect --tree DIR --build-cmd FIFO', ['bisect', '--scenario', 'remmap', '--tree', scratch, '--good', 'a', '--bad', 'b', '--state', join(scratch, 'st.json'), '--build-cmd', fifo, '--out', join(scratch, 'never-b')], 2, /--build-cmd: .*is a FIFO, not a regular file\. Fix: /],
  // bisect-step's every error is 255, so that git bisect run stops instead of reading "bad"
  ['bisect-step --state FIFO', ['bisect-step', '--scenario', 'remmap', '--state', fifo, '--out', join(scratch, 'never-b')], 255, /--state: .*is a FIFO, not a regular file\. Fix: /],
  ['bugreport --bisect FIFO', ['bugreport', `${cell.kernel}:${cell.scenario}`, FULL, '--bisect', fifo, '--out', join(scratch, 'never-r')], 2, /--bisect: .*is a FIFO, not a regular file or a directory\. Fix: /],
  ['kernels news --results FIFO', ['kernels', 'news', '--results', fifo, '--suites', 'bookworm'], 2, /--results: .*is a FIFO, not a directory\. Fix: /],
  ['kernels build --state, a spec whose config fragment is a FIFO', ['kernels', 'build', '--state', '--no-builtin-kernels', '--kernel-spec', srcSpec, 'frag-fifo'], 2, /src-specs\.json: \[0\]\.config: cannot read the config fragment .*\(a FIFO, not a regular file\)\. Fix: /],
  ['kernels build --state, a spec whose patch is a FIFO', ['kernels', 'build', '--state', '--no-builtin-kernels', '--kernel-spec', srcSpec, 'patch-fifo'], 2, /src-specs\.json: \[1\]\.patches\[0\]: cannot read .*\(a FIFO, not a regular file\)\. Fix: /],
  ['table FIFO', ['table', fifo], 2, FIFO],
  ['table DIR whose results.json is a FIFO', ['table', fifoDir], 2, FIFO],
  ['report FIFO', ['report', fifo, '--out', join(scratch, 'never-rep')], 2, FIFO],
  ['diff FIFO FULL', ['diff', fifo, FULL], 2, FIFO],
  ['diff FULL DIR(FIFO)', ['diff', FULL, fifoDir], 2, FIFO],
  ['merge FIFO', ['merge', fifo, FULL, '--out', join(scratch, 'never-m')], 2, FIFO],
  ['classify FIFO', ['classify', fifo], 2, FIFO],
  ['export ktap FIFO', ['export', 'ktap', fifo], 2, FIFO],
  ['export kcidb FIFO', ['export', 'kcidb', fifo, '--out', '-'], 2, FIFO],
  ['bugreport K:S FIFO', ['bugreport', `${cell.kernel}:${cell.scenario}`, fifo, '--out', join(scratch, 'never-r')], 2, FIFO],
];

t.test(`${cases.length} commands refuse a FIFO or device as an input, one line, never blocking`, async (t) => {
  const results = await batch(cases.map(([, argv]) => argv));
  cases.forEach(([what, , exit, re], i) => {
    const r = results[i]!;
    t.equal(r.code, exit, `${what}: exit ${exit} (got ${r.code}: ${r.stderr.slice(0, 300)})`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
    t.match(r.stderr, re, `${what}: names the option and the kind of file`);
    t.notMatch(r.stderr, /^\s+at |internal error/m, `${what}: no stack trace`);
  });
});
