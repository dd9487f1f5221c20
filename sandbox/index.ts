export * from './builtin.ts';
