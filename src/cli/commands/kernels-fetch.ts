import { resolve } from 'node:path';
import { type Command, kernelOptions, pick } from '../command.ts';

export const command: Command = {
  name: 'kernels fetch',
  args: 'ID..',
  summary: 'fetch (or verify in the cache) kernel artifacts without running anything',
  description: 'Downloads Debian kernel packages with apt-get download, extracts vmlinuz, checks hashes.',
  options: { ...kernelOptions, cache: { type: 'string', arg: 'DIR', help: 'cache dir' } },
  async run(v, pos) {
    const { loadKernels } = await import('../common.ts');
    const { defaultCacheDir, ensureKernel } = await import('../../kernels/artifact.ts');
    const specs = pick(await loadKernels(v), pos.length ? pos : undefined, 'kernel', 'ID');
    for (const s of specs) {
      const a = await ensureKernel(s, { cacheDir: v.cache ? resolve(String(v.cache)) : defaultCacheDir(), log: (m) => console.error(`[${s.id}] ${m}`) });
      console.log(`${s.id}: ${a.vmlinuz ?? '(host kernel)'} ${a.cached ? 'cached' : 'fetched'} ${a.sha256 ?? ''}`);
    }
    return 0;
  },
};
