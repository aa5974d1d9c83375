// One-argument kernels: `lockstep run --kernel debian:PKG` boots a Debian
// image under QEMU without a spec file, with --append reaching the guest's
// command line; the argument parser, the bzImage header reader and
// `lockstep --version`. The boot is heavy: run this file under the lock.
// Tier: unit (its subtests moved unchanged from test/kernel-arg.test.ts; the rest is in test/integration/kernel-arg.test.ts).

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bzImageVersion, parseKernelArg, resolveKernelArg } from '../../src/cli/kernel-arg.ts';
import { runBatch } from '../lib/cli-batch.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// TCG, as the other VM tests: a KVM probe here can pass while real guests hang in early boot.
const dir = mkdtempSync(join(tmpdir(), 'lockstep-karg-'));
writeFileSync(join(dir, 'notimage'), 'hello');
/** Every command line of the file in one process (test/lib/cli-batch.ts: main() in-process, cwd ROOT), before the subtests. */
const ARGVS = [['run', '--kernel', join(dir, 'notimage')], ['--version']];
const RUNS = await runBatch(ARGVS, { cwd: ROOT, env: { ...process.env, LOCKSTEP_ACCEL: 'tcg' } });
const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const r = RUNS[ARGVS.findIndex((a) => a.join('\0') === args.join('\0'))]!;
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
};
const PKG = 'linux-image-6.1.0-54-cloud-amd64-unsigned';

t.test('parsing --kernel values', (t) => {
  t.strictSame(parseKernelArg(`debian:${PKG}=6.1.190-1@bookworm`), { kind: 'debian', package: PKG, version: '6.1.190-1', suite: 'bookworm' });
  t.strictSame(parseKernelArg(`debian:${PKG}`), { kind: 'debian', package: PKG, version: null, suite: null });
  const sha = 'a'.repeat(64);
  t.strictSame(parseKernelArg(`https://example.org/k/bzImage#sha256=${sha}&version=6.1.2`), { kind: 'url', url: 'https://example.org/k/bzImage', sha256: sha, version: '6.1.2' });
  t.strictSame(parseKernelArg('/boot/vmlinuz-x'), { kind: 'path', path: '/boot/vmlinuz-x' });
  t.throws(() => parseKernelArg('debian:linux-headers-amd64'), /is not a linux-image-\* or linux-binary-\* package/);
  t.throws(() => parseKernelArg('https://example.org/bzImage'), /needs #sha256=/);
  t.throws(() => parseKernelArg('debian:linux-image-x;rm'), /not debian:PACKAGE/);
  t.throws(() => resolveKernelArg(`https://example.org/k/bzImage#sha256=${sha}`), /needs its version/);
  t.end();
});

t.test('a bzImage path: the version comes from its setup header', (t) => {
  const img = Buffer.alloc(0x400);
  img.write('HdrS', 0x202, 'latin1');
  img.writeUInt16LE(0x300 - 0x200, 0x20e);
  img.write('6.1.0-54-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.190-1 (2026-01-01)\0', 0x300, 'latin1');
  const f = join(dir, 'bzImage');
  writeFileSync(f, img);
  t.match(bzImageVersion(f), /^6\.1\.0-54-cloud-amd64 /);
  const s = resolveKernelArg(f);
  t.equal(s.kind, 'image');
  t.equal(s.id, 'img-6.1.0-54-cloud-amd64');
  t.equal((s as { version: string }).version, '6.1.190', 'the Debian release, not the ABI name');
  const r = cli('run', '--kernel', join(dir, 'notimage'));
  t.equal(r.status, 2);
  t.match(r.stderr, /--kernel: .*is not a readable bzImage.*Fix:/);
  t.end();
});

t.test('lockstep --version', (t) => {
  const r = cli('--version');
  t.equal(r.status, 0);
  t.match(r.stdout, /^lockstep \d+\.\d+\.\d+ /);
  t.end();
});
