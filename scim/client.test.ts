import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import * as z from 'zod';
import { isScimflowError, ScimRequestError } from '../errors/index.ts';
import { CircuitBreaker } from './breaker.ts';
import { createScimClient, parseRetryAfter, type ScimRequestInfo } from './client.ts';
import type { RequestLimiter } from './limiter.ts';
import { RetryBudget, withRetries } from './retry.ts';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: Received, res: ServerResponse) => void;

/** A tiny HTTP server whose answer each test sets, counting the sockets clients open. */
let server: Server;
let baseUrl: string;
let handler: Handler;
let received: Received[];
let sockets: number;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/scim+json', ...headers });
  res.end(JSON.stringify(body));
}

function scimError(status: number, scimType: string | undefined, detail: string) {
  return {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
    status: String(status),
    ...(scimType === undefined ? {} : { scimType }),
    detail,
  };
}

async function rejection(promise: Promise<unknown>): Promise<ScimRequestError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ScimRequestError, `expected ScimRequestError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the request to fail');
}

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      received.push(entry);
      handler(entry, res);
    });
  });
  server.on('connection', () => {
    sockets += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scim/v2`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received = [];
  sockets = 0;
  handler = (_req, res) => json(res, 200, { ok: true });
});

describe('requests', () => {
  test('sends the bearer token and SCIM content types, and joins base URL and path', async () => {
    const client = createScimClient({ baseUrl: `${baseUrl}/`, token: 'secret-token', userAgent: 'scimflow-test' });
    try {
      await client.request('POST', '/Users', { body: { userName: 'alice' } });
      const [request] = received;
      assert.ok(request);
      assert.equal(request.method, 'POST');
      assert.equal(request.url, '/scim/v2/Users');
      assert.equal(request.headers.authorization, 'Bearer secret-token');
      assert.equal(request.headers['content-type'], 'application/scim+json');
      assert.equal(request.headers.accept, 'application/scim+json, application/json');
      assert.equal(request.headers['user-agent'], 'scimflow-test');
      assert.deepEqual(JSON.parse(request.body), { userName: 'alice' });
      assert.equal(client.baseUrl, baseUrl);
    } finally {
      await client.close();
    }
  });

  test('encodes query parameters and leaves out undefined ones', async () => {
    const client = createScimClient({ baseUrl });
    try {
      await client.request('GET', '/Users', {
        query: { filter: 'userName eq "a b&c"', count: 2, startIndex: undefined },
      });
      const url = new URL(received[0]?.url ?? '', 'http://x');
      assert.equal(url.searchParams.get('filter'), 'userName eq "a b&c"');
      assert.equal(url.searchParams.get('count'), '2');
      assert.equal(url.searchParams.has('startIndex'), false);
      assert.equal(received[0]?.headers.authorization, undefined);
    } finally {
      await client.close();
    }
  });

  test('asks a token function for the token on every request', async () => {
    let calls = 0;
    const client = createScimClient({
      baseUrl,
      token: () => {
        calls += 1;
        return Promise.resolve(`token-${calls}`);
      },
    });
    try {
      await client.request('GET', '/Users');
      await client.request('GET', '/Users');
      assert.deepEqual(
        received.map((request) => request.headers.authorization),
        ['Bearer token-1', 'Bearer token-2'],
      );
    } finally {
      await client.close();
    }
  });

  test('refuses a path that does not start with a slash', async () => {
    const client = createScimClient({ baseUrl });
    try {
      await assert.rejects(client.request('GET', 'Users'), TypeError);
    } finally {
      await client.close();
    }
  });
});

describe('responses', () => {
  test('reads bodies sent as application/scim+json or application/json', async () => {
    const client = createScimClient({ baseUrl });
    try {
      for (const contentType of ['application/scim+json', 'application/json; charset=utf-8']) {
        handler = (_req, res) => json(res, 200, { id: 'u1' }, { 'content-type': contentType });
        const response = await client.request('GET', '/Users/u1');
        assert.deepEqual(response.body, { id: 'u1' }, contentType);
        assert.equal(response.headers['content-type'], contentType);
      }
    } finally {
      await client.close();
    }
  });

  test('gives each response header as one string under its lower-case name, a repeated one joined', async () => {
    const client = createScimClient({ baseUrl });
    try {
      handler = (_req, res) => {
        res.setHeader('ETag', 'W/"1"');
        res.setHeader('X-Seen', ['a', 'b']);
        json(res, 200, { id: 'u1' });
      };
      const { headers } = await client.request('GET', '/Users/u1');
      assert.equal(headers['etag'], 'W/"1"');
      assert.equal(headers['x-seen'], 'a, b');
      assert.equal(headers['content-type'], 'application/scim+json');
      handler = (_req, res) => json(res, 200, { id: 'u1' }, { ETag: 'W/"2"' });
      const single = await client.request('GET', '/Users/u1');
      assert.ok(Object.values(single.headers).every((value) => typeof value === 'string'));
      assert.equal(single.headers['etag'], 'W/"2"');
    } finally {
      await client.close();
    }
  });

  test('returns an undefined body for 204 and for an empty 200', async () => {
    const client = createScimClient({ baseUrl });
    try {
      handler = (_req, res) => res.writeHead(204).end();
      const deleted = await client.request('DELETE', '/Users/u1');
      assert.equal(deleted.status, 204);
      assert.equal(deleted.body, undefined);
      handler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end();
      const empty = await client.request('PATCH', '/Users/u1', { body: {}, schema: z.object({ id: z.string() }) });
      assert.equal(empty.status, 200);
      assert.equal(empty.body, undefined);
    } finally {
      await client.close();
    }
  });

  test('validates the body against a given schema', async () => {
    const client = createScimClient({ baseUrl });
    try {
      handler = (_req, res) => json(res, 201, { id: 'u1', userName: 'alice' });
      const ok = await client.request('POST', '/Users', { body: {}, schema: z.object({ id: z.string() }) });
      assert.deepEqual(ok.body, { id: 'u1' });

      handler = (_req, res) => json(res, 201, { userName: 'alice' });
      const error = await rejection(
        client.request('POST', '/Users', { body: {}, schema: z.object({ id: z.string() }) }),
      );
      assert.equal(error.code, 'ERR_SCIM_INVALID_RESPONSE');
      assert.match(error.message, /POST \/Users/);
    } finally {
      await client.close();
    }
  });

  test('treats a non-JSON success body as an invalid response', async () => {
    const client = createScimClient({ baseUrl });
    try {
      handler = (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>');
      assert.equal((await rejection(client.request('GET', '/Users'))).code, 'ERR_SCIM_INVALID_RESPONSE');
      handler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"broken"');
      assert.equal((await rejection(client.request('GET', '/Users'))).code, 'ERR_SCIM_INVALID_RESPONSE');
    } finally {
      await client.close();
    }
  });
});

describe('error classification', () => {
  test('maps each failure status to its code, keeping status, scimType and detail', async () => {
    const client = createScimClient({ baseUrl });
    const cases = [
      [400, 'invalidValue', 'ERR_SCIM_BAD_REQUEST'],
      [422, undefined, 'ERR_SCIM_BAD_REQUEST'],
      [401, undefined, 'ERR_SCIM_UNAUTHORIZED'],
      [403, undefined, 'ERR_SCIM_FORBIDDEN'],
      [404, undefined, 'ERR_SCIM_NOT_FOUND'],
      [409, 'uniqueness', 'ERR_SCIM_CONFLICT'],
      [408, undefined, 'ERR_SCIM_SERVER'],
      [429, undefined, 'ERR_SCIM_RATE_LIMITED'],
      [500, undefined, 'ERR_SCIM_SERVER'],
      [502, undefined, 'ERR_SCIM_SERVER'],
      [503, undefined, 'ERR_SCIM_SERVER'],
    ] as const;
    try {
      for (const [status, scimType, code] of cases) {
        handler = (_req, res) => json(res, status, scimError(status, scimType, `reason ${status}`));
        const error = await rejection(client.request('PUT', '/Users/u1', { body: {} }));
        assert.equal(error.code, code, `status ${status}`);
        assert.equal(error.status, status);
        assert.equal(error.scimType, scimType);
        assert.equal(error.details.detail, `reason ${status}`);
        assert.match(error.message, new RegExp(`PUT /Users/u1 failed with ${status}`));
        assert.match(error.message, new RegExp(`reason ${status}`));
        if (scimType !== undefined) assert.match(error.message, new RegExp(scimType));
      }
    } finally {
      await client.close();
    }
  });

  test('reads a SCIM error whose status is a number', async () => {
    const client = createScimClient({ baseUrl });
    try {
      handler = (_req, res) => json(res, 409, { status: 409, scimType: 'uniqueness', detail: 'taken' });
      const error = await rejection(client.request('POST', '/Users', { body: {} }));
      assert.equal(error.code, 'ERR_SCIM_CONFLICT');
      assert.equal(error.scimType, 'uniqueness');
    } finally {
      await client.close();
    }
  });

  test('truncates a long detail and keeps a non-JSON error page short', async () => {
    const client = createScimClient({ baseUrl });
    try {
      handler = (_req, res) => json(res, 400, scimError(400, 'invalidValue', 'x'.repeat(5000)));
      const long = await rejection(client.request('POST', '/Users', { body: {} }));
      assert.ok(long.message.length < 700, `message is ${long.message.length} chars`);

      handler = (_req, res) =>
        res.writeHead(502, { 'content-type': 'text/html' }).end(`<html>${'y'.repeat(5000)}</html>`);
      const page = await rejection(client.request('GET', '/Users'));
      assert.equal(page.code, 'ERR_SCIM_SERVER');
      assert.ok(page.message.length < 700);
      assert.match(page.message, /<html>y+/);
    } finally {
      await client.close();
    }
  });

  test('never puts the token in an error, even when the target echoes it', async () => {
    const client = createScimClient({ baseUrl, token: 'very-secret-token' });
    try {
      handler = (req, res) =>
        json(res, 401, scimError(401, undefined, `bad credentials: ${String(req.headers.authorization)}`));
      const error = await rejection(client.request('GET', '/Users'));
      assert.equal(error.code, 'ERR_SCIM_UNAUTHORIZED');
      assert.doesNotMatch(error.message, /very-secret-token/);
      assert.doesNotMatch(JSON.stringify(error.toJSON()), /very-secret-token/);
      assert.match(error.message, /\[redacted\]/);
    } finally {
      await client.close();
    }
  });

  test('reads Retry-After seconds on 429', async () => {
    const client = createScimClient({ baseUrl });
    try {
      handler = (_req, res) => json(res, 429, scimError(429, undefined, 'slow down'), { 'retry-after': '7' });
      const error = await rejection(client.request('POST', '/Users', { body: {} }));
      assert.equal(error.code, 'ERR_SCIM_RATE_LIMITED');
      assert.equal(error.retryAfterMs, 7000);
      assert.equal(error.details.retryAfterMs, 7000);
    } finally {
      await client.close();
    }
  });

  test('reads a Retry-After HTTP-date on 503 and leaves it undefined when absent', async () => {
    const client = createScimClient({ baseUrl });
    try {
      const at = new Date(Date.now() + 60_000).toUTCString();
      handler = (_req, res) => json(res, 503, scimError(503, undefined, 'maintenance'), { 'retry-after': at });
      const dated = await rejection(client.request('GET', '/Users'));
      assert.equal(dated.code, 'ERR_SCIM_SERVER');
      assert.ok(dated.retryAfterMs !== undefined && dated.retryAfterMs > 50_000 && dated.retryAfterMs <= 60_000);

      handler = (_req, res) => json(res, 429, scimError(429, undefined, 'slow down'));
      assert.equal((await rejection(client.request('GET', '/Users'))).retryAfterMs, undefined);
    } finally {
      await client.close();
    }
  });

  test('asks its limiter before every request and tells it how each one ended', async () => {
    const events: string[] = [];
    const limiter: RequestLimiter = {
      acquire: () => {
        events.push(`acquire (${received.length} received)`);
        return Promise.resolve({ release: (outcome) => events.push(`release ${JSON.stringify(outcome)}`) });
      },
    };
    const client = createScimClient({ baseUrl, limiter });
    try {
      await client.request('GET', '/Users');
      handler = (_req, res) => json(res, 429, scimError(429, undefined, 'slow down'), { 'retry-after': '2' });
      await rejection(client.request('POST', '/Users', { body: {} }));
      assert.deepEqual(events, [
        'acquire (0 received)',
        'release {"status":200}',
        'acquire (1 received)',
        'release {"status":429,"retryAfterMs":2000}',
      ]);
    } finally {
      await client.close();
    }
  });

  test('with writes paced only, a GET goes without asking the limiter and a POST, PUT, PATCH or DELETE asks it', async () => {
    const asked: number[] = [];
    const limiter: RequestLimiter = {
      acquire: () => {
        asked.push(received.length);
        return Promise.resolve({ release: () => undefined });
      },
    };
    const client = createScimClient({ baseUrl, limiter, paced: 'writes' });
    try {
      await client.request('GET', '/Users');
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
        await client.request(method, '/Users/1', { body: {} });
      }
      await client.request('GET', '/Users/1');
      // Asked before the second to fifth requests reached the target: the writes.
      assert.deepEqual(asked, [1, 2, 3, 4]);
      assert.equal(received.length, 6);
    } finally {
      await client.close();
    }
  });

  test('classifies a refused connection as a network error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = createScimClient({ baseUrl: `http://127.0.0.1:${port}/scim` });
    try {
      const error = await rejection(client.request('GET', '/Users'));
      assert.equal(error.code, 'ERR_SCIM_NETWORK');
      assert.equal(error.status, 0);
    } finally {
      await client.close();
    }
  });

  test('a credential the HTTP client refuses as a header value is ERR_CONFIG: not sent, not retried, not blamed on the target', async () => {
    // A token with a control character (one saved before such tokens were refused, or issued by an OAuth server).
    const client = createScimClient({ baseUrl, token: 'Secret\u0001Tok' });
    const breaker = new CircuitBreaker({ openAfterMs: 0 });
    let waits = 0;
    const retrying = withRetries(client, {
      budget: new RetryBudget(),
      breaker,
      sleep: () => Promise.resolve(void (waits += 1)),
    });
    try {
      const error: unknown = await retrying.request('GET', '/Users').then(
        () => assert.fail('expected the request to fail'),
        (failure: unknown) => failure,
      );
      assert.ok(isScimflowError(error), String(error));
      assert.equal(error.code, 'ERR_CONFIG');
      assert.equal(error.retryable, false);
      assert.match(error.message, /authorization header.*check the provider's auth settings/);
      assert.doesNotMatch(`${error.message} ${JSON.stringify(error.toJSON())}`, /Secret|Tok/);
      assert.equal(waits, 0, 'not retried');
      assert.equal(breaker.state, 'closed', 'the target is not counted as failing');
      assert.equal(received.length, 0, 'nothing reached the target');
    } finally {
      await client.close();
    }
  });

  test('classifies a target that does not answer in time as a timeout', async () => {
    const client = createScimClient({ baseUrl, timeoutMs: 200 });
    try {
      handler = () => undefined;
      const started = Date.now();
      const error = await rejection(client.request('GET', '/Users'));
      assert.equal(error.code, 'ERR_SCIM_TIMEOUT');
      assert.ok(Date.now() - started < 5000);
    } finally {
      server.closeAllConnections();
      await client.close();
    }
  });

  test('a body that trickles in past the deadline is a timeout, though every chunk came in time', async () => {
    const client = createScimClient({ baseUrl, timeoutMs: 300 });
    const timers: NodeJS.Timeout[] = [];
    try {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/scim+json' });
        res.write('{"Resources": [');
        // A chunk every 100 ms, forever: no phase timeout fires, only the total deadline can.
        timers.push(setInterval(() => res.write(' '), 100));
      };
      const error = await rejection(client.request('GET', '/Users'));
      assert.equal(error.code, 'ERR_SCIM_TIMEOUT');
    } finally {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      await client.close();
    }
  });

  test('refuses a response body over the size cap, declared or streamed', async () => {
    const client = createScimClient({ baseUrl, maxResponseBytes: 1000 });
    try {
      handler = (_req, res) => json(res, 200, { big: 'x'.repeat(2000) });
      const declared = await rejection(client.request('GET', '/Users'));
      assert.equal(declared.code, 'ERR_SCIM_INVALID_RESPONSE');
      assert.match(declared.message, /over 1000 bytes/);
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/scim+json', 'transfer-encoding': 'chunked' });
        for (let i = 0; i < 20; i += 1) res.write('x'.repeat(100));
        res.end();
      };
      const streamed = await rejection(client.request('GET', '/Users'));
      assert.equal(streamed.code, 'ERR_SCIM_INVALID_RESPONSE');
      handler = (_req, res) => json(res, 200, { small: true });
      assert.deepEqual((await client.request('GET', '/Users')).body, { small: true });
    } finally {
      await client.close();
    }
  });

  test('an aborted signal abandons the request in flight and rejects with its reason; an aborted one never sends', async () => {
    const client = createScimClient({ baseUrl });
    try {
      handler = () => undefined;
      const controller = new AbortController();
      const pending = client.request('GET', '/Users', { signal: controller.signal });
      while (received.length === 0) await new Promise((resolve) => setImmediate(resolve));
      const reason = new Error('activity cancelled');
      controller.abort(reason);
      await assert.rejects(pending, (error) => error === reason);
      await assert.rejects(
        client.request('GET', '/Groups', { signal: controller.signal }),
        (error) => error === reason,
      );
      assert.deepEqual(
        received.map((r) => r.url),
        ['/scim/v2/Users'],
      );
    } finally {
      server.closeAllConnections();
      await client.close();
    }
  });

  test('a write in flight when the signal aborts is answered, not abandoned; the next one never sends', async () => {
    const client = createScimClient({ baseUrl });
    try {
      let answer: (() => void) | undefined;
      handler = (_req, res) => {
        answer = () => json(res, 201, { id: 'u1', userName: 'ada' });
      };
      const controller = new AbortController();
      const pending = client.request('POST', '/Users', { body: { userName: 'ada' }, signal: controller.signal });
      while (answer === undefined) await new Promise((resolve) => setImmediate(resolve));
      const reason = new Error('activity cancelled');
      controller.abort(reason);
      // The target wrote the user: its id reaches the caller, which records the link.
      answer();
      assert.deepEqual((await pending).body, { id: 'u1', userName: 'ada' });
      await assert.rejects(
        client.request('POST', '/Users', { body: { userName: 'bob' }, signal: controller.signal }),
        (error) => error === reason,
      );
      assert.deepEqual(
        received.map((r) => `${r.method} ${r.url}`),
        ['POST /scim/v2/Users'],
      );
    } finally {
      await client.close();
    }
  });

  test('reports every request, failed ones included, to onRequest', async () => {
    const seen: ScimRequestInfo[] = [];
    const client = createScimClient({ baseUrl, onRequest: (info) => seen.push(info) });
    try {
      await client.request('GET', '/ServiceProviderConfig');
      handler = (_req, res) => json(res, 404, scimError(404, undefined, 'gone'));
      await rejection(client.request('DELETE', '/Users/u9'));
      assert.deepEqual(
        seen.map(({ method, path, status }) => ({ method, path, status })),
        [
          { method: 'GET', path: '/ServiceProviderConfig', status: 200 },
          { method: 'DELETE', path: '/Users/u9', status: 404 },
        ],
      );
      assert.ok(seen.every((info) => info.durationMs >= 0));
    } finally {
      await client.close();
    }
  });
});

describe('connection reuse', () => {
  test('a success whose body is discarded is read to its end, never parsed nor capped, and its socket reused', async () => {
    const client = createScimClient({ baseUrl, maxResponseBytes: 1000 });
    try {
      handler = (_req, res) => json(res, 200, { members: 'x'.repeat(5000) });
      for (let i = 0; i < 3; i += 1) {
        const answer = await client.request('PATCH', '/Groups/g', { body: {}, discardBody: true });
        assert.deepEqual([answer.status, answer.body], [200, undefined]);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(sockets, 1, 'each body was read to its end: the socket went back to the pool');
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>not json</html>');
      };
      assert.equal((await client.request('PATCH', '/Groups/g', { body: {}, discardBody: true })).body, undefined);
      // A failure's body is read as always: its detail is in the error.
      handler = (_req, res) => json(res, 400, scimError(400, 'invalidValue', 'no such member'));
      const failed = await rejection(client.request('PATCH', '/Groups/g', { body: {}, discardBody: true }));
      assert.deepEqual([failed.code, failed.message.includes('no such member')], ['ERR_SCIM_BAD_REQUEST', true]);
    } finally {
      await client.close();
    }
  });

  test('sequential requests, failed ones included, reuse kept-alive sockets', async () => {
    const client = createScimClient({ baseUrl });
    try {
      for (let i = 0; i < 20; i += 1) {
        handler =
          i % 5 === 0
            ? (_req, res) => json(res, 409, scimError(409, 'uniqueness', 'dup'))
            : (_req, res) => json(res, 200, { i });
        await client.request('GET', `/Users/${i}`).catch((error: unknown) => {
          if (!(error instanceof ScimRequestError)) throw error;
        });
        // One turn of the event loop: the pool has taken the socket back before the next request is dispatched
        // (dispatched in the same tick, it could open a second one, depending on scheduling).
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(received.length, 20);
      // Without keep-alive this would be 20; a second socket only if an idle one timed out during a stall.
      assert.ok(sockets >= 1 && sockets <= 2, `opened ${sockets} sockets for 20 requests`);
    } finally {
      await client.close();
    }
  });

  test('a GET cancelled while it waits for a connection is never sent, and the busy socket stays open', async () => {
    const client = createScimClient({ baseUrl, connections: 1 });
    try {
      let answer: (() => void) | undefined;
      handler = (req, res) => {
        if (req.url.endsWith('/slow')) answer = () => json(res, 200, { slow: true });
        else json(res, 200, { url: req.url });
      };
      const slow = client.request('GET', '/Users/slow');
      while (answer === undefined) await new Promise((resolve) => setImmediate(resolve));
      const opened = sockets;
      const controller = new AbortController();
      const cancelled = client.request('GET', '/Users/cancelled', { signal: controller.signal });
      const reason = new Error('activity cancelled');
      controller.abort(reason);
      await assert.rejects(cancelled, (error) => error === reason);
      answer();
      assert.deepEqual((await slow).body, { slow: true });
      assert.deepEqual((await client.request('GET', '/Users/next')).body, { url: '/scim/v2/Users/next' });
      assert.deepEqual(
        received.map((r) => r.url),
        ['/scim/v2/Users/slow', '/scim/v2/Users/next'],
      );
      assert.equal(sockets, opened);
    } finally {
      await client.close();
    }
  });

  test('with queueBehind, requests wait unsent on busy sockets, writes and reads alike: never pipelined, never more in flight than sockets', async () => {
    const client = createScimClient({ baseUrl, connections: 2, queueBehind: true });
    try {
      const held: Array<{ url: string; socket: unknown; answer: () => void }> = [];
      let inFlight = 0;
      let most = 0;
      handler = (req, res) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        const answer = () => {
          inFlight -= 1;
          json(res, 200, { url: req.url });
        };
        held.push({ url: req.url, socket: res.socket, answer });
      };
      // Writes and reads alike: neither is pipelined behind an unanswered request.
      const sent = ['POST', 'GET', 'PATCH', 'GET'].map((method, i) =>
        client.request(method as 'POST' | 'GET' | 'PATCH', `/Users/${i}`, method === 'GET' ? {} : { body: {} }),
      );
      while (held.length < 2) await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(held.length, 2, 'two sockets, two requests at the target; the others wait unsent');
      const first = held[0]!;
      first.answer();
      while (held.length < 3) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(held[2]!.socket, first.socket, 'the next request went out on the socket whose answer was read');
      held[1]!.answer();
      while (held.length < 4) await new Promise((resolve) => setImmediate(resolve));
      held[2]!.answer();
      held[3]!.answer();
      const answers = await Promise.all(sent);
      assert.deepEqual(
        answers.map((a) => (a.body as { url: string }).url),
        [0, 1, 2, 3].map((i) => `/scim/v2/Users/${i}`),
      );
      assert.equal(most, 2);
      assert.equal(sockets, 2);
    } finally {
      await client.close();
    }
  });

  test('with queueBehind, a request waiting behind one whose connection breaks is sent on a new socket', async () => {
    const client = createScimClient({ baseUrl, connections: 1, queueBehind: true });
    try {
      handler = (req, res) => {
        // The target takes the first write and drops the connection without an answer.
        if (req.url.endsWith('/dropped')) res.socket?.destroy();
        else json(res, 201, { url: req.url });
      };
      const dropped = client.request('POST', '/Users/dropped', { body: {} });
      const behind = client.request('POST', '/Users/behind', { body: {} });
      assert.equal((await rejection(dropped)).code, 'ERR_SCIM_NETWORK');
      assert.deepEqual((await behind).body, { url: '/scim/v2/Users/behind' });
      assert.deepEqual(
        received.map((r) => r.url),
        ['/scim/v2/Users/dropped', '/scim/v2/Users/behind'],
        'each sent once',
      );
      assert.equal(sockets, 2);
    } finally {
      await client.close();
    }
  });

  test('concurrent requests open no more sockets than the connections limit', async () => {
    const client = createScimClient({ baseUrl, connections: 4 });
    try {
      handler = (_req, res) => setTimeout(() => json(res, 200, {}), 5);
      await Promise.all(Array.from({ length: 40 }, (_, i) => client.request('GET', `/Users/${i}`)));
      assert.equal(received.length, 40);
      assert.ok(sockets >= 1 && sockets <= 4, `opened ${sockets} sockets`);
    } finally {
      await client.close();
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  test('reads delay-seconds', () => {
    assert.equal(parseRetryAfter('0', now), 0);
    assert.equal(parseRetryAfter('1', now), 1000);
    assert.equal(parseRetryAfter(' 120 ', now), 120_000);
  });

  test('reads an HTTP-date relative to now, and a past date as zero', () => {
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0);
  });

  test('gives undefined for a missing or unreadable value', () => {
    for (const value of [undefined, '', 'soon', '-5', '1.5', 'Thu, 99 Foo 2026']) {
      assert.equal(parseRetryAfter(value, now), undefined, String(value));
    }
  });
});
