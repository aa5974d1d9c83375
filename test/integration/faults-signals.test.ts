// SIGINT and SIGTERM to a real `lockstep run` mid-matrix: a QEMU guest and a
// host reproducer are running, two groups have finished. Afterwards no QEMU
// or reproducer of that run is left, its temp dirs are gone, results.json is
// valid JSON with complete: false and every finished cell, and the exit code
// is 130 (SIGINT) or 143 (SIGTERM).
// Tier: integration (its subtests moved unchanged from test/faults-signals.test.ts; the rest is in test/smoke/faults-signals.test.ts).

import t from 'tap';
import { signalCases } from '../lib/signal-cases.ts';

// SIGINT and SIGTERM to lockstep alone; Ctrl-C to the whole group is the
// smoke tier's (test/smoke/faults-signals.test.ts), same subtest.
signalCases(t, [['SIGINT', 130, false], ['SIGTERM', 143, false]]);
