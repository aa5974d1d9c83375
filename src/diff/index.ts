// Measured vs expected, per cell; calibration; classification.
export * from './diff.ts';
export * from './classify.ts';
export * from './evidence.ts';
export * from './discriminate.ts';
