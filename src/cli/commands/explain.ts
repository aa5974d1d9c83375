import { ConfigError } from '../../util/errors.ts';
import { type Command, int } from '../command.ts';

/**
 * The largest size taken, in kB: 2^42 kB (4 PiB), the scenario schema's
 * RLIMIT_MEMLOCK bound (src/scenario/schema.ts maxRlimitKb), far below
 * RLIM_INFINITY and exact in a double. Larger: say "unlimited".
 */
export const MAX_SIZE_KB = 2 ** 42;

/**
 * "512M", "4G", "516K", "131072" (kB) or "unlimited" to kB (null = unlimited).
 * Throws ConfigError for anything else and for sizes above MAX_SIZE_KB
 * (99999999999999999999T would overflow into 1e29 kB, issue 26).
 */
export function parseSizeKb(v: string, flag: string): number | null {
  if (/^(unlimited|inf(inity)?)$/i.test(v)) return null;
  const m = /^(\d{1,20})([KMGT]?)i?B?$/i.exec(v.trim());
  if (!m) throw new ConfigError('command line', `--${flag}`, `${JSON.stringify(v.slice(0, 60))} is not a size`, `write e.g. --${flag} 512M, 64K, 2G or unlimited (a bare number is kB)`);
  const mult: Record<string, number> = { '': 1, K: 1, M: 1024, G: 1024 ** 2, T: 1024 ** 3 };
  const kb = BigInt(m[1]!) * BigInt(mult[m[2]!.toUpperCase()]!);
  if (kb > BigInt(MAX_SIZE_KB)) throw new ConfigError('command line', `--${flag}`, `${JSON.stringify(v)} is more than ${MAX_SIZE_KB} kB (4 PiB)`, `write a size up to 4096T, or --${flag} unlimited`);
  return Number(kb);
}

export const command: Command = {
  name: 'explain',
  summary: 'why did perf mmap() fail with EPERM? the kernel\'s check call by call, and what would fit',
  description: `From the numbers of the machine and the program alone (no kernel needed): the
logic of that kernel version (V0..V4, src/kernels/expect.ts), the values perf_mmap()
computes for each ring buffer in the layout of the incident's kprobe table
(user_locked, extra, pinned_vm before, locked, result; pages), the first call refused
with EPERM, and the smallest change of each kind that makes every call fit:
kernel.perf_event_mlock_kb, RLIMIT_MEMLOCK, CAP_IPC_LOCK, perf_event_paranoid.
The accounting is the simulator's (src/model). Exit 0.`,
  options: {
    'kernel-version': { type: 'string', arg: 'X.Y[.Z]', help: 'the kernel version (picks V0..V4 and the counter)' },
    logic: { type: 'string', arg: 'V0..V4/shared|perf', help: 'the logic, instead of deriving it from --kernel-version' },
    cpus: { type: 'string', arg: 'N', help: 'online CPUs (num_online_cpus())' },
    'mlock-kb': { type: 'string', arg: 'KB', help: 'kernel.perf_event_mlock_kb', default: '516' },
    'rlimit-memlock': { type: 'string', arg: 'SIZE', help: 'RLIMIT_MEMLOCK of the process: 512M, 64K, unlimited (bare number: kB)', default: '8M' },
    pages: { type: 'string', arg: 'N', help: 'pages per ring buffer mapping (user_extra: 1 header + data pages)', default: '3' },
    rings: { type: 'string', arg: 'N', help: 'ring buffers mapped (one mmap() each; e.g. one per CPU)' },
    charged: { type: 'string', arg: 'PAGES', help: 'pages the uid had already charged (user->locked_vm) before the first call', default: '0' },
    'cap-ipc-lock': { type: 'boolean', help: 'the process has CAP_IPC_LOCK (in the initial user namespace)' },
    paranoid: { type: 'string', arg: 'N', help: 'kernel.perf_event_paranoid', default: '2' },
    json: { type: 'boolean', help: 'print the explanation as JSON' },
  },
  examples: ['lockstep explain --kernel-version 5.3 --cpus 36 --rlimit-memlock 512M --pages 3 --rings 36 --charged 32886'],
  async run(v) {
    const { userKernelVersion } = await import('../../kernel-facts/index.ts');
    const { accountingFor, counterFor } = await import('../../kernels/expect.ts');
    const { parseLogic } = await import('../../model/index.ts');
    const { explain, renderExplain } = await import('../../export/explain.ts');
    const cpus = int(v.cpus ?? '', 'cpus', 1, 8192);
    let logic;
    let why: string;
    if (v.logic !== undefined) {
      try { logic = parseLogic(String(v.logic).includes('/') ? String(v.logic) : `${String(v.logic)}/shared`); } catch {
        throw new ConfigError('command line', '--logic', `${JSON.stringify(v.logic)} is not a logic`, 'use V0..V4, optionally /shared or /perf');
      }
      why = 'from --logic';
    } else {
      const kv = String(v['kernel-version'] ?? '');
      const fix = 'pass e.g. --kernel-version 5.3 (or --logic V0/shared)';
      if (!/^\d+\.\d+(\.\d+)?/.test(kv)) throw new ConfigError('command line', '--kernel-version', `${JSON.stringify(v['kernel-version'] ?? '')} is not a kernel version`, fix);
      userKernelVersion(kv, 'command line', '--kernel-version', fix);
      const a = accountingFor(kv);
      const c = counterFor(kv);
      // an open counter (no fact known for that stable line): shown for the
      // shared user->locked_vm, where other chargers' pages count too
      const counter = c.row.counter === 'unknown' ? 'shared' : c.row.counter;
      logic = { accounting: a.row.accounting, counter };
      why = `${kv}: ${a.text}; ${c.text}${c.row.counter === 'unknown' ? ' (counter unknown for this line: shown for the shared counter)' : ''}`;
    }
    const e = explain({
      logic, logicWhy: why, cpus,
      mlockKb: int(v['mlock-kb'], 'mlock-kb', 0, 2 ** 31 - 1),
      rlimitKb: parseSizeKb(String(v['rlimit-memlock']), 'rlimit-memlock'),
      pages: (() => {
        const p = int(v.pages, 'pages', 1, 65537);
        if (((p - 1) & (p - 2)) !== 0 && p !== 1) throw new ConfigError('command line', '--pages', `${p} is not 1 + a power of two`, 'the kernel maps 1 header page + 2^n data pages: use 1, 2, 3, 5, 9, ...');
        return p;
      })(),
      rings: int(v.rings ?? '', 'rings', 1, 100_000),
      charged: int(v.charged, 'charged', 0, 2 ** 40),
      capIpcLock: Boolean(v['cap-ipc-lock']),
      paranoid: int(v.paranoid, 'paranoid', -1, 4),
    });
    if (v.json) console.log(JSON.stringify(e, null, 1));
    else process.stdout.write(renderExplain(e));
    return 0;
  },
};
