/** The mapping sandbox: built-in defaults, the isolated-vm engine, the merge and the limits. */
export * from './builtin.ts';
export * from './defaults.ts';
export * from './engine.ts';
export * from './limits.ts';
export * from './merge.ts';
export * from './validate.ts';
