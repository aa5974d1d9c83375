import { release as osRelease } from 'node:os';
import { resolve } from 'node:path';
import { type Command, kernelOptions } from '../command.ts';

export const command: Command = {
  name: 'kernels list',
  summary: 'list the kernel specs: kind, version, expected logic, cache state',
  description: 'Shows every built-in kernel spec (kernels/*.json) and those from --kernel-spec files.',
  options: { ...kernelOptions, json: { type: 'boolean', help: 'print JSON' }, cache: { type: 'string', arg: 'DIR', help: 'cache dir to report state from' } },
  async run(v) {
    const { loadKernels } = await import('../common.ts');
    const { resolveExpect } = await import('../../kernels/expect.ts');
    const { logicLabel } = await import('../../model/index.ts');
    const { defaultCacheDir } = await import('../../kernels/artifact.ts');
    const { sourceState } = await import('../../kernels/obtain/source/build.ts');
    const specs = await loadKernels(v);
    const cacheDir = v.cache ? resolve(String(v.cache)) : defaultCacheDir();
    const rows = await Promise.all(specs.map(async (s) => {
      const version = s.kind === 'host' ? osRelease() : ('version' in s && s.version) || '?';
      // "latest" is resolved when a run fetches it: nothing to derive yet
      const latest = s.kind === 'debian-image' && s.version === 'latest';
      const exp = latest ? { logic: null, reason: 'version "latest": resolved when the run starts' } : resolveExpect(s, String(version));
      // source kernels: cached / missing / building (aux-only ones are never built)
      const state = s.kind !== 'source' ? '' : s.aux_only ? 'aux-only' : await sourceState(s, cacheDir).then((x) => x.state, (e: Error) => `error: ${e.message.split('\n')[0]}`);
      const shown = latest ? `latest${s.series ? ` ${s.series}` : ''}@${s.suite ?? 'apt'}` : version;
      return { id: s.id, kind: s.kind, version: shown, expect: exp.logic ? logicLabel(exp.logic) : latest ? 'at run' : 'unknown', why: exp.reason, state, description: s.description ?? '' };
    }));
    if (v.json) console.log(JSON.stringify(rows, null, 1));
    else {
      console.log(`${'id'.padEnd(22)} ${'kind'.padEnd(13)} ${'version'.padEnd(18)} expected   ${'state'.padEnd(9)} description`);
      for (const r of rows) console.log(`${r.id.padEnd(22)} ${r.kind.padEnd(13)} ${String(r.version).padEnd(18)} ${r.expect.padEnd(10)} ${r.state.padEnd(9)} ${r.description}`);
    }
    return 0;
  },
};
