// Debian suites from the mirror (network: deb.debian.org; no boot): the
// backports and security pockets answer through lockstep's own apt lists, a
// release codename's lists include its -security suite (a trixie machine's
// kernels), Debian 14's linux-image-<abi> meta name maps to the package with
// the kernel, and a suite the mirror does not serve is refused naming those
// it does. Lists go to a fresh cache dir.

import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answeringSuites, suiteSource } from '../../src/kernels/obtain/apt-suite.ts';
import { aptVersions, kernelPackages } from '../../src/kernels/obtain/debian.ts';
import { imagePackageOf, kernelPackage, newest } from '../../src/kernels/obtain/deb-kernels.ts';
import { ConfigError } from '../../src/util/errors.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'lockstep-suites-'));
t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
const o = { cacheDir, log: () => {} };

t.test('the mirror answers for the pockets lockstep probes', async (t) => {
  const s = await answeringSuites(o);
  for (const want of ['trixie', 'trixie-security', 'trixie-backports', 'bookworm-security', 'sid']) t.ok(s.includes(want), want);
  t.notOk(s.includes('buster'), 'buster left the mirror');
});

t.test('trixie-backports: cloud kernels of Debian 14 packaging; linux-image-<abi> there names its linux-binary-unsigned-<abi>', async (t) => {
  const apt = await suiteSource('trixie-backports', o);
  const rows = await kernelPackages(apt);
  t.ok(rows.length > 0, `${rows.length} cloud-amd64 kernels`);
  t.ok(rows.every((r) => r.suite === 'trixie-backports'), 'each from trixie-backports');
  const top = newest(rows)!;
  const abi = kernelPackage(top.package)!.abi;
  const known = new Set((await aptVersions([`linux-binary-unsigned-${abi}`, `linux-binary-${abi}`], apt)).map((r) => r.package));
  if (top.package.startsWith('linux-binary-')) t.equal(imagePackageOf(`linux-image-${abi}`, known), `linux-binary-unsigned-${abi}`);
  else t.equal(imagePackageOf(`linux-image-${abi}`, known), `linux-image-${abi}`, 'a Debian 13 layout: linux-image-<abi> holds the kernel');
});

t.test("trixie's lists hold trixie-security: each row says its suite, the newest is what a trixie machine installs", async (t) => {
  const rows = await kernelPackages(await suiteSource('trixie', o));
  const suites = new Set(rows.map((r) => r.suite));
  t.ok(suites.has('trixie') && suites.has('trixie-security'), [...suites].join(' '));
  const top = newest(rows, '6.12')!;
  const inSecurity = rows.filter((r) => r.suite === 'trixie-security');
  t.ok(top.suite === 'trixie-security' || !inSecurity.some((r) => newest([r, top]) === r && r !== top), `newest ${top.package}=${top.version} from ${top.suite}`);
});

t.test('a suite the mirror does not serve: one ConfigError naming the suites that answer', async (t) => {
  const e = await suiteSource('woody', o, { file: 'k.json', field: 'suite' }).catch((x: unknown) => x);
  t.ok(e instanceof ConfigError, String(e));
  t.match((e as Error).message, /^k\.json: suite: the Debian mirror does not serve suite "woody" .*it serves .*trixie-backports.*trixie-security/);
  t.equal((e as Error).message.split('\n').length, 1, 'one line');
});
