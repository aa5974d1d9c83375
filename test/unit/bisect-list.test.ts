// Prebuilt-list bisect on real Debian 6.1 cloud kernels (fetched with apt,
// cached) booted in QEMU: the shared-counter scenario tells the shared
// locked_vm counter from perf's own perf_mlock, and the search must name the
// first release that charges perf_mlock. Also: a run stopped half-way
// resumes from its state file without booting the measured kernels again.
// Tier: unit (its subtests moved unchanged from test/bisect-list.test.ts; the rest is in test/integration/bisect-list.test.ts).

import { join } from 'node:path';
import t from 'tap';
import { loadSpecFile } from '../../src/kernels/spec.ts';

const REPO = new URL('../../', import.meta.url).pathname;
const HISTORY = join(REPO, 'kernels', 'debian-6.1-history', 'cloud-amd64.json');
const IDS = ['debian-6.1.170-3', 'debian-6.1.176-1', 'debian-6.1.187-1', 'debian-6.1.190-1', 'debian-6.1.192-1', 'debian-6.1.192-2'];
t.test('the history file lists the six releases in order, none of them in the default matrix', async (t) => {
  const specs = await loadSpecFile(HISTORY);
  t.same(specs.map((s) => s.id), IDS);
  const versions = specs.map((s) => (s.kind === 'debian-image' ? s.package_version : ''));
  t.same(versions, ['6.1.170-3', '6.1.176-1', '6.1.187-1', '6.1.190-1', '6.1.192-1', '6.1.192-2']);
});
