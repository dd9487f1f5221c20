/**
 * The worker side of a test target: answers the controller's calls (see `target-controller.ts`) and tells it where
 * the server listens. Shared by every target server (SCIMMY, better-auth).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort } from 'node:worker_threads';
import type { TargetCallMessage, TargetCalls, TargetReplyMessage } from './scim-target-types.ts';

/** What the worker does for each call; `close` is supplied here, from the server. */
export type TargetCallHandlers = {
  [K in Exclude<keyof TargetCalls, 'close'>]: (...args: TargetCalls[K]['args']) => unknown;
};

function post(message: TargetReplyMessage): void {
  parentPort?.postMessage(message);
}

/** Announces `server` (listening) at `basePath` to the controller and answers its calls until it asks to close. */
export function hostTarget(server: Server, basePath: string, handlers: TargetCallHandlers): void {
  const calls: Record<keyof TargetCalls, (...args: unknown[]) => unknown> = {
    ...(handlers as Record<Exclude<keyof TargetCalls, 'close'>, (...args: unknown[]) => unknown>),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  parentPort?.on('message', (message: TargetCallMessage) => {
    void (async () => {
      try {
        const value: unknown = await calls[message.call](...message.args);
        post({
          type: 'reply',
          id: message.id,
          ok: true,
          value: value === undefined ? undefined : JSON.parse(JSON.stringify(value)),
        });
      } catch (error) {
        post({
          type: 'reply',
          id: message.id,
          ok: false,
          error: error instanceof Error ? error.message : String(error),
        });
      }
      if (message.call === 'close') parentPort?.close();
    })();
  });
  post({ type: 'ready', port: (server.address() as AddressInfo).port, basePath });
}

/** Starts `app`'s server on a loopback port and resolves once it listens. */
export function listenOnLoopback(app: {
  listen(port: number, host: string, done: () => void): Server;
}): Promise<Server> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
}
