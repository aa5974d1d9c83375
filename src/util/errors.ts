// Errors a user can fix. The CLI prints them as one line naming the file,
// the field and the fix, and exits 2. Anything else is a bug (exit 1).

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
    super(`${file}${field ? `: ${field}` : ''}: ${problem}. Fix: ${fix}`);
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
