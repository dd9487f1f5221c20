import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Hono } from 'hono';

/** A listening API server. */
export interface ApiServer {
  /** Base URL, e.g. `http://127.0.0.1:7400` (the real port when 0 was asked for). */
  url: string;
  close(): Promise<void>;
}

/** Serves `app` on `host:port` (port 0 picks a free one) and resolves once it listens. */
export function startApiServer(app: Pick<Hono, 'fetch'>, options: { host: string; port: number }): Promise<ApiServer> {
  return new Promise((resolve, reject) => {
    let server: ServerType | undefined = undefined;
    const onError = (error: Error): void => reject(error);
    server = serve({ fetch: app.fetch, hostname: options.host, port: options.port }, (info: AddressInfo) => {
      server?.off('error', onError);
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({
        url: `http://${host}:${info.port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server?.close((error) => (error ? fail(error) : done()));
            if (server && 'closeAllConnections' in server) server.closeAllConnections();
          }),
      });
    });
    server.once('error', onError);
  });
}
