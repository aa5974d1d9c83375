// The splat policy: which kernel splats (src/runner/stream.ts SPLAT_KINDS)
// fail a cell and which are only noted on it, per kernel id pattern, in the
// manner of libbpf/ci's allow/deny lists. Pure: the parsed file in, a
// decision function out; reading the file is load.ts's job.

import { Minimatch } from 'minimatch';
import { SPLAT_KINDS, type SplatKind } from '../runner/stream.ts';
import { ConfigError } from '../util/errors.ts';

export type SplatAction = 'fail' | 'note';

export interface SplatRule {
  /** kernel id glob (minimatch syntax: `*`, `?`, `[..]`, `{a,b}`), e.g. "variant-*" */
  kernels: string;
  fail: SplatKind[];
  note: SplatKind[];
}

export interface SplatPolicy {
  /** where it came from ("policy/splats.json", "built-in"), named in cell reasons */
  source: string;
  rules: SplatRule[];
}

/** A kernel's decisions: what to do with each kind, and the rule that said so. */
export interface SplatDecider {
  action(kind: SplatKind): SplatAction;
  /** "policy/splats.json rules[1] (variant-*)" or "default (no rule lists warn)" */
  why(kind: SplatKind): string;
}

/** A kernel panic ended the boot: no policy can make it a note. */
const ALWAYS_FAIL: readonly SplatKind[] = ['panic'];

/**
 * The policy of runs given none (`lockstep bisect`, `lockstep classify`: they
 * measure behaviour, and a WARN does not change what was measured): splats
 * that mean the kernel killed a task or corrupted memory (oops, BUG, KASAN;
 * a panic) fail the cell, the others are notes. `lockstep run` reads
 * policy/splats.json instead.
 */
export const MEASURE_POLICY: SplatPolicy = {
  source: 'built-in policy',
  rules: [{ kernels: '*', fail: ['oops', 'bug', 'kasan'], note: ['ubsan', 'lockdep', 'rcu_stall', 'hung_task', 'warn'] }],
};

/**
 * Checks a parsed policy file: `{ "rules": [ { "kernels": GLOB, "fail": [KIND..], "note": [KIND..] } ] }`
 * (keys starting with "$" are comments). Throws ConfigError naming `file`,
 * the field (e.g. "rules[2].note[0]") and the fix.
 */
export function parseSplatPolicy(raw: unknown, file: string): SplatPolicy {
  const bad = (field: string, problem: string, fix: string): never => { throw new ConfigError(file, field, problem, fix); };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(raw)) bad('', 'not a JSON object', 'write { "rules": [ { "kernels": "*", "fail": ["warn"], "note": [] } ] }');
  const top = raw as Record<string, unknown>;
  for (const k of Object.keys(top)) if (k !== 'rules' && !k.startsWith('$')) bad(k, 'unknown key', 'remove it (only "rules" and "$comment"-style keys)');
  if (!Array.isArray(top.rules)) bad('rules', 'missing or not an array', 'give "rules": [ { "kernels": "*", "fail": [...], "note": [...] } ]');
  const rules = (top.rules as unknown[]).map((r, i): SplatRule => {
    const at = `rules[${i}]`;
    if (!isObj(r)) return bad(at, 'not an object', 'give { "kernels": GLOB, "fail": [KIND..], "note": [KIND..] }');
    for (const k of Object.keys(r)) if (!['kernels', 'fail', 'note'].includes(k) && !k.startsWith('$')) bad(`${at}.${k}`, 'unknown key', 'use only kernels, fail, note (and "$comment")');
    if (typeof r.kernels !== 'string' || !r.kernels.trim()) bad(`${at}.kernels`, 'missing or not a non-empty string', 'give a kernel id glob, e.g. "*" or "debian-6.1*"');
    const glob = globProblem(r.kernels as string);
    if (glob !== null) bad(`${at}.kernels`, glob, 'a kernel id glob needs at most 3 "*", 2 "{..}" groups and 128 characters, e.g. "debian-6.1*"');
    const kinds = (key: 'fail' | 'note'): SplatKind[] => {
      const v = r[key] ?? [];
      if (!Array.isArray(v)) return bad(`${at}.${key}`, 'not an array', `give a list of splat kinds (${SPLAT_KINDS.join(', ')})`);
      return v.map((k, j) => {
        if (!(SPLAT_KINDS as readonly unknown[]).includes(k)) bad(`${at}.${key}[${j}]`, `${JSON.stringify(k)} is not a splat kind`, `use one of ${SPLAT_KINDS.join(', ')}`);
        return k as SplatKind;
      });
    };
    const fail = kinds('fail'); const note = kinds('note');
    if (!fail.length && !note.length) bad(at, 'lists no kind in fail or note', 'add kinds to "fail" or "note", or remove the rule');
    const both = fail.find((k) => note.includes(k));
    if (both) bad(`${at}.note`, `${both} is in both fail and note`, `keep ${both} in one of them`);
    const forced = note.find((k) => ALWAYS_FAIL.includes(k));
    if (forced) bad(`${at}.note`, `${forced} cannot be a note (the boot ended there)`, `remove ${forced} from note`);
    return { kernels: r.kernels as string, fail, note };
  });
  return { source: file, rules };
}

/** Limits of a kernel id glob: a regex of many `*` backtracks for seconds per id (issue 26). */
const GLOB_MAX = { length: 128, stars: 3, braces: 2 };

/** A run of `*` and `?` holding a `*` means "at least as many characters as `?`s": written `?..?*`, one `*`. */
const collapseStars = (g: string): string => g.replace(/[*?]*\*[*?]*/g, (run) => `${'?'.repeat(run.split('?').length - 1)}*`);

/** Why a kernel id glob is refused (too long, too many wildcards or brace groups), or null. */
export function globProblem(g: string): string | null {
  if (g.length > GLOB_MAX.length) return `is ${g.length} characters long (max ${GLOB_MAX.length})`;
  const stars = (collapseStars(g).match(/\*/g) ?? []).length;
  if (stars > GLOB_MAX.stars) return `has ${stars} separate "*" (max ${GLOB_MAX.stars})`;
  const braces = (g.match(/\{/g) ?? []).length;
  if (braces > GLOB_MAX.braces) return `has ${braces} "{" groups (max ${GLOB_MAX.braces})`;
  return null;
}

/** Each glob compiled once (a policy is matched once per kernel id, and cells share it). */
const compiled = new Map<string, Minimatch>();
function matcher(glob: string): Minimatch {
  let m = compiled.get(glob);
  if (m === undefined) {
    m = new Minimatch(collapseStars(glob));
    if (compiled.size > 1024) compiled.clear();
    compiled.set(glob, m);
  }
  return m;
}

/**
 * The decisions for one kernel id: for each kind, the LAST rule whose
 * `kernels` glob matches the id and lists the kind wins (so a general "*"
 * rule comes first and exceptions after it); a kind no matching rule lists
 * fails the cell.
 */
export function splatDecider(p: SplatPolicy, kernel: string): SplatDecider {
  const matching = p.rules.map((r, i) => ({ r, i })).filter(({ r }) => matcher(r.kernels).match(kernel));
  const find = (kind: SplatKind): { action: SplatAction; why: string } => {
    if (ALWAYS_FAIL.includes(kind)) return { action: 'fail', why: 'a panic always fails' };
    for (let k = matching.length - 1; k >= 0; k--) {
      const { r, i } = matching[k]!;
      if (r.fail.includes(kind)) return { action: 'fail', why: `${p.source} rules[${i}] (${r.kernels})` };
      if (r.note.includes(kind)) return { action: 'note', why: `${p.source} rules[${i}] (${r.kernels})` };
    }
    return { action: 'fail', why: `${p.source}: no rule for ${kernel} lists ${kind}, so it fails` };
  };
  return { action: (k) => find(k).action, why: (k) => find(k).why };
}
