// Parser of the reproducer's result stream (harness/PROTOCOL.md). Pure and
// total: any byte sequence goes in, a summary comes out; a garbled or
// truncated stream is described, never thrown.

import type { MeasuredOp } from '../diff/index.ts';

export interface Hello {
  release: string;
  version: string;
  online_cpus: number;
  mlock_kb: number;
  paranoid: number;
  perfmon: boolean;
  /** the guest's PAGE_SIZE in kB (reproducer proto >= the page_kb field); absent from older reproducers */
  page_kb?: number;
}

export interface StreamError { i?: number; line?: number; msg: string }

export interface ScenarioStream {
  scenario: string;
  uid?: number;
  onlineCpus?: number;
  ops: MeasuredOp[];
  skip?: string;
  errors: StreamError[];
  ended: boolean;
}

export interface ParsedStream {
  hello?: Hello;
  scenarios: Map<string, ScenarioStream>;
  /** scenario ids in the order their first line arrived */
  order: string[];
  done: boolean;
  /** lines that were not a valid event, with their 1-based line number (first 20) */
  garbage: { line: number; text: string }[];
  garbageCount: number;
  /** the scenario whose begin came last and has no end yet */
  open?: string;
  /** the last line when the stream stopped mid-line (its last 200 chars) */
  cut?: string;
}

/**
 * One event of the result stream, typed as harness/PROTOCOL.md defines it
 * (vmtest's `Output` events are the model): what StreamParser.push returns
 * and runtimes hand to GroupRequest.onEvent as lines arrive. Only lines that
 * passed the parser's checks become events; garbage never does.
 */
export type StreamEvent =
  | { ev: 'hello'; hello: Hello }
  | { ev: 'begin'; scenario: string; uid?: number; online_cpus?: number }
  | { ev: 'skip'; scenario: string; reason: string }
  | { ev: 'op'; scenario: string; op: MeasuredOp }
  /** scenario: the one named on the line, or the one open when it came */
  | { ev: 'error'; scenario: string; error: StreamError }
  | { ev: 'end'; scenario: string }
  | { ev: 'done' };

/** A result line is < 1 KB; anything this long without a newline is garbage (and must not grow forever). */
export const MAX_LINE = 64 * 1024;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export class StreamParser {
  private partial = '';
  /** the current line outgrew MAX_LINE: drop it up to the next newline */
  private overlong = false;
  private lineNo = 0;
  readonly out: ParsedStream = { scenarios: new Map(), order: [], done: false, garbage: [], garbageCount: 0 };

  /** Feed raw text; returns the events completed by it (for progress display). */
  push(chunk: string): StreamEvent[] {
    const events: StreamEvent[] = [];
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', from);
      if (nl < 0) break;
      const piece = chunk.slice(from, nl);
      from = nl + 1;
      if (this.overlong) { this.overlong = false; this.partial = ''; continue; }
      const ev = this.line((this.partial + piece).replace(/\r$/, ''));
      this.partial = '';
      if (ev) events.push(ev);
    }
    if (!this.overlong) {
      this.partial += chunk.slice(from);
      if (this.partial.length > MAX_LINE) {
        this.lineNo++;
        this.bad(this.partial);
        this.partial = '';
        this.overlong = true;
      }
    }
    return events;
  }

  /** End of stream: a trailing partial line is garbage (the guest died mid-line). */
  end(): ParsedStream {
    if (this.partial.length) {
      // A last line without its newline still counts when it is a whole event
      // (an object that parses had its closing brace); otherwise it was cut.
      const before = this.out.garbageCount;
      this.line(this.partial.replace(/\r$/, ''));
      if (this.out.garbageCount > before) this.out.cut = this.partial.slice(-200);
      this.partial = '';
    }
    this.overlong = false;
    return this.out;
  }

  private bad(text: string): undefined {
    this.out.garbageCount++;
    if (this.out.garbage.length < 20) this.out.garbage.push({ line: this.lineNo, text: text.slice(0, 200) });
    return undefined;
  }

  private scenario(id: string): ScenarioStream {
    let s = this.out.scenarios.get(id);
    if (!s) {
      s = { scenario: id, ops: [], errors: [], ended: false };
      this.out.scenarios.set(id, s);
      this.out.order.push(id);
    }
    return s;
  }

  private line(text: string): StreamEvent | undefined {
    this.lineNo++;
    if (text.trim() === '') return undefined;
    let ev: unknown;
    try { ev = JSON.parse(text); } catch { return this.bad(text); }
    if (!isObj(ev) || typeof ev.ev !== 'string') return this.bad(text);
    const sid = str(ev.scenario);
    switch (ev.ev) {
      case 'hello': {
        const release = str(ev.release), online = num(ev.online_cpus);
        if (release === undefined || online === undefined) return this.bad(text);
        this.out.hello = {
          release, version: str(ev.version) ?? '', online_cpus: online,
          mlock_kb: num(ev.mlock_kb) ?? -1, paranoid: num(ev.paranoid) ?? -99, perfmon: ev.perfmon === true,
        };
        const pageKb = num(ev.page_kb);
        if (pageKb !== undefined) this.out.hello.page_kb = pageKb;
        return { ev: 'hello', hello: this.out.hello };
      }
      case 'begin': {
        if (!sid) return this.bad(text);
        const s = this.scenario(sid);
        s.uid = num(ev.uid); s.onlineCpus = num(ev.online_cpus);
        this.out.open = sid;
        return { ev: 'begin', scenario: sid, uid: s.uid, online_cpus: s.onlineCpus };
      }
      case 'skip': {
        if (!sid) return this.bad(text);
        const reason = str(ev.reason) ?? 'skipped (no reason given)';
        this.scenario(sid).skip = reason;
        return { ev: 'skip', scenario: sid, reason };
      }
      case 'op': {
        const i = num(ev.i), op = str(ev.op);
        if (!sid || i === undefined || !Number.isInteger(i) || i < 0 || !op || typeof ev.ok !== 'boolean') return this.bad(text);
        const m: MeasuredOp = {
          i, op, ok: ev.ok, errno: str(ev.errno) ?? '',
          // null when the reproducer could not read /proc/PID/status
          vmpin_kb: num(ev.vmpin_kb) ?? NaN, vmlck_kb: num(ev.vmlck_kb) ?? NaN,
        };
        if (num(ev.headroom) !== undefined) m.headroom = num(ev.headroom);
        if (typeof ev.spilled === 'boolean') m.spilled = ev.spilled;
        if (num(ev.mapped) !== undefined) m.mapped = num(ev.mapped);
        if (num(ev.helper_vmpin_kb) !== undefined) m.helper_vmpin_kb = num(ev.helper_vmpin_kb);
        this.scenario(sid).ops.push(m);
        return { ev: 'op', scenario: sid, op: m };
      }
      case 'error': {
        const e: StreamError = { msg: str(ev.msg) ?? 'error (no message)' };
        if (num(ev.i) !== undefined) e.i = num(ev.i);
        if (num(ev.line) !== undefined) e.line = num(ev.line);
        const at = sid ?? this.out.open;
        if (at === undefined) return this.bad(text);
        this.scenario(at).errors.push(e);
        return { ev: 'error', scenario: at, error: e };
      }
      case 'end': {
        if (!sid) return this.bad(text);
        this.scenario(sid).ended = true;
        if (this.out.open === sid) this.out.open = undefined;
        return { ev: 'end', scenario: sid };
      }
      case 'done':
        this.out.done = true;
        return { ev: 'done' };
      default:
        return this.bad(text);
    }
  }
}

/**
 * What a stream that stopped early lacks, in words: the missing done line,
 * the scenario left without its end (and its last op), a line cut mid-way.
 */
export function describeCut(s: ParsedStream): string {
  const parts: string[] = [];
  if (!s.hello) parts.push('the result stream has no hello line (the reproducer never started)');
  else if (!s.done) parts.push('the result stream stopped before its done line');
  else parts.push('the result stream is complete');
  if (s.open) {
    const st = s.scenarios.get(s.open);
    const last = st && st.ops.length ? st.ops[st.ops.length - 1] : undefined;
    parts.push(`${s.open} has no end line (last op seen: ${last ? `${last.i} ${last.op}` : 'none'})`);
  }
  if (s.cut !== undefined) parts.push(`the last line was cut mid-way: ${JSON.stringify(s.cut.length > 80 ? `...${s.cut.slice(-80)}` : s.cut)}`);
  if (s.garbageCount) parts.push(`${s.garbageCount} unreadable line(s)`);
  return parts.join('; ');
}

export function parseStream(text: string): ParsedStream {
  const p = new StreamParser();
  p.push(text);
  return p.end();
}

/**
 * Kinds of kernel splat the console scan tells apart; a splat policy
 * (src/policy/splats.ts) decides per kernel which fail a cell. Names follow
 * the kernel's own reports: panic(), oops (die()), BUG()/"BUG: ...",
 * KASAN and UBSAN reports, lockdep's "WARNING: possible ... locking",
 * RCU's stall warnings, khungtaskd's "blocked for more than N seconds" and
 * plain WARN()s.
 */
export const SPLAT_KINDS = ['panic', 'oops', 'bug', 'kasan', 'ubsan', 'lockdep', 'rcu_stall', 'hung_task', 'warn'] as const;
export type SplatKind = (typeof SPLAT_KINDS)[number];

// A console line starts with the printk timestamp "[    1.234567] " (and with
// CONFIG_PRINTK_CALLER a "[    T1] " after it), or with nothing.
const AT = String.raw`(?:^|\] )`;

/**
 * Console lines that start a splat, most specific first (a KASAN report is a
 * "BUG: KASAN:", a lockdep splat a "WARNING: possible ..."), so each line gets
 * one kind. Texts from the kernel sources: kernel/panic.c, arch/x86/kernel/dumpstack.c
 * and traps.c, mm/kasan/report.c, lib/ubsan.c, kernel/locking/lockdep.c,
 * kernel/rcu/tree_stall.h, kernel/hung_task.c, lib/bug.c + kernel/panic.c __warn().
 */
const CONSOLE_FAULTS: { kind: SplatKind; re: RegExp }[] = [
  { kind: 'panic', re: /Kernel panic - not syncing/ },
  { kind: 'oops', re: new RegExp(`${AT}Oops: `) },
  { kind: 'oops', re: /general protection fault/ },
  { kind: 'kasan', re: new RegExp(`${AT}BUG: KASAN: `) },
  { kind: 'bug', re: new RegExp(`${AT}(?:BUG: |kernel BUG at )`) },
  { kind: 'ubsan', re: new RegExp(`${AT}UBSAN: `) },
  // lockdep: "possible circular locking dependency detected", "possible recursive
  // locking detected", "inconsistent lock state", "possible irq lock inversion
  // dependency detected", "suspicious RCU usage", "bad unlock balance detected!",
  // "held lock freed!", "lock held when returning to user space!", "nested lock
  // was not taken", "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected"
  { kind: 'lockdep', re: new RegExp(`${AT}WARNING: (?:possible (?:circular|recursive|irq lock)|inconsistent lock state|suspicious RCU usage|bad unlock balance|held lock freed|lock held when returning|nested lock was not taken|\\S+-safe -> \\S+-unsafe lock order)`) },
  { kind: 'rcu_stall', re: /(?:^|\] )(?:rcu: )?INFO: \S+ (?:self-)?detected (?:expedited )?stalls?\b/ },
  { kind: 'hung_task', re: /(?:^|\] )INFO: task .+ blocked for more than \d+ seconds/ },
  { kind: 'warn', re: new RegExp(`${AT}WARNING: (?:CPU: \\d+ PID: \\d+ )?at `) },
];

/** One splat seen on the console: its kind, the line that started it and the ~30 lines around it. */
export interface ConsoleFault { kind: SplatKind; line: string; excerpt: string }

/** Every splat on the console, in console order, one per starting line (see CONSOLE_FAULTS for the texts). */
export function consoleFaults(log: string): ConsoleFault[] {
  const lines = log.split('\n');
  const found: ConsoleFault[] = [];
  for (let n = 0; n < lines.length; n++) {
    const text = lines[n]!.replace(/\r$/, '');
    const f = CONSOLE_FAULTS.find((x) => x.re.test(text));
    if (f) found.push({ kind: f.kind, line: text.trim(), excerpt: lines.slice(Math.max(0, n - 2), n + 30).join('\n') });
  }
  return found;
}

export function tail(text: string, lines = 40): string {
  const l = text.split('\n');
  return l.slice(Math.max(0, l.length - lines)).join('\n');
}
