import { dirname, join, resolve } from 'node:path';
import { toKcidb } from '../../export/kcidb.ts';
import { renderKtap } from '../../export/ktap.ts';
import { checkOutputFile, readResults, writeAtomic } from '../../results/write.ts';
import { ConfigError } from '../../util/errors.ts';
import type { Command } from '../common.ts';
import { resultsPath } from './report.ts';

const one = (name: string, pos: string[]): string => {
  if (pos.length !== 1) throw new ConfigError('command line', 'DIR', 'expected one results directory or results.json', `e.g. \`lockstep ${name} results/latest\``);
  return resultsPath(pos[0]!);
};

async function emit(text: string, out: string): Promise<string> {
  if (out === '-') { process.stdout.write(text); return 'stdout'; }
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
The schema it follows is src/export/kcidb-io-v5.3.schema.json.`,
  options: { out: { type: 'string', arg: 'FILE', help: 'where to write (- = stdout; default: kcidb.json beside results.json)' } },
  examples: ['lockstep export kcidb results/latest', 'lockstep export kcidb results/latest --out - | kcidb-submit -p PROJECT -t TOPIC'],
  async run(v, pos) {
    const src = one('export kcidb', pos);
    const r = await readResults(src);
    const where = await emit(JSON.stringify(toKcidb(r), null, 1) + '\n', v.out ? (v.out === '-' ? '-' : resolve(String(v.out))) : join(dirname(src), 'kcidb.json'));
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
    const r = await readResults(one('export ktap', pos));
    const where = await emit(renderKtap(r), v.out === '-' ? '-' : resolve(String(v.out)));
    if (where !== 'stdout') console.error(`lockstep export ktap: wrote ${where}`);
    return 0;
  },
};
