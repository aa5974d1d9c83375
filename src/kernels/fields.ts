// Reading the fields of one JSON spec object: every read marks a field as
// known, every string gets the same checks (control characters, shell
// metacharacters, length). Pure: no I/O.

import { ConfigError } from '../util/errors.ts';
import { DEBIAN_SUITES } from './obtain/deb-kernels.ts';

/** Control characters (C0, DEL, C1) — never valid in any spec string. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Shell metacharacters refused in every spec string. `~`, `+`, `:` stay allowed (Debian versions use them). */
const SHELL_META = /[`$;&|<>\\*?!"'(){}[\]]/;

export const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
export const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/**
 * Reads the fields of one JSON object, each read marks the field as known;
 * `finish()` refuses the rest. Kind validators are written against it.
 */
export class FieldReader {
  private readonly seen = new Set<string>();

  constructor(
    readonly obj: Record<string, unknown>,
    /** file (or "command line") for errors */
    readonly file: string,
    /** field-path prefix, e.g. "[2]." */
    readonly at: string,
  ) {}

  error(field: string, problem: string, fix: string): ConfigError {
    return new ConfigError(this.file, `${this.at}${field}`, problem, fix);
  }

  has(field: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.obj, field) && this.obj[field] !== undefined;
  }

  /** A string field; checks control characters, shell metacharacters, length and an optional pattern. */
  string(field: string, opts: { required: true; pattern?: RegExp; what?: string; max?: number }): string;
  string(field: string, opts?: { required?: false; pattern?: RegExp; what?: string; max?: number }): string | undefined;
  string(field: string, opts: { required?: boolean; pattern?: RegExp; what?: string; max?: number } = {}): string | undefined {
    this.seen.add(field);
    if (!this.has(field)) {
      if (opts.required) throw this.error(field, 'missing', `add "${field}": ${opts.what ?? 'a string'}`);
      return undefined;
    }
    const v = this.obj[field];
    if (typeof v !== 'string') {
      throw this.error(field, `must be a string, got ${typeName(v)} ${show(v)}`, `write "${field}" as a JSON string: ${opts.what ?? 'a string'}`);
    }
    checkString(v, (problem, fix) => this.error(field, problem, fix), opts.max ?? 4096);
    if (opts.pattern && !opts.pattern.test(v)) {
      throw this.error(field, `invalid value ${show(v)}`, `use ${opts.what ?? `a value matching ${opts.pattern}`}`);
    }
    return v;
  }

  /** An arbitrary JSON value (validated by the caller). */
  raw(field: string): unknown {
    this.seen.add(field);
    return this.obj[field];
  }

  /** Refuse every field that no read asked for. */
  finish(kindLabel: string): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k)) {
        throw this.error(
          k,
          `unknown field for ${kindLabel}`,
          `remove it (allowed: ${[...this.seen].join(', ')}); check the spelling`,
        );
      }
    }
  }
}

/** The checks every spec string gets. */
export function checkString(v: string, err: (problem: string, fix: string) => ConfigError, max: number): void {
  if (v.length === 0) throw err('is empty', 'give a non-empty value or leave the field out');
  if (v.length > max) throw err(`is ${v.length} characters long (max ${max})`, 'shorten it');
  const c = CONTROL.exec(v);
  if (c) {
    const code = c[0].charCodeAt(0).toString(16).padStart(2, '0');
    throw err(`contains control character U+00${code.toUpperCase()}`, 'remove control characters (newlines, tabs, escapes)');
  }
  const m = SHELL_META.exec(v);
  if (m) throw err(`contains the shell metacharacter ${show(m[0])}`, `remove it (these are refused in every spec string: \` $ ; & | < > \\ * ? ! " ' ( ) { } [ ])`);
  if (v !== v.trim()) throw err('has leading or trailing whitespace', 'remove the surrounding whitespace');
}

/** The optional `suite` field: one of the Debian suites lockstep keeps lists of. */
export function readSuite(r: FieldReader): string | undefined {
  const suite = r.string('suite', { what: `a Debian suite: ${DEBIAN_SUITES.join(', ')}`, max: 32 });
  if (suite !== undefined && !(DEBIAN_SUITES as readonly string[]).includes(suite)) {
    throw r.error('suite', `unknown Debian suite ${show(suite)}`, `use one of ${DEBIAN_SUITES.join(', ')} (or leave "suite" out for the machine's apt sources)`);
  }
  return suite;
}

