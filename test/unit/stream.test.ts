// The result-stream parser on cut and garbled input (a guest can die at any
// byte), and the verdicts the matrix derives from such a stream.

import t from 'tap';
import { cellsFromOutcome, type CellContext } from '../../src/matrix/cells.ts';
import { type GroupOutcome, groupStatus } from '../../src/runner/runtime.ts';
import { consoleFaults, describeCut, MAX_LINE, parseStream, StreamParser, type ParsedStream } from '../../src/runner/stream.ts';
import { compileScenario } from '../../src/scenario/load.ts';

// A real stream, as a 6.1.190 guest wrote it (one scenario, then one whose op timed out).
const REAL = [
  '{"ev":"hello","proto":1,"release":"6.1.0-54-cloud-amd64","version":"#1 SMP PREEMPT_DYNAMIC Debian 6.1.190-1 (2026-10-16)","machine":"x86_64","online_cpus":2,"mlock_kb":516,"paranoid":3,"perfmon":true}',
  '{"ev":"begin","scenario":"a-ok","uid":10000,"online_cpus":2}',
  '{"ev":"op","scenario":"a-ok","i":0,"op":"map","ok":true,"errno":"","vmpin_kb":0,"vmlck_kb":0}',
  '{"ev":"op","scenario":"a-ok","i":1,"op":"probe","ok":true,"errno":"","headroom":255,"spilled":true,"vmpin_kb":0,"vmlck_kb":0}',
  '{"ev":"end","scenario":"a-ok"}',
  '{"ev":"begin","scenario":"f-hang","uid":10001,"online_cpus":2}',
  '{"ev":"op","scenario":"f-hang","i":0,"op":"map","ok":true,"errno":"","vmpin_kb":0,"vmlck_kb":0}',
  '{"ev":"error","scenario":"f-hang","i":1,"msg":"op timed out after 2s"}',
  '{"ev":"end","scenario":"f-hang"}',
  '{"ev":"done"}',
].map((l) => `${l}\n`).join('');

/** The parse as plain data, to compare two parses. */
const plain = (p: ParsedStream): unknown => JSON.parse(JSON.stringify({ ...p, scenarios: [...p.scenarios.entries()] }));

t.test('a whole stream', async (t) => {
  const p = parseStream(REAL);
  t.equal(p.done, true);
  t.equal(p.garbageCount, 0);
  t.equal(p.cut, undefined);
  t.equal(p.open, undefined);
  t.same(p.order, ['a-ok', 'f-hang']);
  t.equal(p.scenarios.get('a-ok')!.ops.length, 2);
  t.same(p.scenarios.get('f-hang')!.errors, [{ msg: 'op timed out after 2s', i: 1 }]);
  t.equal(describeCut(p), 'the result stream is complete');
});

t.test('push hands back typed events as lines complete, none for garbage', async (t) => {
  const p = new StreamParser();
  const lines = REAL.split('\n').filter(Boolean);
  const evs = [...p.push(`${lines[0]}\n${lines[1]}\n{"ev":"op","i":"x"}\n${lines[2]!.slice(0, 30)}`), ...p.push(`${lines[2]!.slice(30)}\n`), ...p.push(lines.slice(3).map((l) => `${l}\n`).join(''))];
  t.same(evs.map((e) => e.ev), ['hello', 'begin', 'op', 'op', 'end', 'begin', 'op', 'error', 'end', 'done']);
  const [hello, begin, op0] = evs;
  t.match(hello, { ev: 'hello', hello: { release: '6.1.0-54-cloud-amd64', online_cpus: 2, mlock_kb: 516 } });
  t.match(begin, { ev: 'begin', scenario: 'a-ok', uid: 10000, online_cpus: 2 });
  t.match(op0, { ev: 'op', scenario: 'a-ok', op: { i: 0, op: 'map', ok: true, vmpin_kb: 0 } });
  t.match(evs[7], { ev: 'error', scenario: 'f-hang', error: { msg: 'op timed out after 2s', i: 1 } });
  t.equal(p.end().garbageCount, 1, 'the garbled line is counted, not an event');
});

t.test('cut at every byte: never throws, names what is missing', async (t) => {
  for (let n = 0; n < REAL.length; n++) {
    const text = REAL.slice(0, n);
    const p = parseStream(text);
    const lastLine = text.slice(text.lastIndexOf('\n') + 1);
    let whole = lastLine.trim() === '';
    try { if (!whole) { JSON.parse(lastLine); whole = true; } } catch { /* cut */ }
    // only the done line itself, whole but for its newline, may end the stream
    const doneLine = whole && lastLine.includes('"ev":"done"');
    if (p.done !== doneLine) t.fail(`done=${p.done} at byte ${n}`);
    if (!whole && p.cut !== lastLine.slice(-200)) t.fail(`byte ${n}: cut ${JSON.stringify(p.cut)} != ${JSON.stringify(lastLine)}`);
    if (whole && p.cut !== undefined) t.fail(`byte ${n}: whole last line reported as cut`);
    const d = describeCut(p);
    if (!doneLine && !/no hello line|stopped before its done line/.test(d)) t.fail(`byte ${n}: ${d}`);
    if (p.open && !d.includes(`${p.open} has no end line`)) t.fail(`byte ${n}: open scenario not named: ${d}`);
  }
  t.pass(`${REAL.length} cut points`);
  // a line cut in the middle of a field, spelled out
  const cutAt = REAL.indexOf('"vmpin_kb":0,"vmlck_kb":0}\n{"ev":"end","scenario":"a-ok"}') + 5;
  const p = parseStream(REAL.slice(0, cutAt));
  t.equal(p.open, 'a-ok');
  t.equal(p.scenarios.get('a-ok')!.ops.length, 1, 'the complete op line before the cut is kept');
  t.equal(describeCut(p), 'the result stream stopped before its done line; a-ok has no end line (last op seen: 0 map); the last line was cut mid-way: "...-ok\\",\\"i\\":1,\\"op\\":\\"probe\\",\\"ok\\":true,\\"errno\\":\\"\\",\\"headroom\\":255,\\"spilled\\":true,\\"vmpi"; 1 unreadable line(s)');
});

t.test('a whole last line without its newline still counts', async (t) => {
  const p = parseStream(REAL.slice(0, -1));
  t.equal(p.done, true);
  t.equal(p.cut, undefined);
  t.equal(p.garbageCount, 0);
});

t.test('chunking does not change the parse', async (t) => {
  const whole = plain(parseStream(REAL));
  let seed = 7;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  for (let k = 0; k < 300; k++) {
    const p = new StreamParser();
    let at = 0;
    while (at < REAL.length) { const n = 1 + rnd(40); p.push(REAL.slice(at, at + n)); at += n; }
    t.same(plain(p.end()), whole, `split ${k}`, { diagnostic: false });
  }
  // byte by byte, and CRLF line ends as a serial console might add
  const p = new StreamParser();
  for (const ch of REAL.replace(/\n/g, '\r\n')) p.push(ch);
  t.same(plain(p.end()), whole);
});

t.test('garbled lines are counted, never thrown, never taken for results', async (t) => {
  const bad = [
    'not json', '{"ev":"op"', '[1,2,3]', '"string"', 'null', '{}', '{"ev":42}', '{"ev":"nope"}',
    '{"ev":"op","scenario":"a-ok","i":"1","op":"map","ok":true}',
    '{"ev":"op","scenario":"a-ok","i":-1,"op":"map","ok":true}',
    '{"ev":"op","scenario":"a-ok","i":1.5,"op":"map","ok":true}',
    '{"ev":"op","scenario":"a-ok","i":2,"op":"map","ok":"true"}',
    '{"ev":"begin"}', '{"ev":"hello","release":7}', '\u0000\u0001\u00ff\ufffd', '{"ev":"error","msg":"no scenario, none open"}',
    '{"__proto__":{"ev":"done"}}', '{"ev":"done"'.repeat(1000),
  ];
  const p = parseStream(bad.map((l) => `${l}\n`).join(''));
  t.equal(p.garbageCount, bad.length);
  t.equal(p.garbage.length, Math.min(20, bad.length));
  t.equal(p.done, false);
  t.equal(p.scenarios.size, 0);
  t.equal(p.hello, undefined);
  // interleaved with a good stream: the good lines all still count
  const mixed = REAL.split('\n').flatMap((l, k) => [l, bad[k % bad.length]]).join('\n');
  const q = parseStream(mixed);
  t.equal(q.done, true);
  t.same([...q.scenarios.keys()], ['a-ok', 'f-hang']);
  t.equal(q.scenarios.get('a-ok')!.ops.length, 2);
});

t.test('an endless line without a newline is dropped, not kept in memory', async (t) => {
  const p = new StreamParser();
  const blob = 'x'.repeat(8192);
  for (let k = 0; k < (4 * MAX_LINE) / blob.length; k++) p.push(blob);
  p.push('\n');
  p.push(REAL);
  const r = p.end();
  t.equal(r.done, true, 'the stream after the overlong line is read');
  t.equal(r.garbageCount, 1);
  t.ok(r.garbage[0].text.length <= 200);
});

const S = [
  compileScenario({ id: 'a-ok', description: 'x', cpus: 2, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'probe' }] }, 'a.json'),
  compileScenario({ id: 'f-hang', description: 'x', cpus: 2, ops: [{ op: 'map', buf: 'a', cpu: 0, data_pages: 2 }, { op: 'probe' }] }, 'b.json'),
];
const ctx: CellContext = {
  kernel: 'k', logic: null, runtime: 'qemu', startedAt: '2026-01-01T00:00:00Z', scenarioHash: () => 'h', rerun: (s) => `rerun ${s}`,
};
const outcome = (stream: ParsedStream, o: Partial<GroupOutcome> = {}): GroupOutcome => ({
  status: 'error', detail: `QEMU exited (code 0) and ${describeCut(stream)}`, stream, faults: [], consoleTail: 'tail', consoleLog: null, resultsLog: null,
  accel: 'tcg', accelWhy: 'test', bootMs: 1, wallMs: 2, argv: [], ...o,
});

t.test('cells from a cut stream: finished ones kept, the cut one ERROR with what is missing', async (t) => {
  const cutAt = REAL.indexOf('{"ev":"op","scenario":"f-hang"') + 20;
  const cells = cellsFromOutcome(ctx, S, outcome(parseStream(REAL.slice(0, cutAt))));
  t.equal(cells[0].verdict, 'UNCHECKED', 'a-ok ended before the cut: measured, kept');
  t.equal(cells[0].measured.length, 2);
  t.equal(cells[1].verdict, 'ERROR');
  t.equal(cells[1].reason, 'QEMU exited (code 0) and the result stream stopped before its done line; f-hang has no end line (last op seen: none); the last line was cut mid-way: "{\\"ev\\":\\"op\\",\\"scenario"; 1 unreadable line(s) during f-hang (last op seen: none)');
  t.equal(cells[1].console_excerpt, 'tail');
});

t.test('cells from a stream cut with a panic on the console: PANIC', async (t) => {
  const consoleText = '[    3.2] sysrq: Trigger a crash\n[    3.2] Kernel panic - not syncing: sysrq triggered crash\n[    3.2] Call Trace:\n';
  const faults = consoleFaults(consoleText);
  t.equal(faults[0].kind, 'panic');
  const cutAt = REAL.indexOf('{"ev":"op","scenario":"f-hang"');
  const cells = cellsFromOutcome(ctx, S, outcome(parseStream(REAL.slice(0, cutAt)), { faults }));
  t.equal(cells[0].verdict, 'UNCHECKED');
  t.equal(cells[1].verdict, 'PANIC');
  t.match(cells[1].reason, /kernel panic during f-hang \(last op seen: none\): .*sysrq triggered crash/);
  t.match(cells[1].console_excerpt, /Call Trace/);
});

t.test('cells from no stream at all', async (t) => {
  const cells = cellsFromOutcome(ctx, S, outcome(parseStream(''), { status: 'timeout', detail: 'VM killed at its 12s timeout' }));
  t.same(cells.map((c) => c.verdict), ['TIMEOUT', 'TIMEOUT']);
  t.equal(cells[0].reason, 'VM killed at its 12s timeout before a-ok started');
});

t.test('groupStatus: one ladder for QEMU and vng boots', (t) => {
  const end = { why: 'exited' as const, who: 'QEMU', exitCode: 0, exitSignal: null, stderr: '', timeoutMs: 90_000 };
  const full = parseStream('{"ev":"hello","proto":1,"release":"6.1.0","online_cpus":2}\n{"ev":"done"}\n');
  const none = parseStream('');
  const cut = parseStream('{"ev":"hello","proto":1,"release":"6.1.0","online_cpus":2}\n{"ev":"begin","scenario":"a","uid":10000,"online_cpus":2}\n');
  t.strictSame(groupStatus(end, full, false), { status: 'ok', detail: '' });
  t.strictSame(groupStatus({ ...end, why: 'timeout' }, full, false), { status: 'timeout', detail: 'VM killed at its 90s timeout' });
  t.strictSame(groupStatus({ ...end, why: 'timeout', who: 'vng' }, full, false), { status: 'timeout', detail: 'vng killed at its 90s timeout' });
  t.equal(groupStatus(end, full, true).status, 'aborted', 'an interrupted run wins over a complete stream');
  t.match(groupStatus({ ...end, why: 'spawn-failed', stderr: 'spawn qemu ENOENT' }, none, false), { status: 'error', detail: /ENOENT/ });
  t.match(groupStatus({ ...end, exitCode: 1, stderr: 'qemu: could not load kernel' }, none, false), { status: 'boot_fail', detail: /QEMU exited \(code 1\) before the reproducer started: qemu: could not load kernel/ });
  t.match(groupStatus({ ...end, exitSignal: 'SIGKILL' }, cut, false), { status: 'error', detail: /SIGKILL\) and .*a has no end line/ });
  t.end();
});
