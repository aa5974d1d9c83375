// Errors a user can fix. The CLI prints them as one line naming the file,
// the field and the fix, and exits 2. Anything else is a bug (exit 1).

/** Control characters (a field name from JSON can hold a newline) escaped: the CLI prints one line. */
const oneLine = (s: string): string =>
  // eslint-disable-next-line no-control-regex
  s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export class ConfigError extends Error {
  constructor(
    /** File (or "command line", "environment") the bad input came from. */
    readonly file: string,
    /** Field path inside it, e.g. "ops[3].data_pages"; "" when the whole file is at fault. */
    readonly field: string,
    /** What is wrong. */
    readonly problem: string,
    /** What to do about it. */
    readonly fix: string,
  ) {
    super(oneLine(`${file}${field ? `: ${field}` : ''}: ${problem}. Fix: ${fix}`));
    this.name = 'ConfigError';
  }
}

/** A needed tool or service is missing from this machine (qemu, busybox, dockerd...). */
export class MissingDependencyError extends ConfigError {
  constructor(what: string, fix: string) {
    super('environment', '', `${what} is missing`, fix);
    this.name = 'MissingDependencyError';
  }
}

export const isUserError = (e: unknown): e is ConfigError => e instanceof ConfigError;
