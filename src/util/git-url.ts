// Which git repository addresses lockstep passes to git (kernel specs'
// "source.git"): an allow-list of transports. git itself would run a
// command for `ext::CMD` (and any other `<transport>::address` remote
// helper) and reads an argument starting with `-` as an option
// (`--upload-pack=CMD` runs CMD): both are refused here, before git sees
// them. Pure: no I/O.

/** The URL schemes git is allowed to use for a user-given repository (also exported to git as GIT_ALLOW_PROTOCOL). */
export const GIT_SCHEMES = ['https', 'http', 'git', 'ssh', 'file'] as const;

/** git's own allow-list variable: any other transport (ext, fd, remote helpers) is refused by git too. */
export const GIT_ALLOW_PROTOCOL = GIT_SCHEMES.join(':');

/** scp-like ssh address: [user@]host:path, host without '/' before the ':' (git's own rule, urlmatch/connect.c). */
const SCP_RE = /^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*:[^:]+$/;

/**
 * Why `url` is not a repository address lockstep hands to git, or null when
 * it is one: `scheme://...` with a scheme in GIT_SCHEMES (no credentials),
 * scp-like `user@host:path`, or (only when `localPaths`) an absolute path.
 * Refused: a leading `-` (git reads it as an option), `<transport>::...`
 * (ext::, fd::: git runs a helper), any other scheme, blanks and controls.
 * Source of the rules: git-clone(1) "GIT URLS", git-config(1) protocol.allow.
 */
export function gitUrlProblem(url: string, localPaths = false): string | null {
  if (url.startsWith('-')) return 'starts with "-" (git would read it as an option)';
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(url)) return 'contains a blank or control character';
  if (url.includes('::')) return `uses a git remote helper ("${url.slice(0, url.indexOf('::'))}::"), which runs a program`;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (scheme) {
    const s = scheme[1]!.toLowerCase();
    if (!(GIT_SCHEMES as readonly string[]).includes(s)) return `unsupported scheme "${s}://"`;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return 'is not a URL';
    }
    if (u.password) return 'contains a password';
    return null;
  }
  if (url.startsWith('/')) return localPaths ? null : 'is a local path';
  if (SCP_RE.test(url)) return null;
  return 'is neither a URL nor user@host:path';
}

/** The fix text for a refused repository address. */
export const GIT_URL_FIX = `use an ${GIT_SCHEMES.map((s) => `${s}://`).join(', ')} URL or user@host:path`;
