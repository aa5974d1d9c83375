// An upstream-ready report of one cell, laid out like a syzbot report:
// title, where the kernel came from (HEAD commit and git tree for a git
// build, release, source, config, compiler from the kernel's own banner),
// console output where it points somewhere real, the C reproducer, the
// measured vs expected ops, the first bad commit/release with its bisect
// log, and a Reported-by tag when the reporter is named. Only lines lockstep
// knows are written. Pure: facts in, text out.

import { type ExpectedOp, type Logic, logicLabel } from '../model/index.ts';
import type { MeasuredOp, Divergence } from '../diff/index.ts';
import type { CompiledScenario, Op } from '../scenario/ops.ts';

export interface BisectFacts {
  /** "first bad commit" (git mode) or "first bad release" (list mode) */
  kind: 'commit' | 'release';
  firstBad: string | null;
  lastGood: string | null;
  /** `git bisect log`-style lines: one per judged position, in the order they were judged */
  log: string[];
  source: string;
}

export interface BugReportInput {
  kernel: string;
  scenario: CompiledScenario;
  verdict: string;
  release: string | null;
  version: string | null;
  source: string | null;
  configSha256: string | null;
  /** the compiler the kernel was built with (compilerFromBanner), null when unknown */
  compiler: string | null;
  /** where the console log can be read: an https URL, or a file name beside report.txt; null: the line is left out */
  consoleLog: string | null;
  /** a git-built kernel's tree and commit (gitSource), null otherwise */
  git?: { tree: string; commit: string } | null;
  /** "Name <address>" for the Reported-by: tag, null: no tag */
  reportedBy?: string | null;
  accel: string;
  cpus: number;
  measured: MeasuredOp[];
  reference: { logic: Logic; expected: ExpectedOp[]; why: string };
  /** the kernel's own expected logic, when it differs from the reference */
  own: { logic: Logic; expected: ExpectedOp[] } | null;
  divergence: Divergence | null;
  reproFile: string;
  rerun: string;
  bisect: BisectFacts | null;
}

const fmtMeasured = (op: Op, m: MeasuredOp | undefined): string =>
  m ? `${m.ok ? 'ok' : m.errno || 'failed'} VmPin ${m.vmpin_kb / 4}${op.op === 'probe' ? ` headroom ${m.headroom ?? '?'}` : ''}` : 'not reached';
const fmtExpected = (op: Op, e: ExpectedOp | undefined): string =>
  e ? `${e.ok ? 'ok' : e.errno} VmPin ${e.pinned}${op.op === 'probe' ? ` headroom ${e.headroom}` : ''}` : '-';

/**
 * The compiler part of a kernel banner ("Linux version 6.1.190 (builder)
 * (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld ... 2.40) #1 SMP ...", as
 * init/version.c's linux_banner prints it on the console at boot and as
 * /proc/version reads): the text inside the second top-level parentheses.
 * Null when the text has no banner or the banner no compiler.
 */
export function compilerFromBanner(text: string): string | null {
  const i = text.indexOf('Linux version ');
  if (i < 0) return null;
  const line = text.slice(i, text.indexOf('\n', i) < 0 ? undefined : text.indexOf('\n', i));
  const groups: string[] = [];
  let depth = 0;
  let start = -1;
  for (let k = 0; k < line.length; k++) {
    if (line[k] === '(') { if (depth++ === 0) start = k + 1; } else if (line[k] === ')' && depth > 0 && --depth === 0) groups.push(line.slice(start, k));
  }
  const cc = groups[1]?.trim();
  return cc && /\b(gcc|clang|cc)\b/i.test(cc) ? cc : null;
}

/**
 * A kernel source recorded as "git:URL@COMMIT" (src/kernels/obtain/source/inputs.ts
 * identities; a 40-hex commit) as its tree and commit; null for Debian
 * packages, tarballs and anything else.
 */
export function gitSource(source: string | null): { tree: string; commit: string } | null {
  const m = /^git:(.+)@([0-9a-f]{40})(?:\s|$)/.exec(source ?? '');
  return m ? { tree: m[1]!, commit: m[2]! } : null;
}

/** One-line title: what differs, where, by how much. */
export function bugTitle(i: BugReportInput): string {
  const d = i.divergence;
  if (!d) return `perf_mmap: ${i.scenario.id} behaves as ${logicLabel(i.reference.logic)} on ${i.release ?? i.kernel} (no divergence)`;
  if (d.field === 'headroom' && typeof d.measured === 'number' && typeof d.expected === 'number') {
    const n = d.expected - d.measured;
    return `perf_mmap: per-user locked memory ${n > 0 ? `${n} pages higher` : `${-n} pages lower`} than ${logicLabel(i.reference.logic)} after ${i.scenario.id} (op ${d.i}: ${d.op})`;
  }
  return `perf_mmap: ${d.field} of op ${d.i} (${d.op}) in ${i.scenario.id} is ${JSON.stringify(d.measured)}, ${logicLabel(i.reference.logic)} expects ${JSON.stringify(d.expected)}`;
}

/** The report text. */
export function renderBugReport(i: BugReportInput): string {
  const ref = logicLabel(i.reference.logic);
  const own = i.own ? logicLabel(i.own.logic) : null;
  const s = i.scenario;
  const out = [
    bugTitle(i),
    '',
    'Hello,',
    '',
    'lockstep (a kernel-version differential harness for perf_mmap() locked-memory',
    'accounting) found the following issue on:',
    '',
    ...(i.git ? [`HEAD commit:    ${i.git.commit}`, `git tree:       ${i.git.tree}`] : []),
    `kernel release: ${i.release ?? 'unknown'} (lockstep kernel "${i.kernel}", version ${i.version ?? 'unknown'})`,
    `kernel source:  ${i.source ?? 'not recorded'}`,
    `kernel config:  ${i.configSha256 ? `sha256 ${i.configSha256}` : 'not recorded (kernel not built or fetched by lockstep)'}`,
    ...(i.compiler ? [`compiler:       ${i.compiler}`] : []),
    `machine:        ${i.cpus} CPUs, ${i.accel === 'none' ? 'the kernel ran natively' : `QEMU (${i.accel.toUpperCase()})`}`,
    ...(i.consoleLog ? [`console output: ${i.consoleLog}`] : []),
    `C reproducer:   ${i.reproFile}   (gcc -static -O2 -o repro ${i.reproFile}; run as root)`,
    `lockstep:       ${i.rerun}`,
    '',
    ...(i.reportedBy ? ['IMPORTANT: if you fix the issue, please add the following tag to the commit:', `Reported-by: ${i.reportedBy}`, ''] : []),
  ];
  if (i.bisect) {
    out.push(`The issue was bisected to ${i.bisect.kind === 'commit' ? 'commit' : 'release'}:`, '',
      `first bad ${i.bisect.kind}: ${i.bisect.firstBad ?? 'not found'}`, `last good ${i.bisect.kind}: ${i.bisect.lastGood ?? 'not found'}`,
      `bisection log (from ${i.bisect.source}):`, ...i.bisect.log.map((l) => `  ${l}`), '');
  }
  out.push(
    `Scenario "${s.id}": ${s.cpus} CPUs, perf_event_mlock_kb ${s.mlock_kb}, perf_event_paranoid ${s.paranoid},`,
    `RLIMIT_MEMLOCK ${s.rlimit_kb === null ? 'unlimited' : `${s.rlimit_kb} kB`}, CAP_IPC_LOCK ${s.cap_ipc_lock ? 'kept' : 'dropped'}; ${s.ops.length} ops.`,
    `Expected (${ref}): ${i.reference.why}.`,
    own ? `The kernel's version implies ${own}; lockstep's verdict against it: ${i.verdict}.` : `lockstep's verdict: ${i.verdict}.`,
    '',
  );
  if (i.divergence) {
    const d = i.divergence;
    out.push(`First divergence: op ${d.i} (${d.op}), ${d.field}: measured ${JSON.stringify(d.measured)}, ${ref} expects ${JSON.stringify(d.expected)}.`, '');
  }
  // Every op that differs, plus every probe (they show the per-user counter), in pages.
  const rows = s.ops.map((op, k) => ({ k, op, m: i.measured.find((x) => x.i === k), e: i.reference.expected[k], o: i.own?.expected[k] }))
    .filter((r) => r.op.op === 'probe' || fmtMeasured(r.op, r.m) !== fmtExpected(r.op, r.e));
  const what = (op: Op): string => (op.op === 'map' ? `map ${op.buf} ${op.data_pages}+1` : op.op === 'remap' || op.op === 'unmap' ? `${op.op} ${op.buf}` : op.op);
  out.push('measured vs expected (pages; VmPin = mm->pinned_vm; headroom = allowance L - per-user counter):',
    `  ${'op'.padStart(4)}  ${'what'.padEnd(14)} ${'measured'.padEnd(30)} ${ref.padEnd(30)}${own ? ` ${own}` : ''}`);
  for (const r of rows) out.push(`  ${String(r.k).padStart(4)}  ${what(r.op).padEnd(14)} ${fmtMeasured(r.op, r.m).padEnd(30)} ${fmtExpected(r.op, r.e).padEnd(30)}${own ? ` ${fmtExpected(r.op, r.o)}` : ''}`);
  out.push(`  (${rows.length} of ${s.ops.length} ops shown: those that differ, and every probe)`, '',
    '---',
    'This report is generated by lockstep. The C reproducer checks the same values on',
    'its own: exit 1 and a BUG line when the kernel differs from the expected logic.',
    '');
  return out.join('\n');
}
