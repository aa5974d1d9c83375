// A real old tree through the source builder: Debian bullseye's
// linux-source-5.10 (the newest bullseye or bullseye-security has), fetched through lockstep's own bullseye apt
// lists (src/kernels/obtain/apt-suite.ts; test/lib/debian-archive.ts), given as a "path" tree with
// expect "auto", built with the compiler its version gets (gcc-11) and the
// backport table checked against it (5.10.223 and later carry the objtool fix
// already), then booted once for a few discriminating scenarios whose
// cells must come out as the model predicts for a 5.10 kernel (V3, BPF
// maps still charged to user->locked_vm). Cold: one download (~120 MB) and
// one full build; warm: cache hits and one boot.

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir, ensureKernel } from '../../src/kernels/artifact.ts';
import { parseSpec, type SourceSpec } from '../../src/kernels/spec.ts';
import { counterFor, resolveExpect } from '../../src/kernels/expect.ts';
import { logicLabel } from '../../src/model/index.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { builtinScenarios } from '../../src/scenario/load.ts';
import { debianSourceTree } from '../lib/debian-archive.ts';

// A cold 5.10 build takes several minutes on a busy 2-core machine.
t.setTimeout(90 * 60_000);

// uring-refused: io_uring's registered buffers charge the registering mm's pinned_vm from v5.9 (309758254ea6), so 5.10 does (issue 24)
const SCENARIOS = ['overage', 'sysctl-lowered', 'shared-counter', 'bpf-ballast', 'remmap', 'uring-refused'];

t.test('Debian bullseye linux-source-5.10 builds from its own tree and behaves as 5.10', async (t) => {
  const cacheDir = defaultCacheDir();
  const log = (m: string) => { t.comment(m); t.setTimeout(90 * 60_000); };
  const src = await debianSourceTree(cacheDir, 'bullseye', 'linux-source-5.10', log);
  t.comment(`tree ${src.tree} (${src.version}) ready in ${src.seconds.toFixed(0)}s`);
  t.match(src.version, /^5\.10\./);
  const upstream = src.version.replace(/-.*/, '');
  const spec = parseSpec({
    id: `debian-src-${upstream}`, kind: 'source', version: upstream, distro: 'debian',
    source: { path: src.tree }, expect: 'auto', description: `Debian bullseye linux-source-5.10 ${src.version}, built from its tree`,
  }, join(cacheDir, 'debian-archive', 'bullseye', 'spec.json')) as SourceSpec;
  // V3; the counter is the facts table's for this 5.10.y: shared up to 5.10.240, open ("unknown") after it
  const counter = counterFor(upstream).row.counter;
  t.equal(logicLabel(resolveExpect(spec, spec.version).logic!), `V3/${counter}`, `expected from the version table: V3, counter ${counter}`);
  t.ok(counter === 'shared' || counter === 'unknown', 'never the separate perf counter: 5.10.y is not known to have it');

  const t0 = Date.now();
  const a = await ensureKernel(spec, { cacheDir, log });
  const seconds = (Date.now() - t0) / 1000;
  t.comment(`${a.cached ? 'cached' : 'built'} in ${seconds.toFixed(0)}s (build_seconds ${String(a.meta.build_seconds)}), release ${a.release}`);
  t.match(a.meta, { cc: 'gcc-11', compiler: /^gcc-11 /, absent_options: [] }, 'built with gcc-11, every fragment option exists in 5.10');
  t.same((a.meta.backports as { commit: string; status: string }[]).map((b) => [b.commit, b.status]), [['1d489151e9f9', 'present']], 'the objtool fix is in 5.10.223 and later already: the tree is built as it is');
  t.match(a.release, new RegExp(`^${upstream.replace(/\./g, '\\.')}-ls`));
  const repro = await readFile(join(String(a.meta.cache_entry), 'reproduce.sh'), 'utf8');
  t.match(repro, /CC=gcc-11 HOSTCC=gcc-11/, 'reproduce.sh uses the same compiler');
  const meta = JSON.parse(await readFile(join(String(a.meta.cache_entry), 'meta.json'), 'utf8')) as Record<string, unknown>;
  t.match(meta, { cc: 'gcc-11', cc_why: /gcc 12/, backports: [{ id: 'objtool-missing-symtab', status: 'present' }] }, 'meta.json lists the compiler and the backport check');

  const out = await mkdtemp(join(tmpdir(), 'lockstep-oldtree-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const scenarios = builtinScenarios().map((l) => l.compiled).filter((s) => SCENARIOS.includes(s.id));
  t.equal(scenarios.length, SCENARIOS.length);
  const r = await runMatrix({
    kernels: [spec], scenarios, outDir: out, cacheDir, jobs: 1, opTimeoutS: 120,
    log, rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  for (const c of r.cells) t.equal(c.verdict, 'MATCH', `${c.scenario}: ${c.verdict}${c.reason ? ` (${c.reason})` : ''}`);
  t.equal(r.cells.length, SCENARIOS.length, 'one cell per scenario');
  t.ok(r.cells.every((c) => c.kernel_release === a.release), 'every cell ran on the built kernel');
  t.equal(r.kernels[0]!.release_kind, 'real', 'a tree built without patches is a real release, not a stand-in');
});
