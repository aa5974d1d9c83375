// The simulator: pure model of perf_mmap() locked-memory accounting (V0..V4).
export * from './accounting.ts';
export * from './simulate.ts';
