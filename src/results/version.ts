// The version stamps a results.json carries: lockstep's own version and the
// schema it writes. Constants only, no imports, so that `lockstep --version`
// prints them without loading the runner or the schema validator (issue 25).

/** lockstep's version, written as results.json lockstep_version and printed by --version. */
export const LOCKSTEP_VERSION = '0.1.0';

/** The results.json schema this lockstep writes (src/results/schema.ts validates it). */
export const RESULTS_SCHEMA = 'lockstep/results@2';
