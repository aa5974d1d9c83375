// The lockstep_aux software PMU (harness/auxpmu) for a "debian-image"
// kernel, which lockstep cannot rebuild: the module is built out of tree
// against that very kernel's headers, fetched from the same apt source at
// the same Debian version as the kernel (linux-headers-<abi>, and the
// linux-headers-*-common / linux-kbuild-* packages its Depends name),
// unpacked into a scratch dir (never installed), with the host's compiler.
// An arm64 kernel's module is cross-built (aarch64-linux-gnu-gcc-N) with the
// kbuild tools (fixdep, modpost: host programs) of the host's arch: the
// linux-kbuild-* package of the same suite and version for amd64.
// It joins the kernel's modules.cpio (the initramfs part vm-images/init.sh
// insmods from), in its own cache entry; the kernel's entry is not touched:
//   <cacheDir>/kernels/debian-auxpmu/<package>_<package_version>_<key>/{lockstep_aux.ko,modules.cpio,meta.json}
// <key> hashes the driver, its Kbuild and the gcc-N compilers on PATH, so
// a changed driver or a newly installed compiler builds again. A build the
// compiler refuses is cached too (meta.json with the reason, no .ko): the
// AUX cells SKIP with it. A download that fails is not cached.

import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { delimiter, join, relative } from 'node:path';
import { cpioList } from '../../util/cpio.ts';
import { runTool, ToolError } from '../../util/exec.ts';
import { dpkgDebFieldsArgv } from '../../util/debian-tools.ts';
import type { Arch, DebianImageSpec } from '../types.ts';
import { ARCH_FACTS } from '../arch.ts';
import { AUX_MODULE, AUX_NEEDS, type AuxPmuState, compilerPlan, configCompiler, firstBuildError, headersDeps, headersPackage, kbuildCompiler, moduleLoadBlocker, vermagicOf } from './aux-module.ts';
import { checkEntry, ensureEntry, scratchDir, writeMeta } from './cache.ts';
import { ensureDebianSysroot, inSysroot, type Sysroot, sysrootBuildDir } from './debian-sysroot.ts';
import { kernelPackage } from './deb-kernels.ts';
import { suiteSource } from './apt-suite.ts';
import { aptCandidate, aptVersions, downloadDebs, extractDeb, specApt } from './debian.ts';
import { sha256File } from './files.ts';
import { modulesArchive } from './guest-modules.ts';
import { auxPmuSourcePath } from './source/auxpmu.ts';
import type { AptSource, EnsureOptions, KernelArtifact } from './types.ts';

interface AuxEntryMeta {
  package: string;
  package_version: string;
  release: string;
  /** sha256 of lockstep_aux.c + Kbuild */
  driver_sha256: string;
  /** the packages built against, "name=version", the flavour's headers first */
  headers: string[];
  /** the CC given to kbuild, with its --version line */
  compiler: string;
  /** CONFIG_CC_VERSION_TEXT of the kernel, null when its config lacks it */
  kernel_compiler: string | null;
  /** null when built; else why not (the compiler's first error) */
  failed: string | null;
  ko_sha256?: string;
  modules_sha256?: string;
  /** wall time of the download + unpack, and of make, ms */
  download_ms: number;
  build_ms: number;
  built_at: string;
}

const driverDir = (): string => join(auxPmuSourcePath(), '..');

/** Bumped when the way the module is built changes, so cached builds (and cached failures) are redone. */
const RECIPE = 7;

/** The cross prefix of a guest arch on an x86_64 host ('' = native). */
const crossOf = (arch: Arch): string => ARCH_FACTS[arch].crossPrefix;

/** Executables named gcc-N / <triplet>-gcc-N on $PATH (sorted): they decide which CC a build gets. */
async function gccsOnPath(): Promise<string[]> {
  const names = new Set<string>();
  for (const d of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const n of await readdir(d).catch(() => [] as string[])) if (/^((x86_64|aarch64)-linux-gnu-)?gcc-\d+$/.test(n)) names.add(n);
  }
  return [...names].sort();
}

/** Absolute symlinks of an unpacked package tree made relative to `root` (a package's /usr/src/... link points into itself once unpacked elsewhere). */
async function relinkAbsolute(root: string): Promise<void> {
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isSymbolicLink()) continue;
    const p = join(e.parentPath, e.name);
    const to = await readlink(p);
    if (!to.startsWith('/')) continue;
    await rm(p);
    await symlink(relative(e.parentPath, join(root, to)) || '.', p);
  }
}

/**
 * A Debian headers tree's Makefile names its -common tree by absolute path
 * ("include /usr/src/linux-headers-6.1.0-54-common/Makefile"; Debian 14
 * also "KBUILD_OUTPUT=/usr/src/linux-headers-<abi>"): point them into `root`.
 */
async function rootMakefiles(root: string, seenAs: string = root): Promise<void> {
  const src = join(root, 'usr', 'src');
  for (const d of await readdir(src)) {
    const mk = join(src, d, 'Makefile');
    const text = await readFile(mk, 'utf8').catch(() => null);
    if (text === null) continue;
    const next = text.replace(/(^|[\s=])\/usr\/src\//gm, `$1${join(seenAs, 'usr', 'src')}/`);
    if (next !== text) await writeFile(mk, next);
  }
}

/** The version of a headers dependency to download: the kernel's own when apt has it and the constraint allows, else apt's candidate. */
async function depVersion(dep: ReturnType<typeof headersDeps>[number], pv: string, apt: AptSource, signal?: AbortSignal): Promise<string> {
  if (dep.constraint?.op === '=') return dep.constraint.version;
  const rows = await aptVersions([dep.package], apt, signal);
  if (rows.some((r) => r.version === pv)) return pv;
  const cand = await aptCandidate(dep.package, apt, signal);
  if (cand === null) throw new Error(`${apt.label} has no ${dep.package}`);
  return cand;
}

class DownloadFailed extends Error {}

/**
 * Download and unpack the headers of `pkg`=`pv` into `root`; returns the
 * packages as "name=version" (flavour headers first) and the headers dir.
 * Throws DownloadFailed when apt cannot give them.
 */
async function fetchHeaders(pkg: string, pv: string, apt: AptSource, hostApt: AptSource, work: string, root: string, signal?: AbortSignal): Promise<{ headers: string[]; dir: string }> {
  const kp = kernelPackage(pkg)!;
  const hdr = headersPackage(kp);
  const dl = join(work, 'debs');
  await mkdir(dl);
  let debs: string[];
  const got: string[] = [`${hdr}=${pv}`];
  try {
    const [first] = await downloadDebs([{ package: hdr, version: pv }], apt, dl, signal);
    const depends = (await runTool('dpkg-deb', dpkgDebFieldsArgv(first!, ['Depends']), { install: 'apt-get install dpkg', signal })).stdout;
    const deps = headersDeps(depends);
    // kbuild's programs run here: the host arch's package (the same apt source for a native kernel)
    const kbuild = deps.filter((d) => d.package.startsWith('linux-kbuild-'));
    const rest = deps.filter((d) => !kbuild.includes(d));
    const wanted = [];
    for (const d of rest) wanted.push({ package: d.package, version: await depVersion(d, pv, apt, signal) });
    const wantedHost = [];
    for (const d of kbuild) wantedHost.push({ package: d.package, version: await depVersion(d, pv, hostApt, signal) });
    got.push(...[...wanted, ...wantedHost].map((w) => `${w.package}=${w.version}`));
    debs = [first!, ...(await downloadDebs(wanted, apt, dl, signal)), ...(await downloadDebs(wantedHost, hostApt, dl, signal))];
  } catch (e) {
    if (signal?.aborted) throw e;
    const text = e instanceof ToolError ? (e.stderr || e.message) : (e as Error).message;
    throw new DownloadFailed(`the headers of ${pkg}=${pv} (${got.join(', ')}) could not be downloaded from ${apt.label}: ${firstBuildError(text)}`);
  }
  for (const d of debs) await extractDeb(d, root, ['./usr/*'], signal);
  await relinkAbsolute(root);
  const dir = join(root, 'usr', 'src', hdr);
  // With a vmlinux beside it (6.12 on), kbuild runs pahole for the module's BTF, which the PMU does not need:
  // without one it prints "Skipping BTF generation" and the host needs no pahole (dwarves).
  await rm(join(dir, 'vmlinux'), { force: true });
  return { headers: got, dir };
}

/**
 * Build harness/auxpmu against the headers unpacked in `root`
 * (root/usr/src/<hdr>); the .ko bytes, or the failure line. The compiler is
 * the one the headers name (compilerPlan): the host's, or a Debian root's
 * gcc-N when the headers name a newer gcc than any here.
 */
async function buildModule(root: string, hdr: string, work: string, release: string, arch: Arch, opts: EnsureOptions): Promise<{ cc: string; ko: Buffer | null; failed: string | null }> {
  const kv = await readFile(join(root, 'usr', 'src', hdr, '.kernelvariables'), 'utf8').catch(() => '');
  const cross = crossOf(arch);
  const plan = compilerPlan(kbuildCompiler(kv), await gccsOnPath(), cross);
  if (plan.where === 'sysroot') return buildInSysroot(root, hdr, plan.cc, release, opts);
  await rootMakefiles(root);
  const headersDir = join(root, 'usr', 'src', hdr);
  const signal = opts.signal;
  // Debian's kbuild calls $(CROSS_COMPILE)gcc-N: the same gcc-N here when installed, else the host's gcc
  const cc = plan.cc;
  // arm64: a cross build; the DEB_* words make .kernelvariables' own CROSS_COMPILE override say the same
  const crossArgs = cross ? ['ARCH=arm64', `CROSS_COMPILE=${cross}`, 'DEB_BUILD_ARCH=amd64', 'DEB_HOST_ARCH=arm64', `DEB_HOST_GNU_TYPE=${cross.slice(0, -1)}`] : [];
  let ccVersion: string;
  try {
    ccVersion = (await runTool(cc, ['--version'], { install: cross ? 'apt-get install gcc-aarch64-linux-gnu' : 'apt-get install gcc', signal })).stdout.split('\n')[0]!.trim();
  } catch (e) {
    if (signal?.aborted) throw e;
    return { cc, ko: null, failed: `no C compiler here (${cc}: ${(e as Error).message.split('\n')[0]})` };
  }
  const mod = join(work, 'auxpmu');
  await cp(driverDir(), mod, { recursive: true });
  try {
    await runTool('make', ['-C', headersDir, `M=${mod}`, `CC=${cc}`, ...crossArgs, 'modules'], { install: 'apt-get install make', signal });
  } catch (e) {
    if (signal?.aborted || !(e instanceof ToolError)) throw e;
    // paths as the packages name them (/usr/src/...) and the driver's (harness/auxpmu), not the scratch dir's
    const text = `${e.stderr}\n${e.stdout}`.split(mod).join('harness/auxpmu').split(root).join('');
    return { cc: ccVersion, ko: null, failed: firstBuildError(text) };
  }
  return checkedKo(join(mod, `${AUX_MODULE}.ko`), ccVersion, release);
}

/** The built .ko when its vermagic names `release`. */
async function checkedKo(file: string, cc: string, release: string): Promise<{ cc: string; ko: Buffer | null; failed: string | null }> {
  const ko = await readFile(file);
  const vm = vermagicOf(ko);
  if (!vm?.startsWith(`${release} `)) return { cc, ko: null, failed: `the module's vermagic ${JSON.stringify(vm)} is not the kernel's release ${release}` };
  return { cc, ko, failed: null };
}

/**
 * The kbuild inside a Debian root holding `cc` (src/kernels/obtain/debian-sysroot.ts):
 * the headers tree moves into the root's /build/<unique>/, the Makefiles
 * name it as the root sees it, make runs under chroot; the build dir is
 * removed after.
 */
async function buildInSysroot(root: string, hdr: string, cc: string, release: string, opts: EnsureOptions): Promise<{ cc: string; ko: Buffer | null; failed: string | null }> {
  let sys: Sysroot;
  try {
    sys = await ensureDebianSysroot(cc, opts);
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    return { cc, ko: null, failed: `the headers name ${cc}, which this machine lacks, and no Debian root with it could be made: ${firstBuildError((e instanceof ToolError ? e.stderr || e.message : (e as Error).message))}` };
  }
  const [host, seen] = await sysrootBuildDir(sys);
  try {
    await rename(root, join(host, 'root'));
    await rootMakefiles(join(host, 'root'), `${seen}/root`);
    await cp(driverDir(), join(host, 'auxpmu'), { recursive: true });
    const ccVersion = `${(await inSysroot(sys, [cc, '--version'], opts.signal)).stdout.split('\n')[0]!.trim()} (a Debian ${sys.suite} root)`;
    try {
      await inSysroot(sys, ['make', '-C', `${seen}/root/usr/src/${hdr}`, `M=${seen}/auxpmu`, `CC=${cc}`, 'modules'], opts.signal);
    } catch (e) {
      if (opts.signal?.aborted || !(e instanceof ToolError)) throw e;
      return { cc: ccVersion, ko: null, failed: firstBuildError(`${e.stderr}\n${e.stdout}`.split(`${seen}/auxpmu`).join('harness/auxpmu').split(`${seen}/root`).join('')) };
    }
    return await checkedKo(join(host, 'auxpmu', `${AUX_MODULE}.ko`), ccVersion, release);
  } finally {
    await rm(host, { recursive: true, force: true });
  }
}

/** The modules of a kernel's own modules.cpio (name and bytes, in its /lockstep/modules order). */
async function kernelModules(cpio: string | undefined): Promise<{ name: string; data: Buffer }[]> {
  if (!cpio) return [];
  const entries = cpioList(await readFile(cpio));
  const order = entries.find((e) => e.name === 'lockstep/modules')?.data.toString().split('\n').filter(Boolean) ?? [];
  return order.map((name) => {
    const f = entries.find((e) => e.name === `lib/modules/${name}.ko`);
    if (!f) throw new Error(`${cpio}: lists ${name} but has no lib/modules/${name}.ko`);
    return { name, data: f.data };
  });
}

/**
 * `a` (a "debian-image" artifact of `spec`) with lockstep_aux: its
 * initrdExtra the kernel's modules plus lockstep_aux.ko (loaded last), and
 * meta.aux_pmu = { module, headers, compiler, ko_sha256 }; or, when the
 * module cannot be had, `a` unchanged but meta.aux_pmu = { skip: reason }
 * (the kernel's other cells run; its AUX cells SKIP with the reason, e.g.
 * "needs the lockstep_aux PMU (harness/auxpmu): lockstep_aux did not build
 * against linux-headers-...: gcc: error: unrecognized command-line option
 * '-fmin-function-alignment=16'").
 * Throws only when `opts.signal` aborts or the cache is unwritable.
 */
export async function withDebianAuxPmu(a: KernelArtifact, spec: DebianImageSpec, opts: EnsureOptions): Promise<KernelArtifact> {
  const skip = (reason: string): KernelArtifact => ({ ...a, meta: { ...a.meta, aux_pmu: { skip: `${AUX_NEEDS}: ${reason}` } satisfies AuxPmuState } });
  const pkg = String(a.meta.package);
  const pv = String(a.meta.package_version);
  const release = String(a.meta.release);
  const arch = spec.arch ?? 'x86_64';
  if (process.arch !== 'x64') return skip(`lockstep builds ${AUX_MODULE} for Debian images on x86_64 hosts only (this one is ${process.arch})`);
  if (!kernelPackage(pkg)) return skip(`${pkg} is not a kernel package whose headers lockstep can name`);
  const config = typeof a.meta.config === 'string' ? await readFile(a.meta.config, 'utf8').catch(() => null) : null;
  if (config === null) return skip(`${pkg}=${pv} has no kernel config to check that it loads modules`);
  const blocker = moduleLoadBlocker(config);
  if (blocker) return skip(`${AUX_MODULE} cannot load: ${blocker}`);

  const driver = createHash('sha256');
  for (const f of ['lockstep_aux.c', 'Kbuild']) driver.update(await readFile(join(driverDir(), f)));
  const driverSha = driver.digest('hex');
  const key = createHash('sha256').update(`${RECIPE}\n${driverSha}\n${(await gccsOnPath()).join(' ')}`).digest('hex').slice(0, 12);
  const parent = join(opts.cacheDir, 'kernels', 'debian-auxpmu');
  let got: { entry: string; meta: AuxEntryMeta };
  try {
    got = await ensureEntry<AuxEntryMeta>({
      parent, key: `${pkg}_${pv}_${key}`, label: `${AUX_MODULE} for ${pkg}=${pv}`, verb: 'building', log: opts.log,
      lockTimeoutMs: opts.lockTimeoutMs, signal: opts.signal,
      check: (e) => checkEntry<AuxEntryMeta>(e, (m) => (m.failed !== null && typeof m.failed === 'string' ? {}
        : typeof m.ko_sha256 === 'string' && typeof m.modules_sha256 === 'string' ? { [`${AUX_MODULE}.ko`]: m.ko_sha256, 'modules.cpio': m.modules_sha256 } : null)),
      fill: async (staging) => {
        const work = await scratchDir(parent, `${pkg}_${pv}_${key}`);
        try {
          const apt = await specApt(spec, opts);
          // an arm64 kernel always has a suite (specApt); its kbuild tools come from that suite's amd64 lists
          const hostApt = arch === 'x86_64' || !apt.suite ? apt : await suiteSource(apt.suite, { cacheDir: opts.cacheDir, log: opts.log, signal: opts.signal, arch: 'amd64' });
          const t0 = Date.now();
          opts.log(`fetching the headers of ${pkg}=${pv} from ${apt.label} to build ${AUX_MODULE}`);
          const root = join(work, 'root');
          await mkdir(root);
          const { headers, dir } = await fetchHeaders(pkg, pv, apt, hostApt, work, root, opts.signal);
          const t1 = Date.now();
          const kernelCc = configCompiler(await readFile(join(dir, '.config'), 'utf8').catch(() => ''));
          const b = await buildModule(root, headersPackage(kernelPackage(pkg)!), work, release, arch, opts);
          const t2 = Date.now();
          const meta: AuxEntryMeta = {
            package: pkg, package_version: pv, release, driver_sha256: driverSha, headers, compiler: b.cc, kernel_compiler: kernelCc,
            failed: b.failed, download_ms: t1 - t0, build_ms: t2 - t1, built_at: new Date().toISOString(),
          };
          if (b.ko) {
            await writeFile(join(staging, `${AUX_MODULE}.ko`), b.ko);
            await writeFile(join(staging, 'modules.cpio'), modulesArchive([...(await kernelModules(a.initrdExtra)), { name: AUX_MODULE, data: b.ko }]));
            meta.ko_sha256 = await sha256File(join(staging, `${AUX_MODULE}.ko`));
            meta.modules_sha256 = await sha256File(join(staging, 'modules.cpio'));
            opts.log(`built ${AUX_MODULE} against ${headers[0]} with ${b.cc}: headers ${((t1 - t0) / 1000).toFixed(1)} s, make ${((t2 - t1) / 1000).toFixed(1)} s`);
          } else {
            opts.log(`${AUX_MODULE} did not build against ${headers[0]} with ${b.cc}: ${b.failed}`);
          }
          await writeMeta(staging, meta);
          return meta;
        } finally {
          await rm(work, { recursive: true, force: true });
        }
      },
    });
  } catch (e) {
    if (e instanceof DownloadFailed) return skip(`${AUX_MODULE} was not built: ${e.message}`);
    throw e;
  }
  const m = got.meta;
  if (m.failed !== null) {
    return skip(`${AUX_MODULE} did not build against ${m.headers[0]} with ${m.compiler}${m.kernel_compiler ? ` (the kernel was built with ${m.kernel_compiler})` : ''}: ${m.failed}`);
  }
  const state: AuxPmuState = { module: AUX_MODULE, headers: m.headers, compiler: m.compiler, ko_sha256: m.ko_sha256! };
  return { ...a, initrdExtra: join(got.entry, 'modules.cpio'), meta: { ...a.meta, aux_pmu: state, aux_pmu_entry: got.entry } };
}
