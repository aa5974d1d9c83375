// The Debian kernel names a user types, the pure parts: `--kernel
// debian:PKG[=VERSION][@SUITE]` with linux-image-*, linux-image-*-unsigned and
// linux-binary-* names in any suite (backports and security pockets
// included), Debian 14's linux-image-<abi> meta package read as the
// linux-binary-unsigned-<abi> that holds the kernel, and the suite names
// the spec parser takes. No apt, no network.

import t from 'tap';
import { parseKernelArg, resolveKernelArg } from '../../src/cli/kernel-arg.ts';
import { imagePackageOf, isSuiteName } from '../../src/kernels/obtain/deb-kernels.ts';

const B73 = 'linux-binary-unsigned-7.3.4+deb13-cloud-amd64';

t.test('--kernel takes linux-image-*, -unsigned and linux-binary-* names, in the backports and security suites', (t) => {
  for (const [arg, pkg, suite] of [
    [`debian:${B73}@trixie-backports`, B73, 'trixie-backports'],
    ['debian:linux-binary-7.3.4+deb13-cloud-amd64@trixie-backports', 'linux-binary-7.3.4+deb13-cloud-amd64', 'trixie-backports'],
    ['debian:linux-image-7.2.13+deb14-cloud-amd64@sid', 'linux-image-7.2.13+deb14-cloud-amd64', 'sid'],
    ['debian:linux-image-6.12.118+deb13-cloud-amd64-unsigned@trixie-security', 'linux-image-6.12.118+deb13-cloud-amd64-unsigned', 'trixie-security'],
    ['debian:linux-image-6.12.117+deb12-cloud-amd64-unsigned@bookworm-security', 'linux-image-6.12.117+deb12-cloud-amd64-unsigned', 'bookworm-security'],
  ] as const) {
    t.strictSame(parseKernelArg(arg), { kind: 'debian', package: pkg, version: null, suite }, arg);
    t.match(resolveKernelArg(arg), { kind: 'debian-image', package: pkg, suite, version: 'latest', expect: { mode: 'auto' } }, `${arg}: a spec resolved at run start`);
  }
  t.match(resolveKernelArg(`debian:${B73}=7.3.4-1~bpo13+1@trixie-backports`), { id: 'deb-7.3.4-deb13-cloud-amd64-trixie-backports', package: B73, version: '7.3.4', package_version: '7.3.4-1~bpo13+1' });
  t.throws(() => parseKernelArg('debian:linux-headers-7.3.4+deb13-cloud-amd64@trixie-backports'), /is not a linux-image-\* or linux-binary-\* package/);
  t.throws(() => resolveKernelArg(`debian:${B73}@trixie_backports`), /not debian:PACKAGE/);
  t.throws(() => resolveKernelArg(`debian:${B73}@trixie-proposed`), /suite: "trixie-proposed" is not a Debian suite name/);
  t.end();
});

t.test("Debian 14's linux-image-<abi> is a meta package: its kernel is linux-binary-unsigned-<abi> where the suite has it", (t) => {
  const sid = new Set(['linux-binary-unsigned-7.2.13+deb14-cloud-amd64', 'linux-binary-7.2.13+deb14-cloud-amd64']);
  t.equal(imagePackageOf('linux-image-7.2.13+deb14-cloud-amd64', sid), 'linux-binary-unsigned-7.2.13+deb14-cloud-amd64');
  t.equal(imagePackageOf('linux-image-7.2.13+deb14-cloud-amd64', new Set(['linux-binary-7.2.13+deb14-cloud-amd64'])), 'linux-binary-7.2.13+deb14-cloud-amd64', 'the signed binary when no unsigned one');
  t.equal(imagePackageOf('linux-image-6.1.0-54-cloud-amd64', new Set()), 'linux-image-6.1.0-54-cloud-amd64', 'up to Debian 13 linux-image-<abi> holds /boot/vmlinuz itself');
  t.equal(imagePackageOf('linux-image-6.1.0-54-cloud-amd64-unsigned', sid), 'linux-image-6.1.0-54-cloud-amd64-unsigned');
  t.equal(imagePackageOf('linux-binary-7.2.13+deb14-cloud-amd64', sid), 'linux-binary-7.2.13+deb14-cloud-amd64', 'a linux-binary-* name is itself');
  t.equal(imagePackageOf('linux-image-cloud-amd64', sid), 'linux-image-cloud-amd64', 'the flavour meta package is no ABI');
  t.end();
});

t.test('suite names: any codename with an optional pocket', (t) => {
  for (const s of ['trixie', 'trixie-security', 'trixie-backports', 'bookworm-security', 'forky-updates', 'sid', 'experimental', 'duke']) t.ok(isSuiteName(s), s);
  for (const s of ['trixie-proposed-updates', 'trixie/updates', 'TRIXIE', '', '-security', 'a b']) t.notOk(isSuiteName(s), JSON.stringify(s));
  t.end();
});
