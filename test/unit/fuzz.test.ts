// Property tests with a seeded PRNG over the three parsers that take
// untrusted input: kernel specs (parseSpec / parseSpecText), scenarios
// (compileScenario) and the guest's result stream (StreamParser). Thousands
// of generated and mutated inputs each: the parsers either accept (and the
// result keeps its invariants) or throw a ConfigError; nothing else escapes,
// nothing hangs. Set FUZZ_SEED to replay another sequence.

import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ID_RE, parseSpec, parseSpecText, specToJson } from '../../src/kernels/spec.ts';
import { compileScenario } from '../../src/scenario/load.ts';
import { toScript } from '../../src/scenario/ops.ts';
import { IDENT_RE, SCENARIO_LIMITS } from '../../src/scenario/schema.ts';
import { describeCut, parseStream, StreamParser, type ParsedStream } from '../../src/runner/stream.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { ROOT } from '../lib/faults-util.ts';
import { prng } from '../lib/prng.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261127);
const N = 3000;
/** A parse that takes this long is a hang, not slowness (each takes well under a millisecond). */
const HANG_MS = 2000;


class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number { return Math.floor(this.r() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  chance(p: number): boolean { return this.r() < p; }
  string(): string {
    return this.pick([
      () => '', () => 'a', () => '..', () => '../../etc/passwd', () => '/abs/path', () => 'x;rm -rf /', () => '$(reboot)', () => '`id`',
      () => 'a b', () => '\u0000', () => '\n', () => '\u2028', () => 'é', () => '\ud800', () => 'x'.repeat(this.int(300)),
      () => 'debian-6.1.190', () => '6.1.190', () => 'V3/shared', () => 'V9', () => 'auto', () => 'unknown', () => 'perf', () => 'L+3', () => 'L-999999999999',
      () => 'each', () => 'round-robin', () => 'c', () => 'perf_event_mlock_kb', () => 'io_uring', () => 'container', () => '__proto__', () => 'constructor',
      () => String.fromCharCode(...Array.from({ length: this.int(12) }, () => this.int(0x3000))),
    ])();
  }
  number(): number {
    return this.pick([0, -0, 1, -1, 2, 3, 4, 36, 256, 257, 1.5, -1e9, 1e9, 2 ** 31, 2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE, 65536, 65537, 200_000, 200_001, 516, 8192, 1e-300]);
  }
  value(depth = 0): unknown {
    const k = this.int(depth > 3 ? 4 : 7);
    if (k === 0) return this.string();
    if (k === 1) return this.number();
    if (k === 2) return this.chance(0.5);
    if (k === 3) return null;
    if (k === 4) return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
    return this.object([], depth + 1);
  }
  object(keys: readonly string[], depth = 0): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    for (let n = this.int(6); n > 0; n--) o[this.chance(0.8) && keys.length ? this.pick(keys) : this.string()] = this.value(depth);
    return o;
  }
  /** A valid object with 1..3 of its fields deleted, replaced or added. */
  mutate(base: Record<string, unknown>, keys: readonly string[]): unknown {
    const o: Record<string, unknown> = structuredClone(base);
    for (let n = 1 + this.int(3); n > 0; n--) {
      const ks = Object.keys(o);
      const m = this.int(4);
      if (m === 0 && ks.length) delete o[this.pick(ks)];
      else if (m === 1 && ks.length) o[this.pick(ks)] = this.value(1);
      else if (m === 2) o[this.chance(0.5) ? this.pick(keys) : this.string()] = this.value(1);
      else if (ks.length) {
        // nested: mutate inside an array of objects (ops) when there is one
        const k = this.pick(ks);
        const v = o[k];
        if (Array.isArray(v) && v.length) {
          const i = this.int(v.length);
          v[i] = typeof v[i] === 'object' && v[i] !== null ? this.mutate(v[i] as Record<string, unknown>, keys) : this.value(1);
        }
      }
    }
    return o;
  }
  /** Text: a JSON rendering cut, spliced or with bytes changed. */
  garble(text: string): string {
    let s = text;
    for (let n = 1 + this.int(3); n > 0; n--) {
      const at = this.int(s.length + 1);
      const m = this.int(5);
      if (m === 0) s = s.slice(0, at);
      else if (m === 1) s = s.slice(0, at) + s.slice(at + 1 + this.int(20));
      else if (m === 2) s = s.slice(0, at) + this.pick(['{', '}', '"', '\\', ',', ':', '[', ']', '\n', '\u0000', 'null', '1e400', '-']) + s.slice(at);
      else if (m === 3) s = s.slice(0, at) + String.fromCharCode(this.int(0x110)) + s.slice(at + 1);
      else s = s + s.slice(0, at);
    }
    return s;
  }
}

/** Run `fn`, which must return or throw a ConfigError; anything else (or a hang) is a finding. */
function probe<T>(findings: string[], label: string, input: unknown, fn: () => T): T | undefined {
  const t0 = Date.now();
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof ConfigError)) findings.push(`${label}: ${(e as Error)?.stack ?? String(e)} for ${JSON.stringify(input)?.slice(0, 300)}`);
    else if (!e.message.includes('Fix: ') || e.message.includes('\n')) findings.push(`${label}: error not one line with a fix: ${e.message}`);
    return undefined;
  } finally {
    const ms = Date.now() - t0;
    if (ms > HANG_MS) findings.push(`${label}: took ${ms} ms for ${JSON.stringify(input)?.slice(0, 300)}`);
  }
}

/** JSON with sorted keys (field order is not meaning). */
const canon = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) =>
  x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x);

/** Every string anywhere inside a value. */
const strings = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : Array.isArray(v) ? v.flatMap(strings) : v && typeof v === 'object' ? Object.values(v).flatMap(strings) : [];

const SPEC_KEYS = ['id', 'kind', 'expect', 'distro', 'description', 'package', 'version', 'package_version', 'path', 'url', 'sha256', 'source', 'runtime', 'accounting', 'counter'];
const SCENARIO_KEYS = ['id', 'description', 'cpus', 'mlock_kb', 'paranoid', 'rlimit_kb', 'cap_ipc_lock', 'fault_injection', 'ops', 'op', 'buf', 'cpu', 'data_pages', 'count',
  'via', 'pages', 'buffers', 'memlock_kb', 'name', 'value', 'online', 'seconds', 'key'];

const builtinJson = (d: string): Record<string, unknown>[] =>
  readdirSync(d).filter((n) => n.endsWith('.json')).flatMap((n) => {
    try { const v = JSON.parse(readFileSync(join(d, n), 'utf8')) as unknown; return Array.isArray(v) ? v : [v]; } catch { return []; }
  }).filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null);

t.test(`kernel spec parser: ${N * 2} generated specs and ${N / 3} texts (seed ${SEED})`, async (t) => {
  const g = new Gen(prng(SEED));
  const valid = [
    ...builtinJson(join(ROOT, 'kernels')).filter((s) => { try { parseSpec(s, 'x'); return true; } catch { return false; } }),
    { id: 'img', kind: 'image', version: '6.1.190', path: '/srv/bzImage', expect: 'V3/perf' },
    { id: 'img2', kind: 'image', version: '5.3.1', url: 'https://example.org/bzImage', sha256: 'a'.repeat(64), expect: { accounting: 'V2', counter: 'shared' } },
  ];
  t.ok(valid.length >= 3, `${valid.length} valid seeds`);
  const findings: string[] = [];
  let accepted = 0;
  for (let k = 0; k < N * 2; k++) {
    const input = k % 2 ? g.mutate(g.pick(valid), SPEC_KEYS) : g.chance(0.5) ? g.object(SPEC_KEYS) : g.value();
    const spec = probe(findings, 'parseSpec', input, () => parseSpec(input, 'fuzz.json'));
    if (!spec) continue;
    accepted++;
    if (!ID_RE.test(spec.id)) findings.push(`accepted a bad id ${JSON.stringify(spec.id)}`);
    for (const s of strings({ ...spec, origin: '', description: '' })) {
      if (/[\u0000-\u001f\u007f-\u009f`$;&|<>\\"'(){}]/.test(s)) findings.push(`accepted a string with a control or shell character: ${JSON.stringify(s)} in ${JSON.stringify(input)}`);
    }
    // what the parser accepts it accepts again in its own canonical form
    const again = probe(findings, 'parseSpec(specToJson)', spec, () => parseSpec(specToJson(spec), 'fuzz.json'));
    if (again && canon(specToJson(again)) !== canon(specToJson(spec))) findings.push(`round trip changed ${JSON.stringify(specToJson(spec))}`);
  }
  for (let k = 0; k < N / 3; k++) {
    const text = g.garble(JSON.stringify(g.chance(0.5) ? g.pick(valid) : valid.slice(0, 2), null, g.int(3)));
    probe(findings, 'parseSpecText', text, () => parseSpecText(text, 'fuzz.json'));
  }
  t.same(findings.slice(0, 10), [], `no crash, no hang, no unsafe acceptance (${findings.length} findings)`);
  t.ok(accepted > 50, `${accepted} mutated specs were still valid and kept their invariants`);
});

t.test(`scenario compiler: ${N * 2} generated scenarios (seed ${SEED})`, async (t) => {
  const g = new Gen(prng(SEED + 1));
  const valid = builtinJson(join(ROOT, 'harness', 'scenarios')).filter((s) => { try { compileScenario(s, 'x'); return true; } catch { return false; } });
  t.ok(valid.length >= 5, `${valid.length} valid seeds from harness/scenarios`);
  const findings: string[] = [];
  let accepted = 0;
  for (let k = 0; k < N * 2; k++) {
    const input = k % 3 ? g.mutate(g.pick(valid), SCENARIO_KEYS) : g.chance(0.5) ? { ...g.object(SCENARIO_KEYS), ops: Array.from({ length: g.int(4) }, () => g.object(SCENARIO_KEYS)) } : g.value();
    const s = probe(findings, 'compileScenario', input, () => compileScenario(input, 'fuzz.json'));
    if (!s) continue;
    accepted++;
    if (!IDENT_RE.test(s.id)) findings.push(`accepted a bad id ${JSON.stringify(s.id)}`);
    if (!(s.cpus >= 1 && s.cpus <= SCENARIO_LIMITS.maxCpus)) findings.push(`accepted cpus ${s.cpus}`);
    if (s.ops.length > SCENARIO_LIMITS.maxOps || s.ops.length === 0) findings.push(`accepted ${s.ops.length} ops`);
    for (const op of s.ops) {
      if (op.op === 'map' && (!Number.isInteger(op.cpu) || op.cpu < 0 || op.cpu >= s.cpus)) findings.push(`accepted map on CPU ${op.cpu} of ${s.cpus}`);
      if (op.op === 'map' && (!Number.isInteger(op.data_pages) || op.data_pages < 0)) findings.push(`accepted data_pages ${op.data_pages}`);
    }
    // the op script the reproducer reads: plain words, one op per line, nothing a shell would act on
    const script = toScript(s, 10_000);
    // ("unmap *" is the one glob-looking word, and the reproducer reads it as a word)
    if (!/^[A-Za-z0-9_.=\- \n]*$/.test(script.replace(/^unmap \*$/gm, 'unmap all'))) findings.push(`script with unexpected characters: ${JSON.stringify(script.slice(0, 200))}`);
    if (script.split('\n').filter(Boolean).length !== s.ops.length + 2) findings.push(`script line count != ops + 2 for ${s.id}`);
  }
  t.same(findings.slice(0, 10), [], `no crash, no hang, no unsafe acceptance (${findings.length} findings)`);
  t.ok(accepted > 100, `${accepted} mutated scenarios were still valid and kept their invariants`);
});

const plain = (p: ParsedStream): string => JSON.stringify({ ...p, scenarios: [...p.scenarios.entries()] });

t.test(`result stream parser: ${N} garbled streams, each also fed in random chunks (seed ${SEED})`, async (t) => {
  const g = new Gen(prng(SEED + 2));
  const real = [
    '{"ev":"hello","proto":1,"release":"6.1.0-54-cloud-amd64","version":"#1 SMP","machine":"x86_64","online_cpus":2,"mlock_kb":516,"paranoid":3,"perfmon":true}',
    '{"ev":"begin","scenario":"a","uid":10000,"online_cpus":2}',
    '{"ev":"op","scenario":"a","i":0,"op":"map","ok":true,"errno":"","vmpin_kb":0,"vmlck_kb":0}',
    '{"ev":"op","scenario":"a","i":1,"op":"probe","ok":true,"errno":"","headroom":255,"spilled":true,"vmpin_kb":0,"vmlck_kb":0}',
    '{"ev":"op","scenario":"a","i":2,"op":"ballast","ok":false,"errno":"EPERM","msg":"x","mapped":1,"helper_vmpin_kb":null,"vmpin_kb":null,"vmlck_kb":0}',
    '{"ev":"error","scenario":"a","i":3,"msg":"op timed out after 2s"}',
    '{"ev":"skip","scenario":"b","reason":"needs 4 CPUs"}',
    '{"ev":"error","line":7,"msg":"line 7: bad"}',
    '{"ev":"end","scenario":"a"}',
    '{"ev":"done"}',
  ].join('\n') + '\n';
  const findings: string[] = [];
  for (let k = 0; k < N; k++) {
    const text = k % 4 === 0
      ? String.fromCharCode(...Array.from({ length: g.int(400) }, () => g.pick([10, 13, 123, 125, 34, 58, 44, g.int(256), g.int(0xffff)])))
      : g.garble(k % 4 === 1 ? real.repeat(1 + g.int(3)) : real);
    const whole = probe(findings, 'parseStream', text, () => parseStream(text));
    if (!whole) { findings.push(`parseStream returned nothing for ${JSON.stringify(text.slice(0, 100))}`); continue; }
    const chunked = probe(findings, 'StreamParser chunks', text, () => {
      const p = new StreamParser();
      for (let at = 0; at < text.length;) { const n = 1 + g.int(64); p.push(text.slice(at, at + n)); at += n; }
      return p.end();
    });
    if (!chunked || plain(chunked) !== plain(whole)) findings.push(`chunking changed the parse of ${JSON.stringify(text.slice(0, 200))}`);
    const d = probe(findings, 'describeCut', whole, () => describeCut(whole));
    if (typeof d !== 'string' || !d) findings.push('describeCut gave no text');
    const lines = text.split('\n').filter((l) => l.replace(/\r$/, '').trim() !== '').length;
    if (whole.garbageCount > lines) findings.push(`more garbage (${whole.garbageCount}) than lines (${lines})`);
    if (whole.done && !text.includes('"done"')) findings.push('done without a done line');
  }
  t.same(findings.slice(0, 10), [], `no crash, no hang, chunking never changes the parse (${findings.length} findings)`);
});
