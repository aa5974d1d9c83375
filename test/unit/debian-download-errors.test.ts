// apt-get download's failures read as user errors (exit 2: the run stops
// with one line) or as the mirror's state (the kernel's cells fail as
// infrastructure, the run's other kernels go on). The stderr texts are the
// ones apt printed on 2026-12-07 for kernels the mirror's indexes list.

import t from 'tap';
import { aptDownloadError } from '../../src/kernels/obtain/debian.ts';
import { parseSpec } from '../../src/kernels/spec.ts';
import type { DebianImageSpec } from '../../src/kernels/types.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { ToolError } from '../../src/util/exec.ts';

const spec = (pkg: string, suite: string): DebianImageSpec =>
  parseSpec({ id: 'k', kind: 'debian-image', suite, package: pkg, version: '6.19.10', package_version: '6.19.10-1~bpo13+1', expect: 'auto' }, 'specs.json') as DebianImageSpec;
const apt = { label: "lockstep's trixie-backports lists", options: [] };
const err = (stderr: string) => new ToolError('apt-get download failed', '', stderr, false, 100);

t.test('the pool answers 404 for a file its index lists: not served, not the user\'s input', (t) => {
  const e = aptDownloadError(spec('linux-image-5.10.0-46-cloud-amd64-unsigned', 'bullseye-security'), 'linux-image-5.10.0-46-cloud-amd64-unsigned=5.10.262-1', apt,
    err('E: Failed to fetch http://deb.debian.org/debian-security/pool/updates/main/l/linux/linux-image-5.10.0-46-cloud-amd64-unsigned_5.10.262-1_amd64.deb  404  Not Found [IP: 203.0.113.80 80]'));
  t.notOk(e instanceof ConfigError, 'a plain Error: the kernel\'s cells fail, the run goes on');
  t.match(e.message, /lists linux-image-5\.10\.0-46-cloud-amd64-unsigned=5\.10\.262-1 but its pool answers 404 Not Found: not served/);
  t.end();
});

t.test('a companion package (the config in linux-base) gone from the index: the kernel cannot be had here', (t) => {
  const e = aptDownloadError(spec('linux-binary-6.19.10+deb13-cloud-amd64', 'trixie-backports'), 'linux-binary-6.19.10+deb13-cloud-amd64=6.19.10-1~bpo13+1', apt,
    err("E: Version '6.19.10-1~bpo13+1' for 'linux-base-6.19.10+deb13-cloud-amd64' was not found"));
  t.notOk(e instanceof ConfigError);
  t.match(e.message, /no longer lists linux-base-6\.19\.10\+deb13-cloud-amd64=6\.19\.10-1~bpo13\+1, which linux-binary-6\.19\.10/);
  t.end();
});

t.test('the named package or version missing, or no network: the user\'s to fix (exit 2)', (t) => {
  const s = spec('linux-binary-6.19.10+deb13-cloud-amd64', 'trixie-backports');
  const own = aptDownloadError(s, 'x', apt, err("E: Version '6.19.10-1~bpo13+1' for 'linux-binary-6.19.10+deb13-cloud-amd64' was not found"));
  t.ok(own instanceof ConfigError, 'the version of the package the spec names');
  t.ok(aptDownloadError(s, 'x', apt, err('E: Unable to locate package linux-binary-6.19.10+deb13-cloud-amd64')) instanceof ConfigError);
  // Debian 14's meta linux-image-<abi> is read as linux-binary-unsigned-<abi>: that package's version missing is the user's too
  const meta = spec('linux-image-7.3.4+deb13-cloud-amd64', 'trixie-backports');
  t.ok(aptDownloadError(meta, 'linux-binary-unsigned-7.3.4+deb13-cloud-amd64=7.3.4-9', apt,
    err("E: Version '7.3.4-9' for 'linux-binary-unsigned-7.3.4+deb13-cloud-amd64' was not found")) instanceof ConfigError, 'the image package a meta name was read as');
  t.ok(aptDownloadError(s, 'x', apt, err('E: Failed to fetch http://deb.debian.org/x.deb  Temporary failure resolving \'deb.debian.org\'')) instanceof ConfigError);
  t.end();
});
