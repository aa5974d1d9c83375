import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../../util/errors.ts';
import { type Command, resultsPath } from '../command.ts';

const one = (name: string, pos: string[]): string => {
  if (pos.length !== 1) throw new ConfigError('command line', 'DIR', 'expected one results directory or results.json', `e.g. \`lockstep ${name} results/latest\``);
  return resultsPath(pos[0]!);
};

async function emit(text: string, out: string): Promise<string> {
  if (out === '-') { process.stdout.write(text); return 'stdout'; }
  const { checkOutputFile, writeAtomic } = await import('../../results/write.ts');
  await checkOutputFile(out);
  await writeAtomic(out, text);
  return out;
}

export const kcidbCommand: Command = {
  name: 'export kcidb',
  args: 'DIR|results.json',
  summary: 'write a KCIDB submission (kcidb I/O schema v5.3) of a run',
  description: `Reads results.json and writes a KernelCI KCIDB submission (origin "lockstep"):
one checkout per kernel source and one build per kernel (the build id is the booted bzImage's sha256),
one test "lockstep.boot" per QEMU boot (kernel x CPU count) and one test
"lockstep.<scenario>" per cell. Status: MATCH PASS; MISMATCH, PANIC FAIL; TIMEOUT,
ERROR ERROR; BOOT_FAIL, BUILD_FAIL MISS (the boot test or the build is FAIL);
SKIP SKIP; UNCHECKED DONE. Each test's environment gives the CPUs, the accelerator
and the QEMU command line. No property is null. Submit it with kcidb-submit.
Logs: with --artifact-base-url (https), log_url/input_files/output_files are the
URLs of the results directory's files under it (publish the directory there);
without it they are left out.
The schema it follows is src/export/kcidb-io-v5.3.schema.json.`,
  options: {
    out: { type: 'string', arg: 'FILE', help: 'where to write (- = stdout; default: kcidb.json beside results.json)' },
    'artifact-base-url': { type: 'string', arg: 'URL', help: 'https URL the results directory is published at: each log_url is its log under it' },
  },
  examples: ['lockstep export kcidb results/latest', 'lockstep export kcidb results/latest --artifact-base-url https://ci.example.org/runs/42/', 'lockstep export kcidb results/latest --out - | kcidb-submit -p PROJECT -t TOPIC'],
  async run(v, pos) {
    const src = one('export kcidb', pos);
    const { httpsBase } = await import('../../export/artifact-url.ts');
    const { toKcidb } = await import('../../export/kcidb.ts');
    const { readResults } = await import('../../results/write.ts');
    const base = v['artifact-base-url'] === undefined ? undefined : httpsBase(String(v['artifact-base-url']));
    const r = await readResults(src);
    const where = await emit(JSON.stringify(toKcidb(r, { artifactBaseUrl: base }), null, 1) + '\n', v.out ? (v.out === '-' ? '-' : resolve(String(v.out))) : join(dirname(src), 'kcidb.json'));
    console.error(`lockstep export kcidb: wrote ${where}`);
    return 0;
  },
};

export const ktapCommand: Command = {
  name: 'export ktap',
  args: 'DIR|results.json',
  summary: 'print or write a run as KTAP version 1 (kernel -> scenario)',
  description: `The same as the results.ktap that run and report write: KTAP version 1, one
subtest per kernel, one test per cell, "# SKIP" directives and kselftest-style "# "
diagnostics (verdict, first EPERM, divergence, rerun command) before each failing test.`,
  options: { out: { type: 'string', arg: 'FILE', help: 'where to write', default: '-' } },
  examples: ['lockstep export ktap results/latest'],
  async run(v, pos) {
    const { renderKtap } = await import('../../export/ktap.ts');
    const { readResults } = await import('../../results/write.ts');
    const r = await readResults(one('export ktap', pos));
    const where = await emit(renderKtap(r), v.out === '-' ? '-' : resolve(String(v.out)));
    if (where !== 'stdout') console.error(`lockstep export ktap: wrote ${where}`);
    return 0;
  },
};

export const kselftestCommand: Command = {
  name: 'export kselftest',
  args: 'SCENARIO..',
  summary: 'write a kselftest directory (Makefile, config, settings, one .c per scenario) for a kernel version',
  description: `Writes DIR laid out like tools/testing/selftests/perf_events/: a Makefile with
TEST_GEN_PROGS (it includes ../lib.mk inside a kernel tree and builds standalone with
\`make -C DIR\` elsewhere), a config fragment, a settings timeout, and one standalone
C program per built-in scenario. Each program runs as root, prints KTAP and exits
0 (as expected), 1 (a divergence) or 4 (skip); its expected values are the model's
for the kernel release given with --kernel-version, so the selftest encodes the
behaviour of that release. DIR must be new or hold only files this command writes.`,
  options: {
    out: { type: 'string', arg: 'DIR', help: 'the directory to write (required)' },
    'kernel-version': { type: 'string', arg: 'V', help: 'the kernel release whose behaviour the programs expect, e.g. 6.1.190 (required)' },
  },
  examples: ['lockstep export kselftest baseline remmap incident --out perf_mmap_accounting --kernel-version 6.1.190 && make -C perf_mmap_accounting'],
  async run(v, pos) {
    if (!pos.length) throw new ConfigError('command line', 'SCENARIO', 'no scenario named', 'e.g. `lockstep export kselftest baseline remmap --out DIR --kernel-version 6.1.190`');
    if (v.out === undefined) throw new ConfigError('command line', '--out', 'missing', 'name the directory to write, e.g. --out perf_mmap_accounting');
    if (v['kernel-version'] === undefined) throw new ConfigError('command line', '--kernel-version', 'missing', 'name the kernel release the programs expect, e.g. --kernel-version 6.1.190');
    const { builtinScenarios } = await import('../../scenario/load.ts');
    const { kselftestFiles } = await import('../../export/kselftest.ts');
    const all = builtinScenarios().map((l) => l.compiled);
    const picked = pos.map((id) => all.find((s) => s.id === id) ?? (() => { throw new ConfigError('command line', 'SCENARIO', `no built-in scenario ${JSON.stringify(id)}`, `choose from: ${all.map((s) => s.id).join(', ')}`); })());
    const files = kselftestFiles([...new Map(picked.map((s) => [s.id, s])).values()], String(v['kernel-version']));
    const dir = resolve(String(v.out));
    const foreign = existsSync(dir) ? readdirSync(dir).filter((f) => !files.has(f) && !pos.includes(f)) : [];
    if (foreign.length) throw new ConfigError('command line', '--out', `${dir} holds files this command did not write (${foreign.slice(0, 3).join(', ')})`, 'give a new or empty directory');
    await mkdir(dir, { recursive: true });
    for (const [name, text] of files) await writeFile(join(dir, name), text);
    console.error(`lockstep export kselftest: wrote ${dir} (${files.size - 3} programs); build with make -C ${dir}`);
    return 0;
  },
};
