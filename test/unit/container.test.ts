// Container mode against the real Docker engine (started by .ci/run): the
// host kernel reached through a container as root, the incident's setting
// scaled to this host, with and without CAP_IPC_LOCK. Plus the pure parts
// (tar writer, container settings, engine error messages) and the CLI's
// answer when the engine is missing or stopped.
// Tier: unit (its subtests moved unchanged from test/container.test.ts; the rest is in test/smoke/container.test.ts).

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectEngine, engineProblem } from '../../src/container/engine.ts';
import { rootfsEntries } from '../../src/container/image.ts';
import { containerOffer, containerSettings, hostConfigFor } from '../../src/container/settings.ts';
import { scenarioNeeds } from '../../src/scenario/load.ts';
import type { CompiledScenario } from '../../src/scenario/ops.ts';
import { skipReason } from '../../src/scenario/skip.ts';
import { tarArchive, tarList } from '../../src/container/tar.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import { compileScenario } from '../../src/scenario/load.ts';
import { ConfigError, MissingDependencyError } from '../../src/util/errors.ts';
import { runBatch } from '../lib/cli-batch.ts';

const exec = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;

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
  const endpoints = [[`unix://${join(dir, 'absent.sock')}`, /dockerd is not running/], [`unix://${notASocket}`, /dockerd has stopped/]] as const;
  // both command lines in one process (test/lib/cli-batch.ts: main() in-process, DOCKER_HOST set per case)
  const runs = await runBatch(endpoints.map(([endpoint]) => ({ argv: ['run', '--kernels', 'host-container', '--scenarios', 'baseline', '--out', join(dir, 'out')], env: { DOCKER_HOST: endpoint } })), { cwd: ROOT });
  for (const [i, [endpoint, what]] of endpoints.entries()) {
    await t.rejects(connectEngine({ DOCKER_HOST: endpoint }), MissingDependencyError);
    const r = runs[i]!;
    t.equal(r.code, 2, `${endpoint}: exit 2`);
    t.match(r.stderr, what, `${endpoint}: says what is wrong`);
    t.match(r.stderr, /Fix: start the Docker engine: as root `dockerd/, `${endpoint}: says how to start it`);
  }
  await rm(dir, { recursive: true, force: true });
});
