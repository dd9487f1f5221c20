import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Dispatcher } from 'undici';
import { Exchange, isDeadlineError, ResponseTooLarge, type ExchangeRequest } from './exchange.ts';

/** A dispatcher that holds each request until the test starts it, and a controller that records an abort. */
class HeldDispatcher {
  handlers: Dispatcher.DispatchHandler[] = [];
  dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.handlers.push(handler);
    return true;
  }
}

class Controller implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  readonly #handler: Dispatcher.DispatchHandler;
  constructor(handler: Dispatcher.DispatchHandler) {
    this.#handler = handler;
  }
  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    // As undici does: the request errors with the abort's reason.
    this.#handler.onResponseError?.(this, reason);
  }
  pause(): void {}
  resume(): void {}
}

function send(overrides: Partial<ExchangeRequest> = {}) {
  const dispatcher = new HeldDispatcher();
  const exchange = new Exchange(dispatcher as unknown as Dispatcher, {
    method: 'GET',
    path: '/Users',
    headers: {},
    body: null,
    maxBytes: 1000,
    discardBody: false,
    timeoutMs: 30_000,
    signal: undefined,
    ...overrides,
  });
  // None when the exchange gave up before it dispatched.
  const handler = dispatcher.handlers[0] ?? {};
  const controller = new Controller(handler);
  /** The dispatcher starts the request and the target answers with `status`, `headers` and the body's `chunks`. */
  const answer = (status: number, headers: Record<string, string>, chunks: string[] | Buffer[]) => {
    handler.onRequestStart?.(controller, null);
    handler.onResponseStart?.(controller, status, headers);
    for (const chunk of chunks) {
      if (controller.aborted) return;
      handler.onResponseData?.(controller, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    }
    if (!controller.aborted) handler.onResponseEnd?.(controller, {});
  };
  return { exchange, dispatcher, handler, controller, answer };
}

describe('one exchange', () => {
  test('resolves with the status, the headers and the body, whatever chunks it came in', async () => {
    const { exchange, answer } = send();
    answer(200, { 'content-type': 'application/scim+json' }, ['{"id":', '"é', '"}']);
    assert.deepEqual(await exchange.promise, {
      status: 200,
      headers: { 'content-type': 'application/scim+json' },
      text: '{"id":"é"}',
    });
  });

  test('an informational answer before the real one is skipped', async () => {
    const { exchange, handler, controller } = send();
    handler.onRequestStart?.(controller, null);
    handler.onResponseStart?.(controller, 100, {});
    handler.onResponseStart?.(controller, 204, {});
    handler.onResponseEnd?.(controller, {});
    assert.deepEqual(await exchange.promise, { status: 204, headers: {}, text: '' });
  });

  test('a body over the cap is refused, by its declared length before any byte or as its bytes come', async () => {
    const declared = send({ maxBytes: 10 });
    declared.answer(200, { 'content-length': '11' }, []);
    await assert.rejects(declared.exchange.promise, ResponseTooLarge);
    assert.equal(declared.exchange.status, 200);
    const streamed = send({ maxBytes: 10 });
    streamed.answer(502, {}, ['123456', '78901']);
    await assert.rejects(streamed.exchange.promise, ResponseTooLarge);
    assert.equal(streamed.exchange.status, 502);
    const fits = send({ maxBytes: 10 });
    fits.answer(200, {}, ['12345', '67890']);
    assert.equal((await fits.exchange.promise).text, '1234567890');
  });

  test('a discarded success body is read to its end and dropped, whatever its size; a failure body is kept', async () => {
    const success = send({ maxBytes: 10, discardBody: true });
    success.answer(200, { 'content-length': '20' }, ['x'.repeat(20)]);
    assert.equal((await success.exchange.promise).text, '');
    const failure = send({ maxBytes: 10, discardBody: true });
    failure.answer(400, {}, ['bad']);
    assert.equal((await failure.exchange.promise).text, 'bad');
  });

  test('a UTF-8 byte order mark is dropped from a body of declared length and kept in a streamed one', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const declared = send();
    declared.answer(200, { 'content-length': '5' }, [Buffer.concat([bom, Buffer.from('{}')])]);
    assert.equal((await declared.exchange.promise).text, '{}');
    const streamed = send();
    streamed.answer(200, {}, [bom, Buffer.from('{}')]);
    assert.equal((await streamed.exchange.promise).text, '\uFEFF{}');
  });

  test('the deadline aborts a request in flight with a TimeoutError', async () => {
    const { exchange, handler, controller } = send({ timeoutMs: 20 });
    handler.onRequestStart?.(controller, null);
    handler.onResponseStart?.(controller, 200, {});
    handler.onResponseData?.(controller, Buffer.from('{'));
    await assert.rejects(
      exchange.promise,
      (error) => isDeadlineError(error) && (error as Error).name === 'TimeoutError',
    );
    assert.ok(controller.aborted);
  });

  test('given up before it reached a connection (deadline or signal), it rejects at once and is never sent', async () => {
    const late = send({ timeoutMs: 20 });
    await assert.rejects(late.exchange.promise, (error) => isDeadlineError(error));
    // Throwing from onRequestStart is how undici drops a request unsent, leaving the connection open.
    assert.throws(() => late.handler.onRequestStart?.(late.controller, null));
    assert.equal(late.controller.aborted, false);
    const signal = new AbortController();
    const cancelled = send({ signal: signal.signal });
    const reason = new Error('cancelled');
    signal.abort(reason);
    await assert.rejects(cancelled.exchange.promise, (error) => error === reason);
    assert.throws(() => cancelled.handler.onRequestStart?.(cancelled.controller, null));
  });

  test('a signal aborted already rejects with its reason and dispatches nothing', async () => {
    const signal = new AbortController();
    const reason = new Error('cancelled');
    signal.abort(reason);
    const { exchange, dispatcher } = send({ signal: signal.signal });
    await assert.rejects(exchange.promise, (error) => error === reason);
    assert.equal(dispatcher.handlers.length, 0);
  });

  test('a transport failure rejects with its error, keeping the status of an answer whose body broke off', async () => {
    const { exchange, handler, controller } = send();
    handler.onRequestStart?.(controller, null);
    handler.onResponseStart?.(controller, 200, {});
    const reset = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    handler.onResponseError?.(controller, reset);
    await assert.rejects(exchange.promise, (error) => error === reset);
    assert.equal(exchange.status, 200);
  });
});
