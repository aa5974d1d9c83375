import { resolve } from 'node:path';
import { type Command, kernelOptions, pick } from '../command.ts';

export const command: Command = {
  name: 'kernels build',
  args: 'ID..',
  summary: 'build "source" kernels (or verify them in the cache) without running anything',
  description:
    'Builds each named source kernel (default: every source spec) with its fragment and patches, one after the other. ' +
    'Variants of one base share one object tree, so after the first build each one recompiles only what its patches touch. ' +
    'Progress goes to stderr with elapsed times; the artifact (bzImage, .config, build.log tail, meta.json, reproduce.sh) lands in the cache.',
  options: {
    ...kernelOptions,
    cache: { type: 'string', arg: 'DIR', help: 'cache dir' },
    state: { type: 'boolean', help: 'only print each kernel\'s state (cached, missing, building), build nothing' },
  },
  examples: ['lockstep kernels build fix-4 fix-5', 'lockstep kernels build --state'],
  async run(v, pos) {
    const { loadKernels } = await import('../common.ts');
    const { defaultCacheDir, ensureKernel } = await import('../../kernels/artifact.ts');
    const { sourceState } = await import('../../kernels/obtain/source/build.ts');
    const all = await loadKernels(v);
    const specs = pos.length ? pick(all, pos, 'kernel', 'ID') : all.filter((s) => s.kind === 'source' && !s.aux_only);
    const cacheDir = v.cache ? resolve(String(v.cache)) : defaultCacheDir();
    let failed = 0;
    for (const s of specs) {
      if (s.kind !== 'source') {
        console.log(`${s.id}: kind ${s.kind}, nothing to build (use \`lockstep kernels fetch\`)`);
        continue;
      }
      if (v.state) {
        const st = await sourceState(s, cacheDir);
        console.log(`${s.id.padEnd(16)} ${st.state.padEnd(9)} ${st.key.slice(0, 12)} ${st.entry}${st.detail ? ` (${st.detail})` : ''}`);
        continue;
      }
      const t0 = Date.now();
      try {
        const a = await ensureKernel(s, { cacheDir, log: (m) => console.error(`[${s.id}] ${m}`) });
        console.log(`${s.id}: ${a.cached ? 'cached' : `built in ${((Date.now() - t0) / 1000).toFixed(1)}s`} ${a.release ?? ''} ${a.vmlinuz} sha256 ${a.sha256}`);
      } catch (e) {
        if (!(e instanceof Error) || e.name !== 'BuildError') throw e;
        failed++;
        console.log(`${s.id}: BUILD_FAIL ${e.message}`);
      }
    }
    return failed ? 1 : 0;
  },
};
