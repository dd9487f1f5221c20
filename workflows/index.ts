export * from './full-sync.ts';
export * from './search-attributes.ts';
