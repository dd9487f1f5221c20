export * from './full-sync.ts';
export * from './failures.ts';
export * from './mapper.ts';
export * from './payload-hash.ts';
export * from './targets.ts';
export * from './sandbox-mapper.ts';
export * from './deletion-guard.ts';
export * from './housekeeping.ts';
