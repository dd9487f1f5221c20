import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A forwarding proxy in front of a target that, once closed, holds every write until opened again: a push that is
 * under way stays under way for as long as a test needs.
 */
export async function gatedProxy(targetUrl: string) {
  const upstream = new URL(targetUrl);
  const held: Array<() => void> = [];
  let closed = false;
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.writeHead(502).end());
    out.end(body);
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (closed && req.method !== 'GET') held.push(() => forward(req, res, body));
      else forward(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    held: () => held.length,
    close() {
      closed = true;
    },
    open() {
      closed = false;
      for (const release of held.splice(0)) release();
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
