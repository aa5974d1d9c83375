// Scenarios: the op-script contract, the file format, loading, what each tells apart.
export * from './ops.ts';
export * from './schema.ts';
export * from './load.ts';
export * from './skip.ts';
