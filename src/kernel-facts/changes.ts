// The upstream changes lockstep's model depends on, one row each: which
// mainline release took it, which stable releases carry it, what it switches
// in the model, and where the fact comes from. expect (the counter), the
// simulator's version options (simOptionsForVersion) and docs/kernel-history.md
// all read these rows; a new stable fact is a one-row change here. Pure.

import { type KernelVersion, compareKernelVersions, formatKernelVersion, kernelLine, parseKernelVersion } from './version.ts';

/** Simulator inputs a kernel's version decides (src/model/simulate.ts SimulateOptions documents each). */
export type ModelFlag =
  | 'bpfChargesUser'
  | 'partialMunmapEinval'
  | 'mapOutputEbusy'
  | 'secretmemChargesUser'
  | 'uringChargesPinned'
  | 'uringRingsUncharged';

/** What carrying a change switches in the model. */
export type ChangeSwitch =
  /** a kernel that carries the change has `flag` = `value`, one that lacks it !value */
  | { kind: 'flag'; flag: ModelFlag; value: boolean }
  /** perf charges the separate user->perf_mlock instead of the shared user->locked_vm */
  | { kind: 'counter' }
  /** nothing lockstep measures: kept as documentation (why: what it touches) */
  | { kind: 'none'; why: string };

export interface UpstreamChange {
  /** short stable key, e.g. "perf-mlock-gift" */
  key: string;
  /** mainline commit id (12 hex digits), or null where not read */
  commit: string | null;
  /** the commit's subject line */
  title: string;
  /** first mainline release that has it ("5.9", "7.3"; "7.3-rc1" for an rc), or null: not in mainline, or not known */
  mainline: string | null;
  /** set when the mainline release is inferred, not read: why (shown in reason lines) */
  mainlineInferred?: string;
  /** the first release of each stable line that carries it ("6.1.191") */
  stables: readonly string[];
  /** stable lines where it is not known either way, from this release on ("6.6.1"): derived as 'unknown' */
  unknownFrom?: readonly string[];
  switches: ChangeSwitch;
  /** where each part of the fact comes from: changelog line, header read, source read, measurement; "inferred" where inferred */
  source: string;
}

/** The row whose presence decides the per-user counter (src/kernels/expect.ts counterFor). */
export const PERF_MLOCK_GIFT = 'perf-mlock-gift';

/**
 * The upstream changes, oldest mainline first. Order does not matter to the
 * derivations; keys are unique (checked by the tests).
 */
export const UPSTREAM_CHANGES: readonly UpstreamChange[] = [
  {
    key: 'uring-pinned-vm',
    commit: '309758254ea6',
    title: 'io_uring: report pinned memory usage',
    mainline: '5.9',
    stables: [],
    switches: { kind: 'flag', flag: 'uringChargesPinned', value: true },
    source:
      'patch read (Bijan Mottahedeh, lore io-uring 2020-06-16, "Applied for 5.9"; in the for-5.9/io_uring-20200802 pull): ' +
      'io_account_mem() adds the registered pages to ctx->sqo_mm->pinned_vm, whether or not RLIMIT_MEMLOCK is enforced; before it ' +
      'io_uring charged user->locked_vm only. Measured: real v5.3.1, v5.4.0, v5.5-rc5, v5.6.4 trees charge no pinned_vm ' +
      '(uring-refused: "pinned measured 0, expected 100"), Debian 5.10.223 does. No stable backport known (a feature): inferred',
  },
  {
    key: 'bpf-memcg',
    commit: null,
    title: 'bpf: memcg-based memory accounting (Roman Gushchin\'s series)',
    mainline: '5.11',
    stables: [],
    switches: { kind: 'flag', flag: 'bpfChargesUser', value: false },
    source: 'series merged for v5.11 (BPF maps and programs leave user->locked_vm for memcg accounting); commit ids not recorded here',
  },
  {
    key: 'perf-vma-split',
    commit: null,
    title: 'perf/core: Prevent VMA split of buffer mappings',
    mainline: '6.17',
    stables: ['5.10.241', '6.1.148', '6.12.42', '6.16.1'],
    switches: { kind: 'flag', flag: 'partialMunmapEinval', value: true },
    source: 'Debian 6.1 changelog, inside the upstream ChangeLog-6.1.148 list; Debian linux 5.10.251-5 changelog, inside the ChangeLog-5.10.241 list ' +
      '(CVE-2025-38563), and measured: bullseye-security 5.10.251 refuses a partial munmap with EINVAL (scenario mapping-errors); ' +
      '6.12.42, 6.16.1 and v6.17 as the model recorded them before this table (not re-read here)',
  },
  {
    key: 'perf-set-output-ebusy',
    commit: null,
    title: 'perf: mmap of an event whose output is redirected (SET_OUTPUT) fails with EBUSY',
    mainline: '6.19',
    stables: ['6.18.8'],
    switches: { kind: 'flag', flag: 'mapOutputEbusy', value: true },
    source: 'v6.19 and stable 6.18.8 as the model recorded them before this table (scenario mapping-errors), not re-read here; the title paraphrases the behaviour, not the commit subject',
  },
  {
    key: 'secretmem-locked',
    commit: null,
    title: 'mm/secretmem: properly account locked pages',
    mainline: '7.2',
    stables: ['6.1.191', '6.12.113'],
    switches: { kind: 'flag', flag: 'secretmemChargesUser', value: true },
    source:
      'Debian 6.1.192 changelog (ChangeLog-6.1.191 list) and 6.12 changelog (6.12.113); mainline 7.2: the user->locked_vm guard ' +
      'names CONFIG_SECRETMEM in the 7.2.6, 7.2.12 and 7.3~rc7 headers (header read). Measured: 7.3-rc7 charges (headroom 258 -> 158), ' +
      'the 6.18.44 host does not; 6.19..7.1 taken to lack it (not read)',
  },
  {
    key: 'uring-rings-uncharged',
    commit: null,
    title: 'io_uring: do not charge the SQ/CQ rings to RLIMIT_MEMLOCK',
    mainline: '7.3',
    mainlineInferred: 'a 7.2.11 stable fix, read in 7.3.4; 7.3-rc taken to lack it',
    stables: ['7.2.11'],
    switches: { kind: 'flag', flag: 'uringRingsUncharged', value: true },
    source:
      'Debian 7.3.4-1~bpo13+1 changelog (stable 7.2.11 list); linux-source-7.3 7.3.4 io_uring/ read. Mainline 7.3 final is inferred ' +
      '(a stable fix comes from the next mainline; whether 7.3-rc had it is not known: 7.3-rc kernels are taken to lack it)',
  },
  {
    key: 'uring-kbuf-uncharged',
    commit: null,
    title: 'io_uring/kbuf: don\'t charge provided buffer rings to RLIMIT_MEMLOCK',
    mainline: '7.3',
    mainlineInferred: 'a 7.2.11 stable fix, read in 7.3.4',
    stables: ['7.2.11'],
    switches: { kind: 'none', why: 'provided-buffer rings: no lockstep scenario registers one' },
    source: 'Debian 7.3.4-1~bpo13+1 changelog (stable 7.2.11 list); mainline 7.3 inferred, as for the SQ/CQ rings',
  },
  {
    key: 'mremap-locked-vm',
    commit: null,
    title: 'mm/mremap: fix locked_vm leak from MREMAP_DONTUNMAP self-merge',
    mainline: null,
    stables: ['6.1.191', '6.12.114', '7.2.11'],
    switches: { kind: 'none', why: 'mm->locked_vm (VmLck) only: lockstep measures VmPin and the per-user counter' },
    source: 'Debian kernel changelogs read for issue 24 (stable 6.1.191, 6.12.114, 7.2.11 lists); mainline release not read',
  },
  {
    key: PERF_MLOCK_GIFT,
    commit: null,
    title: 'perf: Track the perf mlock gift separately',
    mainline: '7.3',
    mainlineInferred: '7.3.4 has it, 7.3-rc7 lacks it, not in the 7.3.2-7.3.4 stable lists: 7.3.0 final taken to have it',
    stables: ['6.1.191', '6.12.115', '7.2.13'],
    unknownFrom: ['5.10.252', '5.15.190', '6.6.1', '6.18.45', '7.0.1', '7.1.1'],
    switches: { kind: 'counter' },
    source:
      'Debian 6.1.192 changelog (upstream ChangeLog-6.1.191 list; Debian skipped 6.1.191) and 6.12 changelog (ChangeLog-6.12.115); ' +
      'struct user_struct has perf_mlock in the 7.2.13 and 7.3.4 headers, not in 7.2.12 or 7.3~rc7 (header read); 7.3.4 has it, ' +
      '7.3-rc7 lacks it and it is not in the 7.3.2-7.3.4 stable lists, so it came with 7.3 or 7.3.1: 7.3.0 final is inferred to have it. ' +
      'Debian linux 5.10.251-5 changelog: not in any 5.10.y list up to 5.10.251, so 5.10.y is shared through 5.10.251. ' +
      'Measured: sid 7.2.13 perf, experimental 7.3-rc7 shared, the 6.18.44 host shared. Lines still maintained when 6.1.191 came out ' +
      'and with no release read either way are unknown from their first release that could carry it',
  },
];

/** Does a kernel carry a change: 'yes', 'no', or 'unknown' (a stable line listed in unknownFrom). */
export type Carried = 'yes' | 'no' | 'unknown';

/** The first release of `line`'s entries in `list` ("6.1.191" for line 6.1), or undefined. */
const inLine = (list: readonly string[] | undefined, v: KernelVersion): KernelVersion | undefined =>
  list?.map(parseKernelVersion).find((s) => kernelLine(s) === kernelLine(v));

/**
 * Whether kernel `v` carries change `c`: at or after its mainline release,
 * or at or after the stable release its line took it in; 'unknown' from an
 * unknownFrom release of its line on; else 'no' (a line not listed is taken
 * to lack it).
 */
export function carries(c: UpstreamChange, v: KernelVersion): Carried {
  if (c.mainline !== null && compareKernelVersions(v, parseKernelVersion(c.mainline)) >= 0) return 'yes';
  const st = inLine(c.stables, v);
  if (st !== undefined && compareKernelVersions(v, st) >= 0) return 'yes';
  const unk = inLine(c.unknownFrom, v);
  if (unk !== undefined && compareKernelVersions(v, unk) >= 0) return 'unknown';
  return 'no';
}

/** The row with `key` in `table` (default UPSTREAM_CHANGES); throws Error when absent (a table without it is a bug). */
export function changeByKey(key: string, table: readonly UpstreamChange[] = UPSTREAM_CHANGES): UpstreamChange {
  const c = table.find((r) => r.key === key);
  if (c === undefined) throw new Error(`no upstream change "${key}" in the facts table`);
  return c;
}

/**
 * The model flags kernel `v` implies: for each flag, the value of a carried
 * row that switches it, else the opposite (the kernel lacks the change).
 * 'unknown' counts as lacking. `table` defaults to UPSTREAM_CHANGES (tests
 * pass a table with a made-up row).
 */
export function modelFlagsFor(v: KernelVersion, table: readonly UpstreamChange[] = UPSTREAM_CHANGES): Partial<Record<ModelFlag, boolean>> {
  const out: Partial<Record<ModelFlag, boolean>> = {};
  for (const c of table) {
    if (c.switches.kind !== 'flag') continue;
    const { flag, value } = c.switches;
    const has = carries(c, v) === 'yes';
    if (has || out[flag] === undefined) out[flag] = has ? value : !value;
  }
  return out;
}

/** "6.1.191, 6.12.115, 7.2.13" (or "-") */
export const stablesText = (c: UpstreamChange): string => (c.stables.length ? c.stables.join(', ') : '-');

/** "v7.3", "v7.3-rc1" or "not known" */
export const mainlineText = (c: UpstreamChange): string => (c.mainline === null ? 'not known' : `v${c.mainline}`);


/** The per-user counter perf charges: the model's Counter, or 'unknown' where no fact is known. */
export type CounterFact = 'shared' | 'perf' | 'unknown';

/**
 * Which per-user counter kernel `v` charges perf's pages to, from the
 * PERF_MLOCK_GIFT row of `table` (default UPSTREAM_CHANGES): 'perf'
 * (user->perf_mlock) where carried, 'shared' (user->locked_vm) where not,
 * 'unknown' on a line where nothing is known. `why` names the row, the
 * release that decides, and says when that release is inferred.
 */
export function counterFactFor(v: KernelVersion, table: readonly UpstreamChange[] = UPSTREAM_CHANGES): { counter: CounterFact; why: string } {
  const c = changeByKey(PERF_MLOCK_GIFT, table);
  const title = `"${c.title}"`;
  const line = `${kernelLine(v)}.y`;
  const st = inLine(c.stables, v);
  if (st !== undefined && compareKernelVersions(v, st) >= 0) {
    return { counter: 'perf', why: `${line} >= ${formatKernelVersion(st)}: ${title} (stable ${formatKernelVersion(st)}) -> separate user->perf_mlock` };
  }
  const carried = carries(c, v);
  if (carried === 'yes') {
    const inferred = c.mainlineInferred ? `; inferred: ${c.mainlineInferred}` : '';
    return { counter: 'perf', why: `>= v${c.mainline}: ${title} (mainline v${c.mainline}${inferred}) -> separate user->perf_mlock` };
  }
  if (carried === 'unknown') {
    return { counter: 'unknown', why: `${line} from ${formatKernelVersion(inLine(c.unknownFrom, v)!)}: not known whether ${title} reached this line` };
  }
  return { counter: 'shared', why: `${title} not in this release (mainline from ${mainlineText(c)}, stables ${stablesText(c)}) -> shared user->locked_vm` };
}
