export * from './full-sync.ts';
export * from './search-attributes.ts';
export * from './provider-sync.ts';
export * from './scheduled-full-sync.ts';
export * from './housekeeping.ts';
export * from './provider-check.ts';
