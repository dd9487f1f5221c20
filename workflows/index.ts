export * from './full-sync.ts';
