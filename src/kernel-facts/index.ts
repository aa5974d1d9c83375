// Kernel facts: versions, upstream changes and the releases that carry them,
// perf_mmap() accounting by release. The bottom layer: imports only src/util.

export * from './version.ts';
export * from './changes.ts';
export * from './accounting.ts';
export * from './history-doc.ts';
