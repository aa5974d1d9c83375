// Running kbuild: make's environment and arguments for a shared tree, make
// itself (output to a log, progress every 20 s, a BuildError with the log's
// relevant tail on failure), and other build tools through util/exec.

import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { runTool, spawnTool, ToolError, type ToolOptions } from '../../../util/exec.ts';
import type { KbuildTarget } from './arch.ts';
import type { CompilerRow } from './toolchain.ts';

/** A build that failed: the message carries the log tail (the matrix turns it into BUILD_FAIL). */
export class BuildError extends Error {
  constructor(
    message: string,
    readonly logTail: string,
    readonly logPath: string | null,
  ) {
    super(`${message}${logTail ? `\n--- build log tail${logPath ? ` (${logPath})` : ''} ---\n${logTail}` : ''}`);
    this.name = 'BuildError';
  }
}

const TAIL_LINES = 40;
/** The last `n` non-empty lines of `text`. */
export const tailOf = (text: string, n = TAIL_LINES): string => text.split('\n').filter((l) => l.trim()).slice(-n).join('\n');

/** A build tool's stdout; a failure becomes a BuildError with its output's tail (a canceled run stays a ToolError). */
export async function buildTool(cmd: string, args: string[], opts: ToolOptions): Promise<string> {
  try {
    return (await runTool(cmd, args, opts)).stdout;
  } catch (e) {
    if (!(e instanceof ToolError) || e.canceled) throw e;
    throw new BuildError(`${cmd} ${args.slice(0, 4).join(' ')} failed (${e.message})`, tailOf(`${e.stdout}${e.stderr}`), null);
  }
}

export interface TreePaths {
  root: string;
  /** the kernel sources (srctree): always lockstep's own copy */
  src: string;
  /** O= */
  obj: string;
  /** make's O= argument, relative to src */
  oArg: string;
  /** the compiler (CC through ccache): "gcc", "gcc-11", "aarch64-linux-gnu-gcc" (toolchain.ts) */
  cc: string;
  /** HOSTCC: `cc` for a native build, the host's gcc for a cross build */
  hostcc: string;
  /** CROSS_COMPILE= prefix, "" for a native build */
  cross: string;
  /** ARCH=, the make target and the image it leaves (arch.ts) */
  kbuild: KbuildTarget;
}

/** A tree's paths under `root` (sources in src/, objects in src/_build) for compiler row `cc` and target `kbuild`. */
export function treePathsAt(root: string, cc: CompilerRow, kbuild: KbuildTarget): TreePaths {
  const src = join(root, 'src');
  // O= a direct child of the tree: kbuild then uses srctree "..", so compiler
  // command lines (and ccache's hashes) are the same for every tree of the
  // same sources, wherever it lives.
  return { root, src, obj: join(src, '_build'), oArg: '_build', cc: cc.cc, hostcc: cc.hostcc ?? cc.cc, cross: cc.cross ?? '', kbuild };
}

export const makeEnv = (tp: TreePaths, cacheDir: string): NodeJS.ProcessEnv => ({
  ...process.env,
  LC_ALL: 'C',
  CCACHE_DIR: process.env.CCACHE_DIR ?? join(cacheDir, 'ccache'),
  CCACHE_BASEDIR: tp.src,
  CCACHE_NOHASHDIR: '1',
  // Fixed build identity: the banner and init/version.o do not change from one variant to the next.
  KBUILD_BUILD_USER: 'lockstep',
  KBUILD_BUILD_HOST: 'lockstep',
  KBUILD_BUILD_TIMESTAMP: 'Thu Jan  1 00:00:00 UTC 2026',
  KBUILD_BUILD_VERSION: '1',
});

export const jobs = (): number => Number(process.env.LOCKSTEP_BUILD_JOBS) || availableParallelism();

/**
 * kbuild's variables for a tree: ARCH=, CROSS_COMPILE= (cross builds only),
 * CC= (`cc`: "ccache gcc" for lockstep's builds, the bare compiler in
 * reproduce.sh) and HOSTCC=. An x86_64 build gives exactly the argv it
 * always did (ccache hits survive).
 */
export const kbuildVars = (tp: Pick<TreePaths, 'hostcc' | 'cross' | 'kbuild'>, cc: string): string[] =>
  [`ARCH=${tp.kbuild.kbuildArch}`, ...(tp.cross ? [`CROSS_COMPILE=${tp.cross}`] : []), `CC=${cc}`, `HOSTCC=${tp.hostcc}`];

/** make argv (without the target) for a tree. */
export const makeArgs = (tp: TreePaths, localversion: string): string[] => [`O=${tp.oArg}`, ...kbuildVars(tp, `ccache ${tp.cc}`), `LOCALVERSION=${localversion}`, `-j${jobs()}`];

/**
 * make `args` in the tree, output appended to `logPath`, progress logged
 * every 20 s. Throws BuildError (with the log's relevant tail) when make
 * fails, MissingDependencyError when make is missing, ToolError (canceled)
 * when `signal` aborts: make then gets SIGTERM and stops its jobs.
 */
export async function runMake(tp: TreePaths, args: string[], logPath: string, o: { log: (m: string) => void; t0: number; env: NodeJS.ProcessEnv; signal?: AbortSignal }): Promise<void> {
  const out = createWriteStream(logPath, { flags: 'a' });
  out.write(`\n$ make ${args.join(' ')}   (cwd ${tp.src})\n`);
  const { child, done } = spawnTool('make', args, { cwd: tp.src, env: o.env, signal: o.signal, install: 'apt-get install make gcc bc flex bison libelf-dev libssl-dev' });
  let compiled = 0;
  let last = '';
  const onLine = (l: string): void => {
    out.write(`${l}\n`);
    const m = /^\s+(CC|AS|LD|AR|OBJCOPY|GEN|HOSTCC)\s+(\S+)/.exec(l);
    if (m) {
      if (m[1] === 'CC' || m[1] === 'AS') compiled++;
      last = `${m[1]} ${m[2]!.replace(`${tp.obj}/`, '')}`;
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const target = args[args.length - 1];
  const tick = setInterval(() => o.log(`make ${target}: ${compiled} objects compiled, at ${last || '...'} (${((Date.now() - o.t0) / 1000).toFixed(0)}s)`), 20_000);
  tick.unref();
  try {
    await done;
  } catch (e) {
    if (!(e instanceof ToolError) || e.canceled) throw e;
    await new Promise<void>((r) => out.end(r));
    const text = await readFile(logPath, 'utf8').catch(() => '');
    throw new BuildError(`make ${target} failed (${e.message})`, tailOf(errorFocus(text)), logPath);
  } finally {
    clearInterval(tick);
    if (!out.writableEnded) await new Promise<void>((r) => out.end(r));
  }
}

/** The part of a log that explains a failure: from the first "error:" on, else all of it. */
function errorFocus(text: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => /\berror\b|\*\*\*/i.test(l) && !/^\$ make/.test(l));
  return i >= 0 ? lines.slice(Math.max(0, i - 5), i + TAIL_LINES).join('\n') : text;
}
