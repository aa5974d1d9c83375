// Container mode against the real Docker engine (started by .ci/run): the
// host kernel reached through a container as root, the incident's setting
// scaled to this host, with and without CAP_IPC_LOCK. Plus the pure parts
// (tar writer, container settings, engine error messages) and the CLI's
// answer when the engine is missing or stopped.

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectEngine, engineProblem } from '../src/container/engine.ts';
import { ensureReproImage, rootfsEntries } from '../src/container/image.ts';
import { containerOffer, containerSettings, hostConfigFor } from '../src/container/settings.ts';
import { scenarioNeeds } from '../src/scenario/load.ts';
import type { CompiledScenario } from '../src/scenario/ops.ts';
import { skipReason } from '../src/scenario/skip.ts';
import { tarArchive, tarList } from '../src/container/tar.ts';
import { defaultCacheDir } from '../src/kernels/artifact.ts';
import { builtinSpecsDir, loadSpecFile, parseSpec } from '../src/kernels/spec.ts';
import { runMatrix } from '../src/matrix/run.ts';
import { simulate } from '../src/model/index.ts';
import { hostMemlockHardKb, hostOnlineCpus } from '../src/runner/host.ts';
import { compileScenario } from '../src/scenario/load.ts';
import type { CellResult } from '../src/results/schema.ts';
import { ConfigError, MissingDependencyError } from '../src/util/errors.ts';

const exec = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Pure parts

t.test('tar writer: a rootfs docker import can read', async (t) => {
  const tar = await tarArchive(rootfsEntries(Buffer.from('busybox!'), Buffer.alloc(1000, 7)));
  t.equal(tar.length % 512, 0, 'whole blocks');
  const list = await tarList(tar);
  t.strictSame(list.map((e) => `${e.type}:${e.name}`), [
    'directory:bin/', 'directory:dev/', 'directory:etc/', 'directory:proc/', 'directory:sys/', 'directory:tmp/', 'directory:lockstep/',
    'file:bin/busybox', 'symlink:bin/sh', 'file:bin/lockstep-repro', 'file:etc/passwd', 'file:etc/group',
  ]);
  t.equal(list.find((e) => e.name === 'bin/lockstep-repro')!.size, 1000);
  t.equal(list.find((e) => e.name === 'bin/sh')!.target, 'busybox');
  t.same(await tarArchive(rootfsEntries(Buffer.from('busybox!'), Buffer.alloc(1000, 7))), tar, 'deterministic: same entries, same bytes');
  // GNU tar reads it back the same (what docker import's tar reader sees)
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-tar-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'a.tar'), tar);
  const listed = (await exec('tar', ['-tvf', join(dir, 'a.tar')])).stdout;
  t.match(listed, /^drwxrwxrwt root\/root\s+0 1970-01-01 00:00 tmp\/$/m, 'sticky tmp, root-owned, mtime 0');
  t.match(listed, /^lrwxrwxrwx root\/root\s+0 1970-01-01 00:00 bin\/sh -> busybox$/m);
  await t.rejects(tarArchive([{ type: 'file', name: '../etc/x', mode: 0o644, data: Buffer.alloc(1) }]), /unsafe/);
  await t.rejects(tarArchive([{ type: 'file', name: '/etc/x', mode: 0o644, data: Buffer.alloc(1) }]), /unsafe/);
});

const scen = (over: Record<string, unknown>, ops: unknown[]) =>
  compileScenario({ id: 'c', description: 'container test', cpus: 2, ops, ...over }, 'test');

t.test('container settings come from the scenario', (t) => {
  const plain = containerSettings(scen({ rlimit_kb: 64 }, [{ op: 'probe' }, { op: 'rlimit', memlock_kb: 128 }, { op: 'rlimit', memlock_kb: 16 }]));
  t.strictSame(plain, { capAdd: ['SYS_ADMIN'], rlimitMemlockKb: 128, seccomp: 'default' }, 'no IPC_LOCK; the largest RLIMIT the scenario sets');
  const cap = containerSettings(scen({ cap_ipc_lock: true }, [{ op: 'probe' }]));
  t.strictSame(cap.capAdd, ['SYS_ADMIN', 'IPC_LOCK'], 'cap_ipc_lock: IPC_LOCK in the container');
  t.equal(containerSettings(scen({ rlimit_kb: null }, [{ op: 'probe' }])).rlimitMemlockKb, null);
  t.equal(containerSettings(scen({ rlimit_kb: 64 }, [{ op: 'ballast', via: 'io_uring', pages: 10 }])).rlimitMemlockKb, 8192, 'a helper: its fixed 8192 kB RLIMIT_MEMLOCK must fit');
  t.strictSame(containerSettings(scen({}, [{ op: 'cap', cap_ipc_lock: true }])).capAdd, ['SYS_ADMIN', 'IPC_LOCK'], 'granted by an op later: IPC_LOCK in the container too');
  const hc = hostConfigFor(plain, '/x/logs');
  t.strictSame(hc.Ulimits, [{ Name: 'memlock', Soft: 131072, Hard: 131072 }]);
  t.notOk('SecurityOpt' in hc, 'the default seccomp profile');

  const host = containerOffer({ onlineCpus: 2, perfEventMlockKb: 516, paranoid: 2 });
  const why = (s: CompiledScenario) => skipReason(scenarioNeeds(s), host);
  t.equal(why(scen({}, [{ op: 'probe' }])), null);
  t.match(why(scen({ paranoid: -1 }, [{ op: 'probe' }])), /perf_event_paranoid -1.*read-only/);
  t.match(why(scen({}, [{ op: 'sysctl', name: 'perf_event_mlock_kb', value: 260 }])), /writes perf_event_mlock_kb.*read-only/);
  t.match(why(scen({ cpus: 4 }, [{ op: 'cpu', cpu: 3, online: false }])), /needs 4 online CPUs/);
  t.match(why(scen({ fault_injection: true }, [{ op: 'hang', seconds: 1 }])), /fault-injection ops \(hang\/sysrq\): VM only/);
  t.end();
});

t.test('engine errors say how to start dockerd', (t) => {
  const enoent = engineProblem(Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' }), 'unix:///var/run/docker.sock');
  t.match(enoent.what, /dockerd is not running/);
  t.match(enoent.fix, /dockerd >\/var\/log\/dockerd.log 2>&1 &/);
  t.match(engineProblem(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'e').what, /stopped/);
  t.match(engineProblem(Object.assign(new Error('x'), { code: 'EACCES' }), 'e').fix, /root|docker group/);
  t.end();
});

t.test('host-container spec: a host kernel with runtime container', (t) => {
  t.equal((parseSpec({ id: 'hc', kind: 'host', runtime: 'container' }, 'f') as { runtime?: string }).runtime, 'container');
  t.throws(() => parseSpec({ id: 'hc', kind: 'host', runtime: 'podman' }, 'f'), ConfigError);
  t.throws(() => parseSpec({ id: 'hc', kind: 'debian-image', runtime: 'container', package: 'linux-image-x', version: '6.1.1' }, 'f'), ConfigError, 'runtime is for host kernels only');
  t.end();
});

// ---------------------------------------------------------------------------
// A missing or stopped engine: exit 2 with the fix (a fake endpoint: the real engine is shared)

t.test('missing or stopped engine: the CLI exits 2 and says how to start it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-noengine-'));
  const notASocket = join(dir, 'docker.sock');
  await writeFile(notASocket, '');
  for (const [endpoint, what] of [[`unix://${join(dir, 'absent.sock')}`, /dockerd is not running/], [`unix://${notASocket}`, /dockerd has stopped/]] as const) {
    await t.rejects(connectEngine({ DOCKER_HOST: endpoint }), MissingDependencyError);
    const r = await exec(process.execPath, [join(ROOT, 'bin/lockstep.mjs'), 'run', '--kernels', 'host-container', '--scenarios', 'baseline', '--out', join(dir, 'out')], {
      env: { ...process.env, DOCKER_HOST: endpoint },
    }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    t.equal(r.code, 2, `${endpoint}: exit 2`);
    t.match(r.stderr, what, `${endpoint}: says what is wrong`);
    t.match(r.stderr, /Fix: start the Docker engine: as root `dockerd/, `${endpoint}: says how to start it`);
  }
  await rm(dir, { recursive: true, force: true });
});

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
  const { ContainerRuntime } = await import('../src/runner/container.ts');
  const { freshHostUids } = await import('../src/runner/host.ts');
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
