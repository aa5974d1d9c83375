// Validation of user-written JSON (scenarios, kernel specs, results.json)
// with zod, and the one translation from a zod issue to lockstep's error
// line "<file>: <field>: <problem>. Fix: <fix>" (a ConfigError). The
// building blocks here carry their own messages; the schemas in
// src/scenario/schema.ts, src/kernels/spec.ts and src/results/schema.ts are
// written from them, and `lockstep schema <kind>` publishes them as JSON
// Schema (schemas/). Pure: no I/O.
//
// The one rule for text that might one day reach a shell (ids, names,
// paths, versions): no control character and no shell metacharacter
// (SHELL_META_RE). Descriptions never reach a shell: they only refuse
// control characters (prose may cite "issue #25 (samply); see ...").

import { z } from 'zod';
import { ConfigError } from './errors.ts';

/** C0 / DEL / C1 controls and the Unicode line and paragraph separators: never valid in any string lockstep reads. */
// eslint-disable-next-line no-control-regex
export const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/**
 * Characters a shell gives a meaning to (besides blanks): quoting,
 * expansion, globbing, control operators, comments. `~`, `+`, `:`, `,`, `=`,
 * `%`, `@`, `^` stay allowed (Debian versions and URLs use them).
 */
export const SHELL_META_RE = /[`$;|&<>()\\'"*?!{}[\]#]/;
/** The metacharacters, listed for fix texts. */
export const SHELL_META_LIST = '` $ ; | & < > ( ) \\ \' " * ? ! { } [ ] #';

// ---------------------------------------------------------------------------
// Messages

const SEP = '\u0000Fix: ';

/** An issue message carrying a problem and its fix (split again by toConfigError). */
export const explain = (problem: string, fix: string): string => `${problem}${SEP}${fix}`;

/** The JSON-ish type name of any value, for messages. */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isFinite(v) ? 'number' : String(v);
  return typeof v;
}

/** A short, printable rendering of any value for messages (control characters escaped, truncated). */
export function show(v: unknown): string {
  switch (typeof v) {
    case 'string': {
      const s = JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
      // JSON.stringify leaves U+2028/2029 and C1 controls raw: escape them too.
      return s.replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    }
    case 'number':
      return Object.is(v, -0) ? '0' : String(v);
    case 'boolean':
      return String(v);
    case 'undefined':
      return 'undefined';
    case 'object':
      if (v === null) return 'null';
      return Array.isArray(v) ? `an array of ${v.length}` : 'an object';
    default:
      return `a ${typeof v}`;
  }
}

/** Levenshtein distance, for "did you mean" on unknown fields and names. */
function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** 'did you mean "x"? ' for the closest of `options` (edit distance < 3), else ''. */
export function didYouMean(got: string, options: readonly string[]): string {
  let best: string | undefined;
  let bestD = 3;
  for (const o of options) {
    const d = editDistance(got.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return best === undefined ? '' : `did you mean "${best}"? `;
}

/** '"a", "b", "c"' */
export const quotedList = (xs: readonly string[]): string => xs.map((x) => `"${x}"`).join(', ');

/** Field path of an issue as lockstep prints it: ops[3].data_pages, [2].id. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out === '' ? String(k) : `.${String(k)}`;
  return out;
}

const lastKey = (path: readonly PropertyKey[] | undefined): string => {
  const k = path?.[path.length - 1];
  return typeof k === 'string' ? k : 'value';
};

/**
 * The ConfigError of the first issue of a failed parse. `prefix` is put
 * before the issue's field path ("[2]." inside a spec array). An issue of an
 * unknown key names that key as the field.
 */
export function toConfigError(error: z.ZodError, file: string, prefix = ''): ConfigError {
  const iss = error.issues[0]!;
  let path = [...iss.path];
  if (iss.code === 'unrecognized_keys' && iss.keys.length > 0) path = [...path, iss.keys[0]!];
  const field = `${prefix}${fieldPath(path)}`.replace(/\.$/, '');
  const at = iss.message.indexOf(SEP);
  if (at >= 0) return new ConfigError(file, field, iss.message.slice(0, at), iss.message.slice(at + SEP.length));
  return new ConfigError(file, field, iss.message, 'correct the value (the JSON Schemas in schemas/ describe every field)');
}

/** schema.parse(value), its first issue thrown as a ConfigError naming `file`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, file: string, prefix = ''): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw toConfigError(r.error, file, prefix);
  return r.data;
}

// ---------------------------------------------------------------------------
// Building blocks (each carries its messages)

/**
 * A JSON object with exactly the fields of `shape`: an unknown field is
 * refused with "did you mean"; a non-object with `notObject`.
 */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T, what: string, fixNotObject: string) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        const k = iss.keys[0]!;
        return explain(`unknown field ${show(k)} in ${what}`, `${didYouMean(k, allowed)}remove it; ${what} takes ${quotedList(allowed)}`);
      }
      return explain(`${what} must be a JSON object, got ${typeName(iss.input)}`, fixNotObject);
    },
  });
}

/** "missing <what>. Fix: add "<field>": <example>" for an absent field, else undefined. */
const missing = (iss: { input?: unknown; path?: PropertyKey[] }, what: string, example: string): string | undefined =>
  iss.input === undefined ? explain(`missing ${what}`, `add "${lastKey(iss.path)}": ${example}`) : undefined;

/** A whole number in min..max (-0 read as 0). `example` is shown when the field is missing. */
export function int(what: string, min: number, max: number, example = String(Math.max(min, Math.min(max, 1)))) {
  return z
    .number({ error: (iss) => missing(iss, what, example) ?? explain(`${what} must be a whole number, got ${typeName(iss.input)} ${show(iss.input)}`, `write a number in ${min}..${max} without quotes`) })
    .int({ error: (iss) => explain(`${what} must be a whole number, got ${show(iss.input)}`, `use a whole number in ${min}..${max}`) })
    .min(min, { error: (iss) => explain(`${what} ${show(iss.input)} is out of range`, `use a whole number in ${min}..${max}`) })
    .max(max, { error: (iss) => explain(`${what} ${show(iss.input)} is out of range`, `use a whole number in ${min}..${max}`) })
    .transform((v) => (v === 0 ? 0 : v));
}

export function bool(what: string, example = 'false') {
  return z.boolean({ error: (iss) => missing(iss, what, example) ?? explain(`${what} must be true or false, got ${typeName(iss.input)} ${show(iss.input)}`, 'write true or false without quotes') });
}

/** Any string (type checked only; `example` shown when missing). */
export function str(what: string, example: string) {
  return z.string({ error: (iss) => missing(iss, what, example) ?? explain(`${what} must be a string, got ${typeName(iss.input)} ${show(iss.input)}`, `write it in double quotes, e.g. ${example}`) });
}

/** One line of prose (descriptions): no control character, not blank, at most `max` characters. Never reaches a shell. */
export function prose(what: string, max: number, example: string) {
  return str(what, example).superRefine((v, ctx) => {
    const c = CONTROL_RE.exec(v);
    if (c) ctx.addIssue({ code: 'custom', message: explain(`contains control character U+${c[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`, 'keep it to one line of printable text (no newline, tab or escape)') });
    else if (v.trim() === '') ctx.addIssue({ code: 'custom', message: explain(`${what} is empty`, `say in one line ${example}`) });
    else if (v.length > max) ctx.addIssue({ code: 'custom', message: explain(`${what} is ${v.length} characters long`, `keep it to one line of at most ${max}`) });
  });
}

/** The checks of every string that may name things (ids, names, paths, versions): the one shell rule. Returns the issue message or null. */
export function unsafeText(v: string, what: string): string | null {
  const subject = what === '' ? '' : `${what} `;
  if (CONTROL_RE.test(v)) return explain(`${subject}contains a control character (newline, tab, escape...)`, 'keep it to one line of printable text');
  const m = SHELL_META_RE.exec(v);
  if (m) return explain(`${subject}contains the shell metacharacter ${show(m[0])}`, `remove it (refused in every name, id, path and version: ${SHELL_META_LIST})`);
  return null;
}

/** A string free of control characters and shell metacharacters, optionally matching `re` (published as the JSON Schema pattern). */
export function safeString(what: string, example: string, re?: { re: RegExp; problem: (v: string) => string; fix: string }) {
  const s = str(what, example).superRefine((v, ctx) => {
    const bad = unsafeText(v, what);
    if (bad !== null) ctx.addIssue({ code: 'custom', message: bad });
  });
  return re ? s.regex(re.re, { error: (iss) => explain(re.problem(iss.input as string), re.fix) }) : s;
}

/** One of `options`, with "did you mean". */
export function oneOf<const T extends readonly [string, ...string[]]>(options: T, what: string) {
  return z.enum(options, {
    error: (iss) => {
      const v = iss.input;
      if (v === undefined) return explain(`missing ${what}`, `add "${lastKey(iss.path)}": "${options[0]}" (one of ${quotedList(options)})`);
      if (typeof v !== 'string') return explain(`${what} must be a string, one of ${quotedList(options)}; got ${typeName(v)} ${show(v)}`, `write one of ${quotedList(options)}`);
      return explain(`${what} ${show(v)} is not one of ${quotedList(options)}`, `${didYouMean(v, options)}use one of ${quotedList(options)}`);
    },
  });
}

/**
 * Alternatives told apart by the input's JSON type: the message of a failed
 * union is that of the alternative meant for the input's type (`pick`
 * returns its index), so "cpu": 300 reads as "out of range".
 */
export function either<const T extends readonly [z.ZodType, ...z.ZodType[]]>(options: T, pick: (input: unknown) => number) {
  return z.union(options, {
    error: (iss) => {
      if (iss.code !== 'invalid_union') return undefined;
      const inner = iss.errors[pick(iss.input)]?.[0];
      return inner?.message;
    },
  });
}
