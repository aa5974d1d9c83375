// SIGINT and SIGTERM to a real `lockstep run` mid-matrix: a QEMU guest and a
// host reproducer are running, two groups have finished. Afterwards no QEMU
// or reproducer of that run is left, its temp dirs are gone, results.json is
// valid JSON with complete: false and every finished cell, and the exit code
// is 130 (SIGINT) or 143 (SIGTERM).
// Tier: smoke (its subtests moved unchanged from test/faults-signals.test.ts; the rest is in test/integration/faults-signals.test.ts).

import t from 'tap';
import { signalCases } from '../lib/signal-cases.ts';

// Smoke boots the real SIGINT once (Ctrl-C to the group); the same subtest for
// SIGINT and SIGTERM to lockstep alone is in test/integration/faults-signals.test.ts.
signalCases(t, [['SIGINT', 130, true]]);
