// Results carry no path of the machine that ran them: log paths are relative
// to the results directory, and any other absolute path under a known root
// (the results directory, the kernel cache, lockstep's checkout, $HOME, the
// temp dir) is written from that root's name. Pure.

/** An absolute directory and what to write instead of it ('' = make relative). */
export interface PathRoot { dir: string; as: string }

/**
 * Roots, most specific first: `out` (the results directory: paths under it
 * become relative), `cache` ($LOCKSTEP_CACHE), `repo` (lockstep's checkout:
 * relative to it, as re-run commands are run from a clone), `home` (~),
 * `tmp` ($TMPDIR). Empty or "/" entries are ignored.
 */
export function pathRoots(o: { out: string; cache?: string; repo?: string; home?: string; tmp?: string }): PathRoot[] {
  const roots: PathRoot[] = [
    { dir: o.out, as: '' },
    ...(o.cache ? [{ dir: o.cache, as: '$LOCKSTEP_CACHE' }] : []),
    ...(o.repo ? [{ dir: o.repo, as: '' }] : []),
    ...(o.home ? [{ dir: o.home, as: '~' }] : []),
    ...(o.tmp ? [{ dir: o.tmp, as: '$TMPDIR' }] : []),
  ];
  return roots
    .map((r) => ({ ...r, dir: r.dir.replace(/\/+$/, '') }))
    .filter((r) => r.dir !== '' && r.dir.startsWith('/'))
    .sort((a, b) => b.dir.length - a.dir.length);
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * `text` with every occurrence of a root (followed by "/" or the end of a
 * path) written from the root: "<out>/logs/x" -> "logs/x", "<out>" -> ".",
 * "<cache>/kernels" -> "$LOCKSTEP_CACHE/kernels".
 */
export function portableText(text: string, roots: readonly PathRoot[]): string {
  let out = text;
  for (const r of roots) {
    const re = new RegExp(`${escapeRe(r.dir)}(/|(?![\\w.-]))`, 'g');
    out = out.replace(re, (_m, slash: string) => (r.as === '' ? (slash ? '' : '.') : `${r.as}${slash}`));
  }
  return out;
}

/** A deep copy of a JSON value with portableText applied to every string. */
export function portableJson<T>(v: T, roots: readonly PathRoot[]): T {
  if (typeof v === 'string') return portableText(v, roots) as T;
  if (Array.isArray(v)) return v.map((x) => portableJson(x, roots)) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, portableJson(x, roots)])) as T;
  return v;
}
