// The virtme runtime (src/runner/virtme.ts) against real vng boots: the same
// Debian kernel booted by lockstep's own QEMU runtime and through virtme-ng
// (one boot each), three discriminating scenarios, must give the same verdicts, EPERM points and VmPin series.
// Plus the pure parts: vng's command line, which kernels vng can boot, and
// the fragment a source kernel gets for it.
// Tier: unit (its subtests moved unchanged from test/virtme.test.ts; the rest is in test/integration/virtme.test.ts).

import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { treeOfImage, VNG_FRAGMENT, virtmeSourceSpec, vngBootReason } from '../../src/kernels/obtain/virtme-root.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import type { SourceSpec } from '../../src/kernels/types.ts';
import { vngArgs } from '../../src/runner/virtme.ts';
import { ConfigError } from '../../src/util/errors.ts';

const exec = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Pure parts

t.test('vng command line: TCG, the shared dir read-write, --append, the reproducer quoted for the guest shell', (t) => {
  const a = vngArgs({ kimg: '/k/boot/vmlinuz-6.1.0-56-amd64', cpus: 3, memMb: 1024, shareDir: "/tmp/it's", repro: '/r/lockstep-repro', opTimeoutS: 60 });
  t.strictSame(a.slice(0, 10), ['--run', '/k/boot/vmlinuz-6.1.0-56-amd64', '--disable-kvm', '--verbose', '--cpus', '3', '--memory', '1024M', '--rwdir', "/tmp/it's"]);
  const exec = a[a.indexOf('--exec') + 1]!;
  t.equal(exec, `'env' 'LOCKSTEP_GUEST=1' '/r/lockstep-repro' '--script' '/tmp/it'\\''s/script.ops' '--out' '/tmp/it'\\''s/results.jsonl' '--op-timeout' '60' '--allow-uid-0' 2>&1`,
    'the guest command\'s stderr joins its stdout (vng\'s guest stderr port would write over the console)');
  t.equal(a[a.indexOf('--append') + 1], 'no_timer_check');
  const b = vngArgs({ kimg: '/k', cpus: 1, memMb: 1024, shareDir: '/s', repro: '/r', opTimeoutS: 5, extraCmdline: 'loglevel=7 nokaslr' });
  t.equal(b[b.indexOf('--append') + 1], 'no_timer_check loglevel=7 nokaslr', 'run --append: one --append, vng joins it into the command line');
  t.equal(b.filter((w) => w === '--append').length, 1);
  t.end();
});

t.test('which kernels vng can boot: 9p and virtio, built in or as modules beside a Debian image', (t) => {
  const full = 'CONFIG_VIRTIO_PCI=y\nCONFIG_NET_9P=y\nCONFIG_NET_9P_VIRTIO=y\nCONFIG_9P_FS=y\nCONFIG_OVERLAY_FS=y\nCONFIG_VIRTIO_CONSOLE=y\n';
  t.equal(vngBootReason(full, false), null);
  const mods = full.replace(/=y/g, '=m');
  t.equal(vngBootReason(mods, true), null, 'modules count for a Debian image');
  t.match(vngBootReason(mods, false), /lacks CONFIG_VIRTIO_PCI, CONFIG_NET_9P, .* \(built in\)/, 'not for a build without its modules');
  // a Debian cloud kernel: virtio and overlayfs as modules, no 9p at all
  const cloud = 'CONFIG_VIRTIO_PCI=y\n# CONFIG_NET_9P is not set\nCONFIG_OVERLAY_FS=m\nCONFIG_VIRTIO_CONSOLE=m\n';
  t.match(vngBootReason(cloud, true), /^vng mounts the host's root over virtio-9p, and this kernel lacks CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS;/);
  t.end();
});

t.test('a source kernel for vng: its fragment plus the 9p/virtio options it does not set', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-vngfrag-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'f.config'), 'CONFIG_NET=y\nCONFIG_TMPFS=y\n# CONFIG_9P_FS is not set\n');
  const spec = { id: 'k', kind: 'source', version: '6.1.192', config: join(dir, 'f.config') } as unknown as SourceSpec;
  const a = await virtmeSourceSpec(spec, dir);
  const b = await virtmeSourceSpec(spec, dir);
  t.equal(a.config, b.config, 'named by content: the same fragment, the same file');
  const text = await readFile(a.config, 'utf8');
  t.ok(text.startsWith('CONFIG_NET=y\nCONFIG_TMPFS=y\n# CONFIG_9P_FS is not set\n'), 'the fragment first, unchanged');
  for (const o of ['CONFIG_NET=', 'CONFIG_TMPFS=', 'CONFIG_9P_FS']) t.equal(text.split(o).length - 1, 1, `${o} set once (the fragment's value kept)`);
  t.match(text, /^CONFIG_NET_9P_VIRTIO=y$/m);
  const added = text.split('\n').slice(4).filter(Boolean);
  t.strictSame(added, VNG_FRAGMENT.filter((l) => !/^CONFIG_(NET|TMPFS|9P_FS)=/.test(l)), 'after a comment line: the options the fragment did not set, in order');
});

t.test('spec "runtime": "virtme" on VM kinds only', (t) => {
  const s = parseSpec({ id: 'a', kind: 'image', version: '6.1.0', path: '/x/bzImage', runtime: 'virtme' }, 'k.json');
  t.equal(s.runtime, 'virtme');
  t.equal(parseSpec({ id: 'a', kind: 'image', version: '6.1.0', path: '/x/bzImage', runtime: 'qemu' }, 'k.json').runtime ?? 'qemu', 'qemu', 'qemu (the default) may be written');
  t.throws(() => parseSpec({ id: 'a', kind: 'image', version: '6.1.0', path: '/x/bzImage', runtime: 'vng' }, 'k.json'), ConfigError);
  t.throws(() => parseSpec({ id: 'h', kind: 'host', runtime: 'virtme' }, 'k.json'), /runtime.*unknown runtime "virtme"/);
  t.end();
});

t.test('vng missing: lockstep run exits 2 with the command that installs it, before anything is fetched', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-novng-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'k.json'), JSON.stringify({ id: 'img', kind: 'image', version: '6.1.0', path: join(dir, 'no-bzImage'), runtime: 'virtme' }));
  const r = await exec(process.execPath, [join(ROOT, 'bin/lockstep.mjs'), 'run', '--kernel-spec', join(dir, 'k.json'), '--no-builtin-kernels', '--scenarios', 'baseline', '--out', join(dir, 'out')],
    { env: { ...process.env, LOCKSTEP_VNG: join(dir, 'no-vng') } }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
  t.equal(r.code, 2);
  t.match(r.stderr, /virtme-ng \(.*no-vng\) is missing\. Fix: apt-get install python3-argcomplete .* udev && bash \.ci\/setup\.sh \(as root: downloads virtme-ng from Debian trixie/);
});

// ---------------------------------------------------------------------------
// Real boots: the same Debian generic kernel (the cloud flavour has no 9p) through both runtimes

// ---------------------------------------------------------------------------
// Faults through vng, via the real CLI (`run --runtime virtme`) on the Debian
// generic image: a panic, a hang past the boot timeout, an interrupt. One
// boot each; what test/faults*.test.ts checks for lockstep's own QEMU boot.

// ---------------------------------------------------------------------------
// `lockstep run --runtime virtme --kernel /path/to/linux`: a built tree

t.test('treeOfImage: the tree a bzImage lies in, as vng recognises one', (t) => {
  t.equal(treeOfImage('/src/linux/arch/x86/boot/bzImage'), '/src/linux');
  t.equal(treeOfImage('/cache/kernels/source/abc/bzImage'), null, 'a cache entry is no tree');
  t.equal(treeOfImage(null), null);
  t.end();
});
