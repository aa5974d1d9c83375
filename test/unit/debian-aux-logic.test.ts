// lockstep_aux for Debian images, the pure parts (src/kernels/obtain/aux-module.ts):
// the headers packages a kernel package needs (Depends fields as Debian ships
// them), the compiler its kbuild names, the first error of a failed build,
// the vermagic of a .ko, and the SKIP reasons (a build that failed, an insmod
// that failed on the guest's console). No I/O: runs without the lock.

import t from 'tap';
import { auxLoadFailure, auxLoadSkip, auxPmuSkip, configCompiler, firstBuildError, headersDeps, headersPackage, kbuildCompiler, moduleLoadBlocker, vermagicOf } from '../../src/kernels/obtain/aux-module.ts';
import { kernelPackage } from '../../src/kernels/obtain/deb-kernels.ts';

t.test('headers package of a kernel package, both layouts', async (t) => {
  t.equal(headersPackage(kernelPackage('linux-image-6.1.0-54-cloud-amd64-unsigned')!), 'linux-headers-6.1.0-54-cloud-amd64');
  t.equal(headersPackage(kernelPackage('linux-image-6.12.117+deb13-cloud-amd64-unsigned')!), 'linux-headers-6.12.117+deb13-cloud-amd64');
  t.equal(headersPackage(kernelPackage('linux-binary-unsigned-7.2.13+deb14-cloud-amd64')!), 'linux-headers-7.2.13+deb14-cloud-amd64');
});

t.test('the headers and kbuild packages of a Depends field, with their constraints', async (t) => {
  // bookworm linux-headers-6.1.0-54-cloud-amd64=6.1.190-1
  t.same(headersDeps('linux-headers-6.1.0-54-common (= 6.1.190-1), linux-kbuild-6.1 (>= 6.1.190-1), linux-compiler-gcc-12-x86'), [
    { package: 'linux-headers-6.1.0-54-common', constraint: { op: '=', version: '6.1.190-1' } },
    { package: 'linux-kbuild-6.1', constraint: { op: '>=', version: '6.1.190-1' } },
  ]);
  // trixie linux-headers-6.12.117+deb13-cloud-amd64=6.12.117-1: the image alternative is not a build need
  t.same(headersDeps('linux-base (>= 4.12~), linux-headers-6.12.117+deb13-common (= 6.12.117-1), linux-image-6.12.117+deb13-cloud-amd64 (= 6.12.117-1) | linux-image-6.12.117+deb13-cloud-amd64-unsigned (= 6.12.117-1), linux-kbuild-6.12.117+deb13, gcc-14'), [
    { package: 'linux-headers-6.12.117+deb13-common', constraint: { op: '=', version: '6.12.117-1' } },
    { package: 'linux-kbuild-6.12.117+deb13', constraint: null },
  ]);
  t.same(headersDeps(''), []);
});

t.test("kbuild's compiler, the kernel's compiler, what blocks an unsigned module", async (t) => {
  t.equal(kbuildCompiler('override ARCH = x86\nCCACHE = ccache\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-14\n'), 'gcc-14');
  t.equal(kbuildCompiler('override ARCH = x86\n'), null);
  t.equal(configCompiler('CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"\nCONFIG_CC_IS_GCC=y\n'), 'gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0');
  t.equal(moduleLoadBlocker('CONFIG_MODULES=y\nCONFIG_MODULE_SIG=y\n# CONFIG_MODULE_SIG_FORCE is not set\n'), null);
  t.match(moduleLoadBlocker('CONFIG_MODULES=y\nCONFIG_MODULE_SIG_FORCE=y\n'), /enforces module signatures \(CONFIG_MODULE_SIG_FORCE=y\)/);
  t.match(moduleLoadBlocker('# CONFIG_MODULES is not set\n'), /without CONFIG_MODULES/);
});

t.test("a failed build's reason: the compiler's first error, not make's trailer", async (t) => {
  const out = [
    "make: Entering directory '/x/linux-headers-6.12.117+deb13-cloud-amd64'",
    '  CC [M]  /x/auxpmu/lockstep_aux.o',
    "gcc: error: unrecognized command-line option \u2018-fmin-function-alignment=16\u2019; did you mean \u2018-flimit-function-alignment\u2019?",
    'make[2]: *** [/x/scripts/Makefile.build:234: /x/auxpmu/lockstep_aux.o] Error 1',
  ].join('\n');
  t.equal(firstBuildError(out), "gcc: error: unrecognized command-line option '-fmin-function-alignment=16'; did you mean '-flimit-function-alignment'?");
  t.equal(firstBuildError('/bin/sh: 1: x86_64-linux-gnu-gcc-14: not found\nmake[2]: *** [x] Error 127\n'), '/bin/sh: 1: x86_64-linux-gnu-gcc-14: not found');
  t.equal(firstBuildError(''), '(no output)');
  t.ok(firstBuildError(`x: error: ${'y'.repeat(400)}`).length <= 300);
});

t.test('vermagic of a .ko', async (t) => {
  const ko = Buffer.concat([Buffer.from('\x7fELF...\0license=GPL\0'), Buffer.from('vermagic=6.1.0-54-cloud-amd64 SMP preempt mod_unload modversions \0'), Buffer.from('name=lockstep_aux\0')]);
  t.equal(vermagicOf(ko), '6.1.0-54-cloud-amd64 SMP preempt mod_unload modversions ');
  t.equal(vermagicOf(Buffer.from('no magic here')), null);
});

t.test("SKIP reasons: the artifact's, and an insmod the guest's console shows failing", async (t) => {
  t.equal(auxPmuSkip({ skip: 'lockstep_aux did not build against linux-headers-x=1: gcc: error: y' }), 'lockstep_aux did not build against linux-headers-x=1: gcc: error: y');
  t.equal(auxPmuSkip({ module: 'lockstep_aux', headers: [], compiler: 'gcc', ko_sha256: 'ab' }), null);
  t.equal(auxPmuSkip(undefined), null, 'a kernel that needs no module (source builds have it built in)');

  // as measured: Debian 6.1.190's module sent to 6.1.192's guest (busybox insmod's line, modutils/insmod.c
  // "can't insert '%s': %s"; the kernel's own, twice; then init.sh's)
  const consoleText = [
    '[    2.301000] lockstep_aux: module verification failed: signature and/or required key missing - tainting kernel',
    '[    2.302000] lockstep_aux: disagrees about version of symbol module_layout',
    '[    2.311000] lockstep_aux: disagrees about version of symbol module_layout',
    "insmod: can't insert '/lib/modules/lockstep_aux.ko': invalid module format",
    'lockstep-init: insmod lockstep_aux failed',
    'lockstep-init: starting reproducer (results on /dev/ttyS1)',
  ].join('\n');
  t.equal(auxLoadFailure(consoleText), "lockstep_aux: disagrees about version of symbol module_layout | insmod: can't insert '/lib/modules/lockstep_aux.ko': invalid module format");
  t.equal(auxLoadFailure('[    2.4] lockstep_aux: loading out-of-tree module taints kernel.\nlockstep-init: starting reproducer\n'), null, 'a module that loaded');
  const guest = 'needs the lockstep_aux PMU (harness/auxpmu): /sys/bus/event_source/devices/lockstep_aux/type: ENOENT';
  const state = { module: 'lockstep_aux', headers: ['linux-headers-6.1.0-54-cloud-amd64=6.1.190-1'], compiler: 'gcc-12', ko_sha256: 'ab' };
  t.equal(auxLoadSkip(state, consoleText, guest),
    "needs the lockstep_aux PMU (harness/auxpmu): lockstep_aux (built against linux-headers-6.1.0-54-cloud-amd64=6.1.190-1) did not load in the guest: lockstep_aux: disagrees about version of symbol module_layout | insmod: can't insert '/lib/modules/lockstep_aux.ko': invalid module format; then /sys/bus/event_source/devices/lockstep_aux/type: ENOENT");
  t.equal(auxLoadSkip({ skip: 'x' }, consoleText, guest), null, 'no module was sent: the reason stays');
  t.equal(auxLoadSkip(state, 'lockstep-init: starting reproducer\n', guest), null, 'no insmod failure on the console');
});
