// Scenario files to CompiledScenario: validation (schema.ts), then the sugar
// compiled away (compile.ts: counts, "each"/"round-robin", "L" ballasts)
// while the script's flow is checked the way the reproducer and the simulator
// would meet it (compile-state.ts: buffer names open/closed, CPUs online, the
// live user_lock_limit). Recompiles at another CPU count or page size;
// loaders for one file, a directory and the built-in set; a stable hash.

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HELPER_RLIMIT_MEMLOCK_KB } from './ops.ts';
import { ConfigError } from '../util/errors.ts';
import { parseJsonStrict } from '../util/json.ts';
import { type CompiledScenario, type Feature, type SysctlName, hasFaultInjection } from './ops.ts';
import { type ScenarioSource, show, validateScenarioWithNotices } from './schema.ts';
import { compileValidated } from './compile.ts';
import { repoPath } from '../util/repo-root.ts';

export { cappedBallastBuffers, DEFAULT_ANY_CPUS } from './compile.ts';

/** A scenario file, loaded: its source (defaults filled) and what it compiles to. */
export interface LoadedScenario {
  id: string;
  description: string;
  /** absolute path of the file (or the name given to compileScenario) */
  file: string;
  source: ScenarioSource;
  compiled: CompiledScenario;
  /** scenarioHash(compiled) */
  hash: string;
  needs: ScenarioNeeds;
}

/** What a machine must offer to run a compiled scenario (src/scenario/skip.ts compares it with an Offer). */
export interface ScenarioNeeds {
  /** num_online_cpus() at start */
  cpus: number;
  /** the count is open ("cpus": "any"): any online count fits */
  cpusAny: boolean;
  /** CPUs whose online state the scenario changes (CPU hotplug: VM only in practice) */
  hotplugCpus: number[];
  /** largest RLIMIT_MEMLOCK in kB the worker sets (start or rlimit op), and the helpers' HELPER_RLIMIT_MEMLOCK_KB when the scenario starts any; ignoring unlimited; null if none is finite */
  rlimitKbMax: number | null;
  /** the worker asks for an unlimited RLIMIT_MEMLOCK somewhere */
  rlimitUnlimited: boolean;
  /** the sysctl values the scenario starts at (always written where sysctls are writable) */
  start: { perf_event_mlock_kb: number; perf_event_paranoid: number };
  /** sysctls the scenario writes mid-run */
  sysctls: SysctlName[];
  /** kernel features its ops use: io_uring (ballast via io_uring, uring), bpf, memfd_secret */
  features: Feature[];
  /** an io_uring ballast or uring op (needs io_uring enabled) */
  ioUring: boolean;
  /** hang / sysrq ops: never on a host */
  faultInjection: boolean;
  /** runs as uid 0 ("uid": "root"): a guest only (root's per-user record is the machine's and lives until reboot) */
  rootUid: boolean;
}

/** compiled scenario -> its source and file, so compileAtCpus / compileAtPageSize can recompile it */
const anySources = new WeakMap<CompiledScenario, { source: ScenarioSource; file: string }>();

/**
 * Validate and compile; returns the source too. A `"cpus": "any"` scenario is
 * compiled for DEFAULT_ANY_CPUS (and checked to compile for 1 CPU, so its ops
 * name no CPU a 1-CPU machine lacks). Throws ConfigError only.
 */
export function compileSource(obj: unknown, file: string): { source: ScenarioSource; compiled: CompiledScenario; notices: string[] } {
  const { source, notices } = validateScenarioWithNotices(obj, file);
  if (source.cpus === 'any') compileValidated(source, file, 1);
  const compiled = compileValidated(source, file);
  anySources.set(compiled, { source, file });
  return { source, compiled, notices };
}

/**
 * The scenario compiled for a kernel with `pageKb` kB pages (4, 16, 64):
 * "L" ballasts follow user_lock_limit = (perf_event_mlock_kb >> (PAGE_SHIFT - 10))
 * * num_online_cpus() (kernel/events/core.c perf_mmap()), "bytes" and
 * "data_bytes" sizes become pages of that size. A scenario whose ops do not
 * depend on the page size comes back as it is (same hash); one that does
 * carries `page_kb`. Throws ConfigError when its source is not at hand (a
 * results file's stored def) or a size does not fit at that page size.
 */
export function compileAtPageSize(s: CompiledScenario, pageKb: number): CompiledScenario {
  if ((s.page_kb ?? 4) === pageKb) return s;
  const from = anySources.get(s);
  if (!from) throw new ConfigError(s.id, 'page_kb', `scenario ${s.id} is not at hand as a source to compile it for ${pageKb} kB pages`, 'load it from its scenario file');
  const compile = (kb: number): CompiledScenario => {
    const c = compileValidated(from.source, from.file, s.cpus, kb);
    anySources.set(c, from);
    return c;
  };
  // the 4 kB compile is the page-independent form: a scenario whose ops do not change keeps it (and its hash)
  const at4 = (s.page_kb ?? 4) === 4 ? s : compile(4);
  if (pageKb === 4) return at4;
  const out = compile(pageKb);
  return canonicalJson(out.ops) === canonicalJson(at4.ops) ? at4 : out;
}

/**
 * The scenario compiled for `cpus` online CPUs: a `cpus_any` scenario is
 * recompiled (its "each" spreads and "L" ballasts follow the count: user_lock_limit =
 * (perf_event_mlock_kb >> (PAGE_SHIFT - 10)) * num_online_cpus(), kernel/events/core.c perf_mmap()),
 * a pinned one is returned as is. Throws ConfigError when an "any" scenario
 * did not come from compileSource (e.g. a results file's stored def) and the count differs.
 */
export function compileAtCpus(s: CompiledScenario, cpus: number): CompiledScenario {
  if (!s.cpus_any || s.cpus === cpus) return s;
  const from = anySources.get(s);
  if (!from) throw new ConfigError(s.id, 'cpus', `scenario ${s.id} says "cpus": "any" but its source is not at hand to compile it for ${cpus} CPUs`, 'load it from its scenario file');
  const out = compileValidated(from.source, from.file, cpus, s.page_kb ?? 4);
  anySources.set(out, from);
  return out;
}

/** Validate a parsed scenario object (from JSON) and compile it. `file` names it in errors. */
export function compileScenario(obj: unknown, file: string): CompiledScenario {
  return compileSource(obj, file).compiled;
}

/** What the compiled scenario needs of the machine that runs it. */
export function scenarioNeeds(s: CompiledScenario): ScenarioNeeds {
  const hot = new Set<number>();
  const sysctls = new Set<SysctlName>();
  const features = new Set<Feature>();
  let rlimitKbMax = s.rlimit_kb;
  let rlimitUnlimited = s.rlimit_kb === null;
  for (const op of s.ops) {
    if (op.op === 'cpu') hot.add(op.cpu);
    else if (op.op === 'sysctl') sysctls.add(op.name);
    else if (op.op === 'rlimit') {
      if (op.memlock_kb === null) rlimitUnlimited = true;
      else if (rlimitKbMax === null || op.memlock_kb > rlimitKbMax) rlimitKbMax = op.memlock_kb;
    } else if (op.op === 'uring') features.add('io_uring');
    else if (op.op === 'ballast' && op.via !== 'perf') features.add(op.via);
  }
  // Helpers run with RLIMIT_MEMLOCK HELPER_RLIMIT_MEMLOCK_KB in every runtime: the machine must allow it.
  const helpers = s.ops.some((op) => op.op === 'ballast' || op.op === 'handoff');
  if (helpers && !rlimitUnlimited && (rlimitKbMax === null || rlimitKbMax < HELPER_RLIMIT_MEMLOCK_KB)) rlimitKbMax = HELPER_RLIMIT_MEMLOCK_KB;
  return {
    cpus: s.cpus,
    cpusAny: s.cpus_any === true,
    hotplugCpus: [...hot].sort((a, b) => a - b),
    rlimitKbMax,
    rlimitUnlimited,
    start: { perf_event_mlock_kb: s.mlock_kb, perf_event_paranoid: s.paranoid },
    sysctls: [...sysctls].sort(),
    features: [...features].sort(),
    ioUring: features.has('io_uring'),
    faultInjection: hasFaultInjection(s),
    rootUid: s.root === true,
  };
}

// ---------------------------------------------------------------------------
// Hash

/** JSON with object keys sorted at every level, no whitespace; -0 written as 0. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RangeError(`canonicalJson: ${v} has no JSON form`);
    return JSON.stringify(v === 0 ? 0 : v);
  }
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new RangeError(`canonicalJson: a ${typeof v} has no JSON form`);
}

/**
 * sha256 (hex) of the compiled scenario's canonical JSON: the provenance of
 * a result. Equal for equal compiled content, whatever sugar or key order the
 * file used; the description does not enter it.
 */
export function scenarioHash(s: CompiledScenario): string {
  return createHash('sha256').update(canonicalJson(s)).digest('hex');
}

// ---------------------------------------------------------------------------
// Loaders (synchronous: scenario files are small)

/** Larger scenario files are refused before parsing. */
export const MAX_SCENARIO_FILE_BYTES = 16 * 1024 * 1024;

const errnoOf = (e: unknown): string => (e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : e instanceof Error ? e.message : String(e));

/** Where deprecation notices go by default: one line each on stderr. */
export const stderrNotice = (line: string): void => {
  process.stderr.write(`lockstep: ${line}\n`);
};

/**
 * Read, parse, validate and compile one scenario file. Old field names
 * (DEPRECATED_FIELDS) load; each gives one notice line to `notice`.
 * Throws ConfigError.
 */
export function loadScenarioFile(path: string, notice: (line: string) => void = stderrNotice): LoadedScenario {
  const file = resolve(path);
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ConfigError(file, '', 'is not a regular file', 'give the path of a scenario .json file');
    if (st.size > MAX_SCENARIO_FILE_BYTES) {
      throw new ConfigError(file, '', `is ${st.size} bytes, more than ${MAX_SCENARIO_FILE_BYTES}`, 'use counts instead of spelling out every op');
    }
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(file, '', `cannot be read (${errnoOf(e)})`, 'check the path and its permissions');
  }
  let obj: unknown;
  try {
    obj = parseJsonStrict(text);
  } catch (e) {
    throw new ConfigError(file, '', `is not valid JSON (${e instanceof Error ? e.message : String(e)})`, 'fix the JSON syntax (no comments, no trailing commas)');
  }
  const { source, compiled, notices } = compileSource(obj, file);
  for (const n of notices) notice(n);
  return { id: source.id, description: source.description, file, source, compiled, hash: scenarioHash(compiled), needs: scenarioNeeds(compiled) };
}

/** Throws a ConfigError if two scenarios share an id. */
export function checkUniqueIds(list: readonly LoadedScenario[]): void {
  const seen = new Map<string, string>();
  for (const s of list) {
    const other = seen.get(s.id);
    if (other !== undefined) {
      throw new ConfigError(s.file, 'id', `duplicate scenario id ${show(s.id)} (also in ${other})`, 'give every scenario its own id (e.g. the file name without .json)');
    }
    seen.set(s.id, s.file);
  }
}

/**
 * Every *.json file of a directory (not recursive), in file-name order,
 * without letting one bad file block the others: `loaded` holds the good
 * ones, `errors` one ConfigError per bad file (including a file whose id
 * an earlier file already has). Throws ConfigError only when the directory
 * cannot be listed.
 */
export function loadScenarioDirEach(dir: string, notice?: (line: string) => void): { loaded: LoadedScenario[]; errors: ConfigError[] } {
  const d = resolve(dir);
  let names: string[];
  try {
    names = readdirSync(d, { withFileTypes: true })
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.endsWith('.json'))
      .map((e) => e.name)
      .sort();
  } catch (e) {
    throw new ConfigError(d, '', `cannot be listed (${errnoOf(e)})`, 'give a directory of scenario .json files');
  }
  const loaded: LoadedScenario[] = [];
  const errors: ConfigError[] = [];
  for (const n of names) {
    try {
      const s = loadScenarioFile(join(d, n), notice);
      checkUniqueIds([...loaded, s]);
      loaded.push(s);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      errors.push(e);
    }
  }
  return { loaded, errors };
}

/** Every *.json file of a directory (not recursive), in file-name order. The first bad file (or duplicate id) is a ConfigError. */
export function loadScenarioDir(dir: string): LoadedScenario[] {
  const { loaded, errors } = loadScenarioDirEach(dir);
  if (errors.length > 0) throw errors[0]!;
  return loaded;
}

/** harness/scenarios/ of this checkout. */
export const BUILTIN_SCENARIO_DIR = repoPath('harness', 'scenarios') + '/';

/** The built-in scenarios (harness/scenarios/*.json). */
export function builtinScenarios(): LoadedScenario[] {
  return loadScenarioDir(BUILTIN_SCENARIO_DIR);
}

