/* Generated from SCENARIO_LIMITS (src/scenario/schema.ts) by `lockstep schema --write`: do not edit. */
#ifndef LOCKSTEP_LIMITS_H
#define LOCKSTEP_LIMITS_H
#define MAX_BALLAST_BUFS 1024
#endif
