// The container runtime: the reproducer runs against the host kernel inside
// a Docker container (through dockerode), one container per scenario so each
// gets its own capabilities and RLIMIT_MEMLOCK (src/container/settings.ts).
// All containers' result lines feed one stream, as one boot's would.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { connectEngine, type Engine } from '../container/engine.ts';
import { ensureReproImage, REPRO_IN_IMAGE, type ReproImage } from '../container/image.ts';
import { type ContainerSettings, containerOffer, containerSettings, hostConfigFor } from '../container/settings.ts';
import { type CompiledScenario, toScript } from '../scenario/ops.ts';
import type { Offer } from '../scenario/skip.ts';
import { hostOnlineCpus } from './host.ts';
import { type GroupOutcome, type GroupRequest, type Runtime, StopSwitch } from './runtime.ts';
import { StreamParser, tail } from './stream.ts';

/** The engine refused the container's resource limits (runc could not set them): the cell is a SKIP, not an error. */
const RLIMIT_REFUSED = /setting rlimit|error setting rlimits|rlimit type/i;

/**
 * The host kernel through Docker. prepare() connects to the engine and makes
 * sure the reproducer's image is there (or takes the ones given), and reads
 * the host's perf sysctls before any host group changes them; stop() removes
 * any container still there and ends a run still going.
 */
export class ContainerRuntime implements Runtime {
  readonly name = 'container' as const;
  private prepared?: Promise<void>;
  private readonly halt = new StopSwitch();
  /** containers created and not yet removed */
  private readonly live = new Set<Docker.Container>();
  private hostSysctls?: { perfEventMlockKb: number; paranoid: number };

  constructor(
    private engineGiven?: Engine,
    private imageGiven?: ReproImage,
    /** container settings per scenario (default: from the scenario; tests override it to deny a capability) */
    readonly settingsFor: (s: CompiledScenario) => ContainerSettings = containerSettings,
    private readonly log: (m: string) => void = () => {},
  ) {}

  /** The engine and the image, once; a missing engine is a MissingDependencyError (exit 2, with how to start it). */
  prepare(): Promise<void> {
    this.prepared ??= (async () => {
      this.engineGiven ??= await connectEngine();
      this.imageGiven ??= await ensureReproImage(this.engineGiven.docker, this.log);
      // Read before any host group runs: a host scenario changes them for its duration.
      this.hostSysctls = hostPerfSysctls();
    })();
    return this.prepared;
  }

  get engine(): Engine {
    if (!this.engineGiven) throw new Error('ContainerRuntime: prepare() first');
    return this.engineGiven;
  }

  get image(): ReproImage {
    if (!this.imageGiven) throw new Error('ContainerRuntime: prepare() first');
    return this.imageGiven;
  }

  /** What a container on the host kernel offers: the host's CPUs and its perf sysctls (read-only inside). */
  offer(): Offer {
    if (!this.hostSysctls) throw new Error('ContainerRuntime: prepare() first');
    return containerOffer({ onlineCpus: hostOnlineCpus(), ...this.hostSysctls });
  }

  async stop(): Promise<void> {
    this.halt.stop();
    await Promise.all([...this.live].map((c) => c.remove({ force: true }).catch(() => {})));
    this.live.clear();
  }

  async run(request: GroupRequest): Promise<GroupOutcome> {
    await this.prepare();
    const req = this.halt.watch(request);
    const docker = this.engine.docker;
    const started = Date.now();
    const parser = new StreamParser();
    let raw = '';
    let stderr = '';
    let bootMs: number | null = null;
    let status: GroupOutcome['status'] = 'ok';
    const details: string[] = [];
    const argv: string[] = [];
    const feed = (d: string): void => {
      if (bootMs === null) bootMs = Date.now() - started;
      raw += d;
      for (const ev of parser.push(d)) req.onEvent?.(ev);
    };

    for (let k = 0; k < req.scenarios.length; k++) {
      if (req.signal?.aborted) { status = 'aborted'; details.push('interrupted'); break; }
      const left = req.timeoutMs - (Date.now() - started);
      if (left <= 0) { status = 'timeout'; details.push(`containers still running after ${req.timeoutMs / 1000}s`); break; }
      const s = req.scenarios[k]!;
      const file = `script-${k}.ops`;
      await writeFile(join(req.logDir, file), toScript(s, req.uids[k]!));
      const settings = this.settingsFor(s);
      const cmd = [REPRO_IN_IMAGE, '--script', `/lockstep/${file}`, '--op-timeout', String(req.opTimeoutS)];
      const hostConfig = hostConfigFor(settings, req.logDir);
      argv.push(
        `[${s.id}] docker create --user 0:0 --network none --cap-add ${settings.capAdd.join(',')} ` +
          `--ulimit memlock=${settings.rlimitMemlockKb === null ? -1 : settings.rlimitMemlockKb * 1024} -v ${req.logDir}:/lockstep:ro ${this.image.ref} ${cmd.join(' ')}`,
      );
      const r = await this.runOne(docker, s.id, cmd, hostConfig, left, req.signal, feed, (d) => { stderr += d; });
      if (r.refused) {
        // The engine could not give the container the scenario's limits: say so as a skip line.
        feed(`${JSON.stringify({ ev: 'skip', scenario: s.id, reason: `the engine refused the container's RLIMIT_MEMLOCK ${settings.rlimitMemlockKb === null ? 'unlimited' : `${settings.rlimitMemlockKb} kB`}: ${r.refused}` })}\n`);
        continue;
      }
      if (r.status !== 'ok') {
        status = r.status;
        details.push(`${s.id}: ${r.detail}`);
        if (r.status === 'timeout' || r.status === 'aborted') break;
      }
    }
    const resultsLog = join(req.logDir, 'results.jsonl');
    await writeFile(resultsLog, raw);
    // What the engine was asked for, per scenario (the equivalent docker command lines).
    await writeFile(join(req.logDir, 'containers.txt'), argv.join('\n') + '\n');
    const stream = parser.end();
    return {
      status, detail: details.join('; '), stream, faults: [], consoleTail: tail(stderr, 20), consoleLog: null, resultsLog,
      accel: 'none', accelWhy: `host kernel through a container (Docker ${this.engine.version}, image ${this.image.ref})`,
      bootMs, wallMs: Date.now() - started, argv,
    };
  }

  /** One container: create, attach, start, wait (with a deadline), remove. */
  private async runOne(
    docker: Docker, scenario: string, cmd: string[], hostConfig: Record<string, unknown>, timeoutMs: number,
    signal: AbortSignal | undefined, out: (d: string) => void, err: (d: string) => void,
  ): Promise<{ status: GroupOutcome['status']; detail: string; refused?: string }> {
    const name = `lockstep-${process.pid}-${randomBytes(4).toString('hex')}`;
    let container: Docker.Container;
    try {
      container = await docker.createContainer({
        name, Image: this.image.ref, Cmd: cmd, User: '0:0', Tty: false, OpenStdin: false,
        AttachStdout: true, AttachStderr: true, NetworkDisabled: true,
        Labels: { 'lockstep.scenario': scenario }, HostConfig: hostConfig,
      });
    } catch (e) {
      return { status: 'error', detail: `creating the container: ${(e as Error).message}` };
    }
    this.live.add(container);
    let gotText = '';
    try {
      const stream = await container.attach({ stream: true, stdout: true, stderr: true });
      const o = new PassThrough();
      const e = new PassThrough();
      o.setEncoding('utf8');
      e.setEncoding('utf8');
      o.on('data', (d: string) => { gotText += d; out(d); });
      e.on('data', (d: string) => err(d));
      docker.modem.demuxStream(stream, o, e);
      const ended = new Promise<void>((resolve) => { stream.on('end', resolve); stream.on('close', resolve); stream.on('error', () => resolve()); });
      try {
        await container.start();
      } catch (x) {
        const msg = (x as Error).message;
        if (RLIMIT_REFUSED.test(msg)) return { status: 'ok', detail: '', refused: msg.replace(/^\(HTTP code \d+\)[^:]*:\s*/, '').slice(0, 300) };
        return { status: 'error', detail: `starting the container: ${msg}` };
      }
      let why: 'timeout' | 'aborted' | null = null;
      const stop = (w: 'timeout' | 'aborted'): void => {
        if (why) return;
        why = w;
        // SIGTERM first: the reproducer ends its block cleanly on it.
        container.kill({ signal: 'SIGTERM' }).catch(() => {});
        setTimeout(() => { container.kill({ signal: 'SIGKILL' }).catch(() => {}); }, 5000).unref();
      };
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      const onAbort = (): void => stop('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      const res = (await container.wait()) as { StatusCode?: number };
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      await Promise.race([ended, new Promise((r) => setTimeout(r, 3000).unref())]);
      if (why === 'timeout') return { status: 'timeout', detail: `container still running after ${timeoutMs / 1000}s` };
      if (why === 'aborted') return { status: 'aborted', detail: 'interrupted' };
      if (!/"ev":"done"/.test(gotText)) return { status: 'error', detail: `the reproducer exited (code ${res.StatusCode}) without its done line` };
      return { status: 'ok', detail: '' };
    } finally {
      await container.remove({ force: true }).catch(() => {});
      this.live.delete(container);
    }
  }
}

/** The host's perf sysctls as every container sees them (read-only there). */
export function hostPerfSysctls(): { perfEventMlockKb: number; paranoid: number } {
  const read = (n: string): number => Number(readFileSync(`/proc/sys/kernel/${n}`, 'utf8').trim());
  return { perfEventMlockKb: read('perf_event_mlock_kb'), paranoid: read('perf_event_paranoid') };
}
