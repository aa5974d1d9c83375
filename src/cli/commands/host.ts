import { existsSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import type { Command } from '../command.ts';

export const command: Command = {
  name: 'host',
  summary: 'what this machine offers: host kernel, CPUs, KVM, QEMU, busybox, reproducer',
  description: 'A quick check of the environment lockstep needs; exit 2 naming what is missing.',
  options: {},
  async run() {
    const { hostOnlineCpus } = await import('../../runner/host.ts');
    const { kvmUsable, qemuVersion } = await import('../../runner/qemu.ts');
    const { reproducerBinary, BUSYBOX } = await import('../../image/initramfs.ts');
    console.log(`host kernel ${osRelease()}, ${hostOnlineCpus()} online CPUs`);
    const k = await kvmUsable();
    console.log(`accelerator: ${k.ok ? 'kvm' : 'tcg'} (${k.why})`);
    console.log(`qemu: ${await qemuVersion()}`);
    await reproducerBinary();
    console.log(`reproducer: ok; busybox: ${existsSync(BUSYBOX) ? BUSYBOX : 'MISSING (apt-get install busybox-static)'}`);
    return 0;
  },
};
