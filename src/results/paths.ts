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
  return rewriter(roots)(text);
}

/** One compiled rewrite per roots list: results hold tens of thousands of strings, and most contain no "/" at all. */
function rewriter(roots: readonly PathRoot[]): (text: string) => string {
  const res = roots.map((r) => ({ re: new RegExp(`${escapeRe(r.dir)}(/|(?![\\w.-]))`, 'g'), as: r.as }));
  return (text) => {
    if (!text.includes('/')) return text;
    let out = text;
    for (const r of res) out = out.replace(r.re, (_m, slash: string) => (r.as === '' ? (slash ? '' : '.') : `${r.as}${slash}`));
    return out;
  };
}

/** A deep copy of a JSON value with portableText applied to every string. */
export function portableJson<T>(v: T, roots: readonly PathRoot[]): T {
  const rw = rewriter(roots);
  const walk = (x: unknown): unknown => {
    if (typeof x === 'string') return rw(x);
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y)]));
    return x;
  };
  return walk(v) as T;
}
