// The accelerator choice on a machine whose KVM may start a paused VM and
// still hang every guest (nested hosts: stuck in the kernel decompressor).
// Real QEMU, real Debian kernel, two runs without LOCKSTEP_ACCEL: what the
// first run learns about KVM, the second must not pay for again.

import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEBIAN_ID, DEBIAN_SPEC, lockstep, OK_SCENARIO, readResults, runArgs, scenarioFile, specFile, tmp } from '../lib/faults-util.ts';

const dir = tmp('accel');
const spec = specFile(dir, 'k.json', DEBIAN_SPEC);
const scen = scenarioFile(dir, OK_SCENARIO);
const verdict = join(dir, 'kvm-verdict.json');
// no LOCKSTEP_ACCEL: the run decides; its memory goes to a private file
const env = { LOCKSTEP_ACCEL: '', LOCKSTEP_KVM_VERDICT: verdict };

interface HostInfo { accel: string; accel_why: string }
const hostOf = (out: string) => (readResults(out) as unknown as { host: HostInfo }).host;
const cellOf = (out: string) => readResults(out).cells.find((c) => c.kernel === DEBIAN_ID)! as { verdict: string; accel?: string; accel_why?: string };

t.test('a KVM that hangs is learnt once; the next run starts on TCG and says why', async (t) => {
  const out1 = join(dir, 'run1');
  const r1 = await lockstep(runArgs({ specs: [spec], scenarios: [scen], out: out1 }), { env });
  t.equal(r1.code, 0, r1.stderr);
  const c1 = cellOf(out1);
  t.equal(c1.verdict, 'MATCH');
  const kvmWorked = c1.accel === 'kvm';
  const fellBack = /kvm boot gave no result/.test(String(c1.accel_why));
  t.comment(`this machine: ${c1.accel} (${c1.accel_why})`);
  if (kvmWorked) {
    t.notOk(existsSync(verdict), 'a working KVM records nothing');
    return;
  }
  if (!fellBack) {
    // no /dev/kvm, or the paused-VM probe already failed: nothing to learn
    t.notOk(existsSync(verdict), 'no boot was tried under KVM, nothing recorded');
    t.equal(hostOf(out1).accel, 'tcg');
    return;
  }
  t.equal(c1.accel, 'tcg', 'the hung KVM boot fell back to TCG within the run');
  t.match(JSON.parse(readFileSync(verdict, 'utf8')), { kvm: 'broken', why: /no result/ }, 'the machine verdict is recorded');

  const out2 = join(dir, 'run2');
  const r2 = await lockstep(runArgs({ specs: [spec], scenarios: [scen], out: out2 }), { env });
  t.equal(r2.code, 0, r2.stderr);
  t.equal(hostOf(out2).accel, 'tcg', 'the second run chose TCG before any boot');
  t.match(hostOf(out2).accel_why, /gave no result on this machine before/, 'and says why, with the file to remove');
  const c2 = cellOf(out2);
  t.equal(c2.verdict, 'MATCH');
  t.equal(c2.accel, 'tcg');
  t.match(String(c2.accel_why), /^a kvm boot gave no result on this machine before/, 'no KVM boot was tried again');
});
