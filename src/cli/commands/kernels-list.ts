import { release as osRelease } from 'node:os';
import { resolveExpect } from '../../kernels/expect.ts';
import { logicLabel } from '../../model/index.ts';
import { type Command, kernelOptions, loadKernels } from '../common.ts';

export const command: Command = {
  name: 'kernels list',
  summary: 'list the kernel specs: kind, version, expected logic, cache state',
  description: 'Shows every built-in kernel spec (kernels/*.json) and those from --kernel-spec files.',
  options: { ...kernelOptions, json: { type: 'boolean', help: 'print JSON' }, cache: { type: 'string', arg: 'DIR', help: 'cache dir to report state from' } },
  async run(v) {
    const specs = await loadKernels(v);
    const rows = specs.map((s) => {
      const version = s.kind === 'host' ? osRelease() : ('version' in s && s.version) || '?';
      const exp = resolveExpect(s, String(version));
      return { id: s.id, kind: s.kind, version, expect: exp.logic ? logicLabel(exp.logic) : 'unknown', why: exp.reason, description: s.description ?? '' };
    });
    if (v.json) console.log(JSON.stringify(rows, null, 1));
    else {
      console.log(`${'id'.padEnd(22)} ${'kind'.padEnd(13)} ${'version'.padEnd(18)} expected   description`);
      for (const r of rows) console.log(`${r.id.padEnd(22)} ${r.kind.padEnd(13)} ${String(r.version).padEnd(18)} ${r.expect.padEnd(10)} ${r.description}`);
    }
    return 0;
  },
};
