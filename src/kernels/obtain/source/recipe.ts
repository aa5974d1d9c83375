// The pure parts of a source build: kconfig fragments and .config checks,
// the files a patch touches, and the cache keys. No I/O.

import { createHash } from 'node:crypto';
import { isAbsolute } from 'node:path';
import type { ConfigError } from '../../../util/errors.ts';
import type { Arch } from '../../types.ts';

/** Bumped whenever the build recipe changes in a way that changes the artifact. */
export const BUILD_RECIPE = 'lockstep-kbuild-1';

export interface FragmentLine {
  option: string;
  /** "y", "m", a number, a quoted string, or null for "# CONFIG_X is not set" */
  value: string | null;
  line: number;
}

/** Parse a kconfig fragment: CONFIG_X=v lines and "# CONFIG_X is not set" lines. */
export function parseFragment(text: string, file: string, err: (file: string, field: string, problem: string, fix: string) => ConfigError): FragmentLine[] {
  const out: FragmentLine[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    const line = i + 1;
    let m: RegExpExecArray | null;
    if (l === '') return;
    if ((m = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(l))) out.push({ option: m[1]!, value: null, line });
    else if (l.startsWith('#')) return;
    else if ((m = /^(CONFIG_[A-Za-z0-9_]+)=(.+)$/.exec(l))) out.push({ option: m[1]!, value: m[2]!, line });
    else throw err(file, `line ${line}`, `not a kconfig line: ${JSON.stringify(l)}`, 'write CONFIG_NAME=value or "# CONFIG_NAME is not set"');
    const o = out[out.length - 1]!.option;
    if (seen.has(o)) throw err(file, `line ${line}`, `${o} is set twice (also line ${seen.get(o)})`, 'keep one line per option');
    seen.set(o, line);
  });
  return out;
}

/** The options of a .config text: CONFIG_X -> value (unset options are absent). */
export function parseDotConfig(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of text.split('\n')) {
    const x = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(l);
    if (x) m.set(x[1]!, x[2]!);
  }
  return m;
}

/** Fragment lines the final .config does not honour, as "CONFIG_X=want (got: have)". */
export function missingOptions(fragment: readonly FragmentLine[], dotConfig: Map<string, string>): string[] {
  const bad: string[] = [];
  for (const f of fragment) {
    const got = dotConfig.get(f.option);
    if (f.value === null) {
      if (got !== undefined && got !== 'n') bad.push(`${f.option} is not set (got: ${got})`);
    } else if (got !== f.value) {
      bad.push(`${f.option}=${f.value} (got: ${got === undefined ? 'not set' : got})`);
    }
  }
  return bad;
}

/** Files a unified diff touches, relative to the tree (patch -p1), from its "+++ b/..." / "--- a/..." lines. */
export function patchedFiles(diff: string): string[] {
  const files = new Set<string>();
  const lines = diff.split('\n');
  for (let i = 0; i < lines.length - 1; i++) {
    const a = /^--- (\S+)/.exec(lines[i]!);
    const b = /^\+\+\+ (\S+)/.exec(lines[i + 1]!);
    if (!a || !b) continue;
    for (const p of [a[1]!, b[1]!]) {
      if (p === '/dev/null') continue;
      const rel = p.split('/').slice(1).join('/');
      if (!rel || rel.split('/').includes('..') || isAbsolute(rel)) throw new Error(`patch names an unsafe path ${JSON.stringify(p)}`);
      files.add(rel);
    }
  }
  return [...files].sort();
}

export const sha256Text = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

export interface KeyInputs {
  /** what identifies the tree's content: "debian:linux-source-6.1=6.1.192-2:sha256:...", "git:URL@commit", ... */
  source: string;
  /** the fragment's text */
  fragment: string;
  /** each patch's text, in order */
  patches: readonly string[];
  /** `CC --version` first line */
  compiler: string;
  /** texts of the build-fix backports applied to the tree (toolchain.ts), in order */
  backports?: readonly string[];
  /** text of the lockstep_aux PMU driver built into the tree (auxpmu.ts); absent for trees without it (bisect checkouts) */
  auxPmu?: string;
  /** the guest architecture; absent = x86_64 */
  arch?: Arch;
  /** the page size, kB (arm64: 4, 16, 64); absent = 4 */
  pageSizeKb?: number;
}

/**
 * The shared object tree's key: everything but the patches. Each
 * arch + page size has its own tree (objects are never shared across
 * them); an x86_64 key is what it was before arm64 builds existed.
 */
export function treeKey(k: KeyInputs): string {
  // No backports: the same key as before backports existed (caches stay warm).
  const bp = k.backports?.length ? { backports: k.backports.map((p) => sha256Text(p)) } : {};
  const aux = k.auxPmu !== undefined ? { aux_pmu: sha256Text(k.auxPmu) } : {};
  const arch = k.arch === undefined || k.arch === 'x86_64' ? { arch: 'x86_64' } : { arch: k.arch, page_size_kb: k.pageSizeKb ?? 4 };
  return sha256Text(JSON.stringify({ recipe: BUILD_RECIPE, ...arch, source: k.source, config: sha256Text(k.fragment), compiler: k.compiler, ...bp, ...aux }));
}

/** The artifact's key: the tree's key plus the patches in order. */
export function artifactKey(k: KeyInputs): string {
  return sha256Text(JSON.stringify({ tree: treeKey(k), patches: k.patches.map((p) => sha256Text(p)) }));
}
