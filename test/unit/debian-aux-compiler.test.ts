// Which compiler builds lockstep_aux against a Debian headers tree, the pure
// parts: the host's gcc-N when installed, a Debian root's gcc-N when the
// headers name a newer gcc than any here (Debian 13's gcc-14 flags such as
// -fmin-function-alignment=16 that gcc 12 refuses), the host's gcc for an
// older one; the root's package list and apt's simulated install lines.

import t from 'tap';
import { compilerPlan, parseSimulatedInstalls, SYSROOT_SUITES, sysrootPackages } from '../../src/kernels/obtain/aux-module.ts';

const HOST = ['gcc-11', 'gcc-12', 'x86_64-linux-gnu-gcc-11', 'x86_64-linux-gnu-gcc-12'];

t.test('compilerPlan: host gcc-N, a Debian root for a newer gcc-N, the host gcc for an older one', (t) => {
  t.same(compilerPlan('gcc-12', HOST, ''), { where: 'host', cc: 'gcc-12' }, 'bookworm headers: the host has gcc-12');
  t.same(compilerPlan('gcc-14', HOST, ''), { where: 'sysroot', cc: 'gcc-14' }, 'trixie and trixie-backports headers: trixie\'s gcc-14');
  t.same(compilerPlan('gcc-16', HOST, ''), { where: 'sysroot', cc: 'gcc-16' }, 'sid headers');
  t.same(compilerPlan('gcc-10', HOST, ''), { where: 'host', cc: 'gcc' }, 'bullseye headers name gcc-10: the host gcc builds them');
  t.same(compilerPlan('gcc-14', [...HOST, 'gcc-14'], ''), { where: 'host', cc: 'gcc-14' }, 'a gcc-14 installed here is used');
  t.same(compilerPlan('gcc-14', ['x86_64-linux-gnu-gcc-14'], ''), { where: 'host', cc: 'gcc-14' });
  t.same(compilerPlan(null, HOST, ''), { where: 'host', cc: 'gcc' }, 'headers naming no compiler');
  t.same(compilerPlan('gcc-14', HOST, 'aarch64-linux-gnu-'), { where: 'host', cc: 'aarch64-linux-gnu-gcc' }, 'cross builds stay on the host');
  t.same(compilerPlan('gcc-12', ['aarch64-linux-gnu-gcc-12'], 'aarch64-linux-gnu-'), { where: 'host', cc: 'aarch64-linux-gnu-gcc-12' });
  t.same(compilerPlan('clang-19', HOST, ''), { where: 'host', cc: 'gcc' }, 'only gcc-N gets a root');
  t.end();
});

t.test('a root holds the compiler, make and what kbuild recipes call; the oldest suite first', (t) => {
  const p = sysrootPackages('gcc-14');
  t.equal(p[0], 'gcc-14');
  for (const want of ['make', 'dash', 'bash', 'coreutils', 'sed', 'grep', 'mawk', 'findutils', 'diffutils', 'libelf1t64']) t.ok(p.includes(want), want);
  t.same([...SYSROOT_SUITES], ['trixie', 'forky', 'sid']);
  t.end();
});

t.test("apt-get -s install: the Inst lines' packages and versions", (t) => {
  const out = [
    'NOTE: This is only a simulation!',
    'Inst gcc-14-base (14.2.0-19 Debian:13.2/stable [amd64])',
    'Inst libc6 (2.41-12 Debian:13.2/stable, Debian-Security:13/stable-security [amd64])',
    'Inst libelf1t64:amd64 (0.192-4 Debian:13.2/stable [amd64])',
    'Inst make [4.3-4.1] (4.4.1-2 Debian:13.2/stable [amd64])',
    'Conf libc6 (2.41-12 Debian:13.2/stable [amd64])',
  ].join('\n');
  t.same(parseSimulatedInstalls(out), [
    { package: 'gcc-14-base', version: '14.2.0-19' }, { package: 'libc6', version: '2.41-12' },
    { package: 'libelf1t64', version: '0.192-4' }, { package: 'make', version: '4.4.1-2' },
  ]);
  t.same(parseSimulatedInstalls('0 upgraded, 0 newly installed\n'), []);
  t.end();
});
