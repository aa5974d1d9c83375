// The Docker engine: connect, check it answers, and say how to start it
// when it does not. Everything goes through dockerode (the engine's HTTP API
// on its Unix socket); no `docker` CLI, no shell.

import Docker from 'dockerode';
import { MissingDependencyError } from '../util/errors.ts';

/** Where dockerode connects: DOCKER_HOST when set, else the default socket. */
export function engineEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST && env.DOCKER_HOST.trim() !== '' ? env.DOCKER_HOST : 'unix:///var/run/docker.sock';
}

const START_HINT =
  'start the Docker engine: as root `dockerd >/var/log/dockerd.log 2>&1 &` (Debian package docker.io) ' +
  'or `systemctl start docker`, wait for /var/run/docker.sock, then retry; ' +
  'or leave the host-container kernel out (--kernels host,...)';

/** Turn a connection error into what is wrong and how to fix it (pure, for tests). */
export function engineProblem(err: unknown, endpoint: string): { what: string; fix: string } {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  const msg = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ENOENT':
      return { what: `a running Docker engine (no socket at ${endpoint}: dockerd is not running)`, fix: START_HINT };
    case 'ECONNREFUSED':
      return { what: `a running Docker engine (${endpoint} refuses connections: dockerd has stopped)`, fix: START_HINT };
    case 'EACCES':
    case 'EPERM':
      return { what: `access to the Docker engine (${endpoint}: permission denied)`, fix: 'run lockstep as root (the reproducer needs root anyway), or add the user to the docker group' };
    case 'ETIMEDOUT':
    case 'timeout':
      return { what: `an answering Docker engine (${endpoint} did not answer within 10 s)`, fix: `check dockerd (tail /var/log/dockerd.log); ${START_HINT}` };
    default:
      return { what: `a working Docker engine (${endpoint}: ${msg})`, fix: START_HINT };
  }
}

export interface Engine {
  docker: Docker;
  endpoint: string;
  /** the engine's version, e.g. "20.10.24+dfsg1" */
  version: string;
  apiVersion: string;
}

/** Connect and check the engine answers; MissingDependencyError (exit 2) with the fix when it does not. */
export async function connectEngine(env: NodeJS.ProcessEnv = process.env): Promise<Engine> {
  const endpoint = engineEndpoint(env);
  // A unix:// endpoint is passed explicitly (so callers and tests can choose
  // one); tcp:// and friends are left to dockerode's own DOCKER_HOST parsing.
  const docker = endpoint.startsWith('unix://')
    ? new Docker({ socketPath: endpoint.slice('unix://'.length) || '/var/run/docker.sock', timeout: 10_000 })
    : new Docker({ timeout: 10_000 });
  try {
    await docker.ping();
    const v = (await docker.version()) as { Version?: string; ApiVersion?: string };
    return { docker, endpoint, version: v.Version ?? '?', apiVersion: v.ApiVersion ?? '?' };
  } catch (e) {
    const p = engineProblem(e, endpoint);
    throw new MissingDependencyError(p.what, p.fix);
  }
}
