/** The flag isolated-vm cannot run without: a process that has it needs no re-run. */
export declare const NO_SNAPSHOT: '--no-node-snapshot';
/** All of scimflow's Node.js flags, in the order they are passed (see node-flags.mjs for why each). */
export declare const NODE_FLAGS: readonly string[];
/** The environment of a scimflow process started with `env`: MALLOC_ARENA_MAX 2 unless `env` sets it. */
export declare function nodeEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
