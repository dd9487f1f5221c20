export * from './sync-control.ts';
export * from './worker.ts';
export * from './runtime.ts';
