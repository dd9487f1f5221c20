// The Node.js flags every scimflow process runs with; plain JavaScript, so the launcher (scripts/launch.mjs, on the
// system Node before `npm ci`) and the `scimflow` bin (cli/bin.mjs) share it. The Dockerfile's ENTRYPOINT repeats them.
//
// isolated-vm needs --no-node-snapshot. A young generation of at most 16 MB per semi-space (V8 grows it to 64 MB) kept
// a worker's resident memory in a 10,000-user full sync at 317 MB instead of 424. An old generation let grow to 1.5
// times what survived the last full GC, not up to 4 times (V8's choice when a process allocates fast), kept it at
// 346 MB instead of 518 at 10,000 users, and at 401 MB instead of 750 at 100,000 (scale bench; the heap alive after a
// full GC was 92 MB at most), for about 10 % more worker CPU.
//
// glibc's malloc gives each thread that allocates an arena of its own, up to eight per core, and keeps what is freed
// in each: a worker has many such threads (isolated-vm's isolates, Temporal's core, libuv's pool). Two arenas kept its
// peak resident memory at 313 MB instead of 359 in a 10,000-user full sync, and at 368 MB instead of 400 at 100,000
// (scale bench, same CPU per user). An environment variable, read when the process starts: it is set on the child.

/** The flag isolated-vm cannot run without: a process that has it needs no re-run. */
export const NO_SNAPSHOT = '--no-node-snapshot';

/** All flags, in the order they are passed. */
export const NODE_FLAGS = [NO_SNAPSHOT, '--max-semi-space-size=16', '--heap-growing-percent=50'];

/** The environment of a scimflow process started with `env`: MALLOC_ARENA_MAX 2 unless `env` sets it. */
export function nodeEnvironment(env) {
  return { MALLOC_ARENA_MAX: '2', ...env };
}
