export * from './sync-control.ts';
export * from './worker.ts';
export * from './runtime.ts';
export * from './schedules.ts';
export * from './relay.ts';
export * from './replay-check.ts';
export * from './provider-check.ts';
export * from './logger.ts';
