/** Drives a test target's server in its own worker thread: the calls a test makes, answered by the worker. */
import { Worker } from 'node:worker_threads';
import type { ScimGroup, ScimUser } from '../../scim/index.ts';
import type {
  FaultRule,
  ReceivedRequest,
  TargetCallMessage,
  TargetCalls,
  TargetReplyMessage,
} from './scim-target-types.ts';

/** A running SCIM 2.0 target on loopback with an in-memory store, a request log and fault injection. */
export interface ScimTarget {
  /** Base URL, e.g. `http://127.0.0.1:PORT/scim/v2` (an emulator may mount elsewhere). */
  readonly url: string;
  /** The bearer token the target accepts. */
  readonly token: string;
  /** The users the store holds now (members of groups carry `groups`). */
  users(): Promise<ScimUser[]>;
  /** The groups the store holds now, with their members. */
  groups(): Promise<ScimGroup[]>;
  /** Every request received since the last reset, in arrival order, discovery GETs included. */
  requests(): Promise<ReceivedRequest[]>;
  /** How many POST, PUT, PATCH and DELETE requests arrived since the last reset. */
  writes(): Promise<number>;
  /** Forgets the request log. */
  resetLog(): Promise<void>;
  /** Answers the next matching request(s) with a canned response instead of processing them. */
  failNext(rule: FaultRule): Promise<void>;
  /** Puts a user straight into the store (uniqueness rules apply); returns it with its id. */
  seedUser(user: Partial<ScimUser> & { userName: string }): Promise<ScimUser>;
  /** Puts a group straight into the store (members must exist); returns it with its id. */
  seedGroup(group: Partial<ScimGroup> & { displayName: string }): Promise<ScimGroup>;
  /** Stops the server and its worker. */
  close(): Promise<void>;
}

/** Starts the worker module at `url` with `settings` as its workerData; `token` is what its server accepts. */
export async function startTargetWorker(url: URL, settings: unknown, token: string): Promise<ScimTarget> {
  const worker = new Worker(url, { workerData: settings });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let failure: Error | undefined;

  const { port, basePath } = await new Promise<{ port: number; basePath: string }>((resolve, reject) => {
    worker.on('message', (message: TargetReplyMessage) => {
      if (message.type === 'ready') return resolve(message);
      const waiter = pending.get(message.id);
      if (waiter === undefined) return;
      pending.delete(message.id);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new Error(`SCIM target: ${message.error}`));
    });
    const stop = (error: Error): void => {
      failure = error;
      reject(error);
      for (const waiter of pending.values()) waiter.reject(error);
      pending.clear();
    };
    worker.on('error', stop);
    worker.on('exit', (code) => stop(new Error(`SCIM target worker exited (code ${code})`)));
  });

  function call<K extends keyof TargetCalls>(
    name: K,
    ...args: TargetCalls[K]['args']
  ): Promise<TargetCalls[K]['result']> {
    if (failure !== undefined) return Promise.reject(failure);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      const message: TargetCallMessage = { id, call: name, args };
      worker.postMessage(message);
    });
  }

  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}${basePath}`,
    token,
    users: () => call('users'),
    groups: () => call('groups'),
    requests: () => call('requests'),
    writes: () => call('writes'),
    resetLog: () => call('resetLog'),
    failNext: (rule) => call('failNext', rule),
    seedUser: (user) => call('seedUser', user),
    seedGroup: (group) => call('seedGroup', group),
    close() {
      closed ??= (async () => {
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        await call('close').catch(() => undefined);
        await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
        await worker.terminate();
      })();
      return closed;
    },
  };
}
