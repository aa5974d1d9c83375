// Container mode against the real Docker engine (started by .ci/run): the
// host kernel reached through a container as root, the incident's setting
// scaled to this host, with and without CAP_IPC_LOCK. Plus the pure parts
// (tar writer, container settings, engine error messages) and the CLI's
// answer when the engine is missing or stopped.
// Tier: smoke (its subtests moved unchanged from test/container.test.ts; the rest is in test/unit/container.test.ts).

import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectEngine } from '../../src/container/engine.ts';
import { ensureReproImage } from '../../src/container/image.ts';
import { containerSettings } from '../../src/container/settings.ts';
import { defaultCacheDir } from '../../src/kernels/artifact.ts';
import { builtinSpecsDir, loadSpecFile } from '../../src/kernels/spec.ts';
import { runMatrix } from '../../src/matrix/run.ts';
import { simulate } from '../../src/model/index.ts';
import { hostMemlockHardKb, hostOnlineCpus } from '../../src/runner/host.ts';
import { compileScenario } from '../../src/scenario/load.ts';
import type { CellResult } from '../../src/results/schema.ts';

// ---------------------------------------------------------------------------
// The real engine

t.test('real Docker engine: root container, no CAP_IPC_LOCK -> EPERM where the model says; with it, none', async (t) => {
  const engine = await connectEngine(); // .ci/run starts dockerd; a missing engine fails here with the fix
  t.comment(`Docker ${engine.version} (API ${engine.apiVersion}) at ${engine.endpoint}`);
  const image = await ensureReproImage(engine.docker);
  t.match(image.ref, /^lockstep-repro:[0-9a-f]{16}$/);
  const again = await ensureReproImage(engine.docker);
  t.equal(again.built, false, 'the image is found again by its tag, not rebuilt');
  t.equal(again.id, image.id);

  const cpus = hostOnlineCpus();
  // The incident scaled to this host: the per-user allowance is used up (ballast "L"),
  // then 2-data-page rings (3 pages each) land in VmPin against a small memlock ulimit.
  const ops = [
    { op: 'ballast', via: 'perf', pages: 'L' },
    { op: 'probe' },
    { op: 'map', buf: 'rb', cpu: 'round-robin', count: 6, data_pages: 2 },
    { op: 'unmap', buf: '*' },
    { op: 'probe' },
  ];
  const mk = (id: string, over: Record<string, unknown>) =>
    compileScenario({ id, description: 'container incident, scaled', cpus, rlimit_kb: 32, ops, ...over }, 'test');
  const noCap = mk('container-no-ipc-lock', {});
  const withCap = mk('container-ipc-lock', { cap_ipc_lock: true });
  const hard = hostMemlockHardKb();
  const incident = mk('container-512mib', { rlimit_kb: 524288 });
  const specs = await loadSpecFile(join(builtinSpecsDir(), 'host-container.json'));
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-container-'));
  const r = await runMatrix({
    kernels: specs, scenarios: [noCap, withCap, incident], outDir: dir, cacheDir: defaultCacheDir(),
    jobs: 1, opTimeoutS: 60, log: (l) => t.comment(l), rerun: (k, s) => `lockstep run --kernels ${k} --scenarios ${s}`,
  });
  const cell = (id: string): CellResult => r.cells.find((c) => c.scenario === id)!;
  const a = cell('container-no-ipc-lock');
  const b = cell('container-ipc-lock');
  t.equal(a.runtime, 'container');
  t.equal(a.expected_logic, 'V4/shared', 'the host kernel (6.18)');

  // The model's EPERM point: RLIMIT 32 kB = 8 pages, 3 pages per map once U is at L: calls 1, 2 fit, 3 does not.
  const model = simulate(noCap, { accounting: 'V4', counter: 'shared' });
  const mapIdx = noCap.ops.flatMap((o, i) => (o.op === 'map' ? [i] : []));
  const modelEperm = mapIdx.findIndex((i) => model[i]!.errno === 'EPERM') + 1;
  t.equal(modelEperm, 3, 'the model predicts EPERM at call 3');
  t.equal(a.verdict, 'MATCH', `no CAP_IPC_LOCK: ${a.reason ?? 'MATCH'}`);
  t.equal(a.first_eperm_measured, 3, 'measured in the container: EPERM at call 3');
  t.strictSame(a.pinned_measured, [3, 6, 6, 6, 6, 6], 'VmPin stops at 6 pages: every later map is refused');
  t.equal(a.measured.filter((m) => m.op === 'map' && m.errno === 'EPERM').length, 4);

  t.equal(b.verdict, 'MATCH', `CAP_IPC_LOCK added: ${b.reason ?? 'MATCH'}`);
  t.equal(b.first_eperm_measured, null, 'with CAP_IPC_LOCK no map is refused');
  t.strictSame(b.pinned_measured, [3, 6, 9, 12, 15, 18], 'VmPin passes the 8-page limit');

  t.match(a.accel_why ?? '', /through a container \(Docker /, 'the cell says it ran in a container');
  t.ok(a.uid !== undefined && a.uid !== b.uid && a.uid > 0, 'fresh uids, never root\'s shared counter');

  // The incident's own limit, 512 MiB: runc cannot raise RLIMIT_MEMLOCK above the daemon's hard limit without CAP_SYS_RESOURCE.
  const c = cell('container-512mib');
  if (hard !== null && hard < 524288) {
    t.equal(c.verdict, 'SKIP', `memlock 512 MiB above the hard limit ${hard} kB: ${c.reason}`);
    t.match(c.reason, /engine refused the container's RLIMIT_MEMLOCK 524288 kB.*rlimit/);
  } else {
    t.equal(c.verdict, 'MATCH', `memlock 512 MiB allowed here: ${c.reason ?? 'MATCH'}`);
    t.equal(c.first_eperm_measured, null, '512 MiB is far above what 6 maps pin');
  }
  await rm(dir, { recursive: true, force: true });
});

t.test('real Docker engine: the workload wants CAP_IPC_LOCK, the container does not grant it (the incident): EPERM as without the cap', async (t) => {
  const { ContainerRuntime } = await import('../../src/runner/container.ts');
  const { freshHostUids } = await import('../../src/runner/host.ts');
  const engine = await connectEngine();
  const image = await ensureReproImage(engine.docker);
  const cpus = hostOnlineCpus();
  const s = compileScenario({
    id: 'wants-ipc-lock', description: 'worker keeps CAP_IPC_LOCK if the container has it', cpus, rlimit_kb: 32, cap_ipc_lock: true,
    ops: [{ op: 'ballast', via: 'perf', pages: 'L' }, { op: 'map', buf: 'rb', cpu: 'round-robin', count: 6, data_pages: 2 }],
  }, 'test');
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-container-deny-'));
  const outcomes: Record<string, (number | string)[]> = {};
  for (const grant of [false, true]) {
    // Same scenario; only the container's capability set differs.
    const rt = new ContainerRuntime(engine, image, (x) => ({ ...containerSettings(x), capAdd: grant ? ['SYS_ADMIN', 'IPC_LOCK'] : ['SYS_ADMIN'] }));
    const o = await rt.run({ kernel: 'host-container', vmlinuz: null, cpus, scenarios: [s], uids: freshHostUids(1), timeoutMs: 120_000, opTimeoutS: 60, logDir: dir });
    t.equal(o.status, 'ok', `${grant ? 'with' : 'without'} IPC_LOCK: ${o.detail || 'ok'}`);
    const ops = o.stream.scenarios.get(s.id)!.ops.filter((m) => m.op === 'map');
    outcomes[String(grant)] = ops.map((m) => (m.ok ? m.vmpin_kb / 4 : m.errno));
  }
  const asExpected = (e: ReturnType<typeof simulate>) => s.ops.flatMap((op, i) => (op.op === 'map' ? [e[i]!.ok ? e[i]!.pinned : e[i]!.errno] : []));
  t.strictSame(outcomes.false, asExpected(simulate({ ...s, cap_ipc_lock: false }, { accounting: 'V4', counter: 'shared' })), 'not granted: the worker cannot keep it, EPERM from call 3');
  t.strictSame(outcomes.false, [3, 6, 'EPERM', 'EPERM', 'EPERM', 'EPERM']);
  t.strictSame(outcomes.true, asExpected(simulate(s, { accounting: 'V4', counter: 'shared' })), 'granted: no EPERM');
  t.strictSame(outcomes.true, [3, 6, 9, 12, 15, 18]);
  await rm(dir, { recursive: true, force: true });
});
