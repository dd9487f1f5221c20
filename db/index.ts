export * from './pool.ts';
export * from './migrate.ts';
export * from './crypto.ts';
export * from './schemas.ts';
export * from './sync-store.ts';
export * from './directory.ts';
export * from './providers.ts';
export * from './reports.ts';
