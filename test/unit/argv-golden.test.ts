// Golden files for the command lines lockstep builds: QEMU's argv per guest
// arch (x86_64 and arm64, TCG and KVM) and vng's argv, compared word for word
// with test/unit/golden/*.json. A change to a command line shows up as a diff
// of the golden file in review. To accept an intended change, regenerate:
//   UPDATE_GOLDEN=1 npx tap test/unit/argv-golden.test.ts
// and commit the files with the change that caused them.

import t, { type Test } from 'tap';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { qemuArgs, type BootRequest } from '../../src/runner/qemu.ts';
import { vngArgs } from '../../src/runner/virtme.ts';

const GOLDEN = join(import.meta.dirname, 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

/** Compare `argv` with golden/<name>.json (one argument an array element), or write it under UPDATE_GOLDEN=1. */
function golden(t: Test, name: string, argv: string[]): void {
  const file = join(GOLDEN, `${name}.json`);
  const text = `${JSON.stringify(argv, null, 2)}\n`;
  if (update) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, text);
    t.pass(`wrote ${name}.json`);
    return;
  }
  let want: unknown;
  try {
    want = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    t.fail(`golden file ${name}.json unreadable (${(e as Error).message}); regenerate with UPDATE_GOLDEN=1`);
    return;
  }
  t.strictSame(argv, want, `argv equals golden/${name}.json (UPDATE_GOLDEN=1 regenerates it)`);
}

const boot: BootRequest = { vmlinuz: '/cache/k/vmlinuz', initrd: '/w/initrd', cpus: 4, memMb: 1024, accel: 'tcg', timeoutMs: 60_000, workDir: '/w' };

t.test('QEMU argv, x86_64: TCG and KVM, with --append', (t) => {
  golden(t, 'qemu-x86_64-tcg', qemuArgs(boot, '/w/results.sock'));
  golden(t, 'qemu-x86_64-kvm', qemuArgs({ ...boot, accel: 'kvm', extraCmdline: 'loglevel=7 nokaslr' }, '/w/results.sock'));
  t.end();
});

t.test('QEMU argv, arm64: virt with GICv3 under TCG', (t) => {
  golden(t, 'qemu-arm64-tcg', qemuArgs({ ...boot, arch: 'arm64', vmlinuz: '/cache/k/Image', cpus: 36 }, '/w/results.sock'));
  t.end();
});

t.test('vng argv: the reproducer quoted for the guest shell, with and without --append', (t) => {
  golden(t, 'vng', vngArgs({ kimg: '/k/boot/vmlinuz-6.1.0-56-amd64', cpus: 3, memMb: 1024, shareDir: "/tmp/it's", repro: '/r/lockstep-repro', opTimeoutS: 60 }));
  golden(t, 'vng-append', vngArgs({ kimg: '/k/tree/arch/x86/boot/bzImage', cpus: 2, memMb: 2048, shareDir: '/s', repro: '/r/lockstep-repro', opTimeoutS: 5, extraCmdline: 'loglevel=7 nokaslr' }));
  t.end();
});
