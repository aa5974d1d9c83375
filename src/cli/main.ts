// lockstep's command line. Each command parses its own flags, prints its
// own --help, and returns an exit code: 0 ok, 1 the run found a regression
// or failed, 2 bad input or a missing dependency (one line saying the fix).
// Start-up loads only the commands' metadata (./command.ts, ./commands/*.ts):
// a command imports its machinery inside its run() (issue 25), so --help,
// --version and a refused command line load nothing heavy
// (test/unit/cli-startup.test.ts).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isUserError } from '../util/errors.ts';
import { COMMANDS } from './commands.ts';
import type { Command } from './command.ts';
import { LOCKSTEP_VERSION, RESULTS_SCHEMA } from '../results/version.ts';

/** How this process runs lockstep, for --version: the compiled build (bin/lockstep.mjs found dist/ fresh) or the sources through tsx. */
export const RUNS_FROM = import.meta.url.endsWith('.js') ? 'compiled dist/' : 'src/ via tsx';

const USAGE = `lockstep: kernel-version differential regression harness for perf_mmap() locked-memory accounting

Boots kernels (QEMU, KVM when usable, TCG otherwise) or uses the host kernel,
runs op-script scenarios in a native reproducer under fresh uids, and diffs the
measured EPERM points and VmPin series against a simulator of the accounting
logic each kernel is expected to implement (V0..V4, shared or separate counter).

Usage: lockstep <command> [options]      lockstep <command> --help      lockstep --version
(from a checkout, "lockstep" is "node bin/lockstep.mjs", or "npx lockstep" after npm ci)

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(18)} ${c.summary}`).join('\n')}

Exit codes: 0 all good; 1 a kernel behaved differently (a MISMATCH or PANIC
cell, a \`diff\` regression; or the command failed); 2 bad input or a missing
dependency (the message names file, field and fix); 3 only infrastructure
failed (TIMEOUT, BOOT_FAIL, BUILD_FAIL, ERROR cells; \`diff\`: unstable cells);
130 / 143 \`run\` stopped by SIGINT / SIGTERM (finished cells kept, complete: false).
A closed stdout (\`lockstep ... | head -1\`) is not an error: output stops, the code stays.
Environment: LOCKSTEP_CACHE (kernel + image cache, default ~/.cache/lockstep),
LOCKSTEP_ACCEL=tcg (never try KVM), LOCKSTEP_QEMU (QEMU binary),
LOCKSTEP_EXTRA_CMDLINE (extra guest kernel parameters, for debugging).`;

export function helpText(c: Command): string {
  const opts = Object.entries(c.options).map(([name, o]) => {
    const flag = `--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}${o.multiple ? ' (repeatable)' : ''}`;
    return `  ${flag.padEnd(30)} ${o.help}${o.default !== undefined ? ` [default: ${o.default}]` : ''}`;
  });
  return `lockstep ${c.name}${c.args ? ` ${c.args}` : ''}: ${c.summary}\n\n${c.description}\n\nOptions:\n${opts.join('\n')}\n  ${'--help'.padEnd(30)} this text\n${c.examples ? `\nExamples:\n${c.examples.map((e) => `  ${e}`).join('\n')}\n` : ''}`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    if (argv.length > 1) {
      console.error(`lockstep: ${argv[0]} takes no arguments, got ${JSON.stringify(argv[1]!.slice(0, 60))}. Fix: run \`lockstep --version\` alone.`);
      return 2;
    }
    console.log(`lockstep ${LOCKSTEP_VERSION} (results schema ${RESULTS_SCHEMA}; node ${process.versions.node}; ${RUNS_FROM})`);
    return 0;
  }
  if (!argv.length || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(USAGE);
    return argv.length ? 0 : 2;
  }
  // Two-word commands ("kernels list") are looked up first.
  const c = COMMANDS.find((x) => x.name === argv.slice(0, 2).join(' ')) ?? COMMANDS.find((x) => x.name === argv[0]);
  if (!c) {
    const group = COMMANDS.filter((x) => x.name.startsWith(`${argv[0]} `)).map((x) => x.name.slice(argv[0]!.length + 1));
    if (group.length > 0) {
      const sub = argv[1] === undefined ? 'no subcommand' : `unknown subcommand ${JSON.stringify(argv[1].slice(0, 60))}`;
      console.error(`lockstep: ${sub} of ${JSON.stringify(argv[0])}. Fix: use one of ${group.map((g) => `\`lockstep ${argv[0]} ${g}\``).join(', ')}.`);
      return 2;
    }
    console.error(`lockstep: unknown command ${JSON.stringify(argv[0])}. Fix: run \`lockstep --help\` for the list of commands.`);
    return 2;
  }
  const rest = argv.slice(c.name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(helpText(c));
    return 0;
  }
  const options: ParseArgsConfig['options'] = {};
  for (const [name, o] of Object.entries(c.options)) options[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (e) {
    // node's message can span lines; the error stays one line
    console.error(`lockstep ${c.name}: command line: ${(e as Error).message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '')}. Fix: see \`lockstep ${c.name} --help\`.`);
    return c.badInputExit ?? 2;
  }
  // a command that takes no positional argument refuses one (a typo'd flag value, `explain extra`)
  if (!c.args && parsed.positionals.length > 0) {
    console.error(`lockstep ${c.name}: command line: unexpected argument ${JSON.stringify(parsed.positionals[0]!.slice(0, 60))} (this command takes only options). Fix: see \`lockstep ${c.name} --help\`.`);
    return c.badInputExit ?? 2;
  }
  for (const [name, o] of Object.entries(c.options)) {
    if (parsed.values[name] === undefined && o.default !== undefined) parsed.values[name] = o.type === 'boolean' ? o.default === 'true' : o.default;
  }
  try {
    return await c.run(parsed.values, parsed.positionals);
  } catch (e) {
    if (isUserError(e)) {
      console.error(`lockstep ${c.name}: ${e.message}`);
      return c.badInputExit ?? 2;
    }
    console.error(`lockstep ${c.name}: internal error: ${(e as Error).stack ?? e}`);
    return 1;
  }
}
