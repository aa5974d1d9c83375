// Git-tree bisect on real kernel commits: the fixture history (base
// linux-source-6.1, then the variant patches as successive commits, with a
// commit that does not build) is bisected between fix-1 (V1) and a commit
// after fix-4 (V2) on sysctl-lowered, with real builds from the tree itself
// (no --base-package, no --build-cmd: lockstep's own checkout of each commit,
// one shared object dir, ccache) and real QEMU boots. Bisect must name the
// fix-4 commit and skip the broken one, keep git's bisect log in the output
// and never build in the user's tree; a stopped bisect, even one whose git
// session was reset, continues from its state. The refusals run through
// --base-package (the Debian package + git diff builder). Also: an
// infrastructure failure is retried before it counts.
// Tier: unit (its subtests moved unchanged from test/bisect-git.test.ts; the rest is in test/integration/bisect-git.test.ts).

import t from 'tap';
import { parseBisectLog } from '../../src/bisect/git.ts';

t.test('parseBisectLog reads git\'s verdict', async (t) => {
  const a = 'a'.repeat(40);
  const b = 'b'.repeat(40);
  t.same(parseBisectLog(`git bisect start\n# bad: [${b}] x\n# first bad commit: [${a}] perf: y\n`), { first: a });
  t.same(parseBisectLog(`# only skipped commits left to test\n# possible first bad commit: [${a}] x\n# possible first bad commit: [${b}] y\n`), { candidates: [a, b] });
  t.equal(parseBisectLog('git bisect start\n# good: [x] y\n'), null);
});
