// The Runtime interface (src/runner/runtime.ts) and the run's runtimes
// (src/matrix/runtimes.ts): only the runtimes the matrix's kernels use are
// made and prepared, in one order; every prepared runtime is stopped once,
// when the run ends, when a group throws, or when a later runtime cannot be
// prepared; each runtime says what it offers. Fake runtimes record the calls
// (the logic around them is what is tested); the real classes' offer() is
// checked against the functions it stands for. Pure: no QEMU, no Docker, no
// network.

import t from 'tap';
import type { KernelArtifact } from '../../src/kernels/artifact.ts';
import { vmOffer } from '../../src/kernels/obtain/source/toolchain.ts';
import { type KernelSpec, parseSpec } from '../../src/kernels/spec.ts';
import type { PlannedGroup } from '../../src/matrix/plan.ts';
import { prepareRuntimes, RUNTIME_FACTORIES, type RuntimeFactory, type RuntimeName, type RuntimesOptions, runtimeOf, withRuntimes } from '../../src/matrix/runtimes.ts';
import { HostRuntime, hostOffer } from '../../src/runner/host.ts';
import { type GroupOutcome, type GroupRequest, type OfferGroup, type Runtime, StopSwitch } from '../../src/runner/runtime.ts';
import { VirtmeRuntime } from '../../src/runner/virtme.ts';
import { QemuRuntime } from '../../src/runner/vm.ts';
import type { Offer } from '../../src/scenario/skip.ts';
import { ConfigError, MissingDependencyError } from '../../src/util/errors.ts';

const spec = (o: Record<string, unknown>): KernelSpec => parseSpec(o, `${String(o.id)}.json`);
const HOST = spec({ id: 'host', kind: 'host' });
const CONTAINER = spec({ id: 'host-container', kind: 'host', runtime: 'container' });
const VM = spec({ id: 'vm', kind: 'image', version: '6.1.190', path: '/nonexistent/bzImage' });
const VNG = spec({ id: 'vng', kind: 'image', version: '6.1.190', path: '/nonexistent/bzImage', runtime: 'virtme' });
const ARTIFACT: KernelArtifact = { id: 'vm', kind: 'image', vmlinuz: '/nonexistent/bzImage', version: '6.1.190', sha256: null, cached: false, meta: { absent_options: ['CONFIG_IO_URING'] } };

const group = (runtime: RuntimeName, kernel: string): PlannedGroup => ({ runtime, kernel, cpus: 2, key: `${kernel}.cpus2` }) as unknown as PlannedGroup;

/** A runtime that records what is asked of it; `failPrepare` / `failRun` make those calls throw. */
class FakeRuntime implements Runtime {
  readonly calls: string[] = [];
  constructor(
    readonly name: RuntimeName,
    private readonly log: string[],
    private readonly opts: { failPrepare?: Error; failRun?: Error; accel?: { accel: 'kvm' | 'tcg'; why: string }; emulator?: string } = {},
  ) {
    if (opts.accel) this.accelChoice = async () => opts.accel!;
    if (opts.emulator) this.emulator = opts.emulator;
  }

  accelChoice?: () => Promise<{ accel: 'kvm' | 'tcg'; why: string }>;
  emulator?: string;

  private note(what: string): void {
    this.calls.push(what);
    this.log.push(`${this.name}.${what}`);
  }

  async prepare(): Promise<void> {
    this.note('prepare');
    if (this.opts.failPrepare) throw this.opts.failPrepare;
  }

  offer(g: OfferGroup, s: KernelSpec): Offer {
    this.note(`offer ${g.kernel} ${s.id}`);
    return { where: `fake ${this.name}` } as unknown as Offer;
  }

  async run(req: GroupRequest): Promise<GroupOutcome> {
    this.note(`run ${req.kernel}`);
    if (this.opts.failRun) throw this.opts.failRun;
    return { status: 'ok', detail: '' } as unknown as GroupOutcome;
  }

  async stop(): Promise<void> {
    this.note('stop');
  }
}

/** Factories that make fakes, remembering them; `made` counts the factory calls per name. */
function fakes(log: string[], opts: Partial<Record<RuntimeName, ConstructorParameters<typeof FakeRuntime>[2]>> = {}) {
  const made = new Map<RuntimeName, FakeRuntime>();
  const make = (name: RuntimeName): RuntimeFactory => () => {
    const r = new FakeRuntime(name, log, opts[name]);
    made.set(name, r);
    return r;
  };
  // the real table's order: the fakes are made in it
  const factories = Object.fromEntries(Object.keys(RUNTIME_FACTORIES).map((n) => [n, make(n as RuntimeName)])) as Record<RuntimeName, RuntimeFactory>;
  return { factories, made };
}

const options = (kernels: KernelSpec[]): RuntimesOptions => ({ kernels, cacheDir: '/nonexistent-cache', log: () => {} });

t.test('the runtime of each kernel kind', async (t) => {
  t.strictSame([HOST, CONTAINER, VM, VNG].map((k) => runtimeOf(k)), ['host', 'container', 'qemu', 'virtme']);
  t.equal(runtimeOf(VM, 'virtme'), 'virtme', '--runtime virtme moves x86_64 VM kernels to vng');
  t.strictSame(Object.keys(RUNTIME_FACTORIES), ['qemu', 'host', 'virtme', 'container'], 'the preparation order: QEMU first, the Docker engine last');
});

t.test('only the runtimes the kernels use are made and prepared, in the table\'s order; each stopped once', async (t) => {
  const log: string[] = [];
  const { factories, made } = fakes(log);
  const rts = await prepareRuntimes(options([HOST, VM, HOST]), factories);
  t.strictSame([...made.keys()].sort(), ['host', 'qemu'], 'no virtme or container runtime is made');
  t.strictSame(log, ['qemu.prepare', 'host.prepare'], 'each prepared once, QEMU first');
  t.equal(rts.runtimeFor(group('qemu', 'vm')), made.get('qemu'), 'a qemu group runs on the qemu runtime');
  t.equal(rts.runtimeFor(group('host', 'host')), made.get('host'));
  t.strictSame(rts.offerFor(group('qemu', 'vm'), VM, ARTIFACT), { where: 'fake qemu' }, 'the offer is the group\'s runtime\'s');
  t.strictSame(made.get('qemu')!.calls.slice(-1), ['offer vm vm'], 'offer() gets the group and the spec');
  await rts.stop();
  await rts.stop();
  t.strictSame(log.filter((l) => l.endsWith('.stop')).sort(), ['host.stop', 'qemu.stop'], 'stop() twice stops each runtime once');
});

t.test('the accelerator and emulator come from the qemu runtime, when the run has one', async (t) => {
  const none = await prepareRuntimes(options([HOST]), fakes([]).factories);
  t.strictSame(none.accel, { accel: 'none', why: 'no VM kernels in this matrix' });
  t.equal(none.emulator, undefined);
  const vm = await prepareRuntimes(options([VM]), fakes([], { qemu: { accel: { accel: 'tcg', why: 'no usable /dev/kvm' }, emulator: 'QEMU emulator version 7.2.0' } }).factories);
  t.strictSame(vm.accel, { accel: 'tcg', why: 'no usable /dev/kvm' });
  t.equal(vm.emulator, 'QEMU emulator version 7.2.0');
  await none.stop();
  await vm.stop();
});

t.test('a runtime that cannot be prepared stops the run before any boot; those prepared before it are stopped', async (t) => {
  const log: string[] = [];
  const missing = new MissingDependencyError('virtme-ng (vng)', 'apt-get install ...');
  const { factories } = fakes(log, { virtme: { failPrepare: missing } });
  const err = await prepareRuntimes(options([CONTAINER, VNG, VM]), factories).then(() => null, (e: unknown) => e);
  t.equal(err, missing, 'its error (exit 2) passes through unchanged');
  t.strictSame(log.filter((l) => l.endsWith('.prepare')), ['qemu.prepare', 'virtme.prepare'], 'the container runtime after it is never prepared');
  t.strictSame(log.filter((l) => l.endsWith('.stop')).sort(), ['qemu.stop', 'virtme.stop'], 'the ones made are stopped, once each');
  t.notOk(log.some((l) => l.startsWith('container.')), 'the container runtime is not even made');
});

t.test('withRuntimes: stop() once per runtime whether the body returns or a group throws', async (t) => {
  for (const failRun of [undefined, new Error('a bug in the group'), new ConfigError('x.json', 'field', 'bad', 'fix it')]) {
    const log: string[] = [];
    const { factories } = fakes(log, { qemu: { failRun } });
    const body = async (rts: Awaited<ReturnType<typeof prepareRuntimes>>): Promise<string[]> => {
      const out: string[] = [];
      for (const g of [group('host', 'host'), group('qemu', 'vm')]) {
        const r = await rts.runtimeFor(g).run({ kernel: g.kernel } as GroupRequest);
        out.push(r.status);
      }
      return out;
    };
    const got = await withRuntimes(options([HOST, VM]), factories, body).then((v) => v, (e: unknown) => e);
    if (failRun) t.equal(got, failRun, `${failRun.name}: the group's error passes through`);
    else t.strictSame(got, ['ok', 'ok'], 'the body\'s result passes through');
    t.strictSame(log.slice(0, 4), ['qemu.prepare', 'host.prepare', 'host.run host', 'qemu.run vm'], 'prepare, then the runs');
    t.strictSame(log.slice(4).sort(), ['host.stop', 'qemu.stop'], `${failRun ? 'after the throw' : 'after the run'}: every prepared runtime stopped once`);
  }
});

t.test('StopSwitch: a run watches its request\'s signal and its runtime\'s stop', async (t) => {
  const sw = new StopSwitch();
  const user = new AbortController();
  const req = sw.watch({ kernel: 'k', signal: user.signal } as GroupRequest);
  const bare = sw.watch({ kernel: 'k' } as GroupRequest);
  t.equal(req.kernel, 'k', 'the rest of the request is kept');
  t.notOk(req.signal!.aborted || bare.signal!.aborted || sw.stopped, 'nothing aborted yet');
  user.abort();
  t.ok(req.signal!.aborted, 'the request\'s own abort still reaches the run');
  t.notOk(bare.signal!.aborted || sw.stopped, 'and no other run');
  sw.stop();
  sw.stop();
  t.ok(sw.stopped && bare.signal!.aborted, 'stop() reaches a run without a signal of its own; twice is once');
  t.ok(sw.watch({ kernel: 'k' } as GroupRequest).signal!.aborted, 'a run asked of a stopped runtime starts aborted');
});

t.test('the real classes: offer() is what the matrix offered before, prepare-free; host stop() is idempotent', async (t) => {
  const host = new HostRuntime();
  t.strictSame(host.offer(), hostOffer(), 'the host offers what hostOffer() says');
  await host.prepare();
  await host.stop();
  await host.stop();
  t.pass('host prepare and stop twice: nothing to acquire or release');
  const g = group('qemu', 'vm');
  const expected = vmOffer(['CONFIG_IO_URING'], null);
  t.strictSame(new QemuRuntime({ cacheDir: '/nonexistent-cache', x86Guests: true, log: () => {} }).offer(g, VM, ARTIFACT), expected, 'QEMU: the options the config lacks');
  t.strictSame(new VirtmeRuntime().offer(g, VNG, ARTIFACT), expected, 'virtme: the same VM offer');
  t.strictSame(new QemuRuntime({ cacheDir: '/x', x86Guests: false, log: () => {} }).offer(g, VM, { ...ARTIFACT, meta: {} }), vmOffer([], null), 'no absent_options: none lacking');
});
