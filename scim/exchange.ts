/**
 * One HTTP exchange on an undici dispatcher, its answer collected whole: a small dispatch handler in place of
 * `request()`'s body stream, which cost each request a Readable, its buffer and its promise plumbing. It holds the
 * response-size cap (declared or streamed), the whole-request deadline and cancellation; the dispatcher's own
 * timeouts bound each phase.
 */
import type { Dispatcher } from 'undici';

/** What to send, and how to bound it. */
export interface ExchangeRequest {
  method: string;
  /** The path with its query, from the origin's root. */
  path: string;
  headers: Record<string, string>;
  body: string | null;
  /** Largest body accepted; a bigger one (declared or streamed) rejects with {@link ResponseTooLarge}. */
  maxBytes: number;
  /** A 2xx body is read to its end and dropped (`text` is ''), whatever its size. */
  discardBody: boolean;
  /** The whole exchange's deadline; when it passes, the exchange rejects with a `TimeoutError`. */
  timeoutMs: number;
  /** Abandons the exchange when it aborts, rejecting with its reason. */
  signal: AbortSignal | undefined;
}

/** A complete answer: its status, headers as undici parsed them (names in lower case), and body text. */
export interface Exchanged {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** The answer's body was over the cap. */
export class ResponseTooLarge extends Error {}

/** Whether `error` is what an exchange rejects with when its deadline passes. */
export function isDeadlineError(error: unknown): boolean {
  return error instanceof DeadlinePassed;
}

class DeadlinePassed extends DOMException {}

function onDeadline(exchange: Exchange): void {
  exchange.fail(new DeadlinePassed(`the request's deadline of ${exchange.timeoutMs} ms passed`, 'TimeoutError'));
}

/**
 * Sends one request on a dispatcher as it is constructed; `promise` resolves with the whole answer or rejects as
 * {@link ExchangeRequest} says. It is the dispatch handler, and the cancelling signal's listener (`handleEvent`).
 */
export class Exchange implements Dispatcher.DispatchHandler {
  /** The whole answer, or why there is none. */
  readonly promise: Promise<Exchanged>;
  /** The deadline, in ms. */
  readonly timeoutMs: number;
  #resolve!: (answer: Exchanged) => void;
  #reject!: (reason: unknown) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #maxBytes: number;
  readonly #discardBody: boolean;
  readonly #deadline: NodeJS.Timeout;
  #controller: Dispatcher.DispatchController | undefined;
  // Set once the promise is settled: by the answer, a failure, the deadline or cancellation.
  #settled = false;
  // Why the exchange was given up before it started: it is dropped when it reaches a connection.
  #reason: unknown;
  /** The answer's status once its head came (a failure while reading its body keeps it), else 0. */
  status = 0;
  #headers: Record<string, string | string[] | undefined> = {};
  #discard = false;
  #declared = false;
  // The body's one chunk, or its chunks once a second came; most answers come in one.
  #chunk: Buffer | undefined;
  #chunks: Buffer[] | undefined;
  #size = 0;

  constructor(dispatcher: Dispatcher, request: ExchangeRequest) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.timeoutMs = request.timeoutMs;
    this.#signal = request.signal;
    this.#maxBytes = request.maxBytes;
    this.#discardBody = request.discardBody;
    // A timer cleared when the exchange ends, not AbortSignal.timeout: that one lives its whole 30 s, and a first sync
    // sending 2,000 requests a second kept 60,000 of them (and their signals) alive for the garbage collector.
    this.#deadline = setTimeout(onDeadline, request.timeoutMs, this);
    if (this.#signal !== undefined) {
      // Aborted while the caller waited (for the limiter, say): the event has passed.
      if (this.#signal.aborted) {
        this.fail(this.#signal.reason);
        return;
      }
      this.#signal.addEventListener('abort', this);
    }
    const { method, path, headers, body } = request;
    // Not idempotent: never written while another request on its socket awaits its answer, so a pool that allows two
    // on a socket (`queueBehind`) keeps the second waiting, not pipelined. Not blocking: the socket takes that second
    // one while the first is out (a blocking request made its socket busy until its answer's head came).
    dispatcher.dispatch({ method, path, headers, body, idempotent: false, blocking: false }, this);
  }

  /** Gives the exchange up with `reason`: the request is aborted (or, not started yet, never sent). */
  fail(reason: unknown): void {
    if (this.#settled) return;
    if (this.#controller === undefined) {
      this.#reason = reason;
      this.#settle();
      this.#reject(reason);
    } else {
      // The dispatcher answers with onResponseError(reason), which settles.
      this.#controller.abort(reason as Error);
    }
  }

  handleEvent(): void {
    this.fail(this.#signal!.reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Given up while it waited for a connection: throwing drops it unsent, and the connection is kept.
    if (this.#settled) throw this.#reason;
    this.#controller = controller;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx informational answers precede the real one.
    if (status < 200) return;
    this.status = status;
    this.#headers = headers;
    this.#discard = this.#discardBody && status >= 200 && status < 300;
    if (this.#discard) return;
    const declared = Number(headers['content-length']);
    this.#declared = Number.isFinite(declared);
    if (this.#declared && declared > this.#maxBytes) controller.abort(new ResponseTooLarge());
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#discard) return;
    this.#size += chunk.length;
    if (this.#size > this.#maxBytes) {
      controller.abort(new ResponseTooLarge());
      return;
    }
    if (this.#chunk === undefined) this.#chunk = chunk;
    else (this.#chunks ??= [this.#chunk]).push(chunk);
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    this.#settle();
    this.#resolve({ status: this.status, headers: this.#headers, text: this.#text() });
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(error);
  }

  #settle(): void {
    this.#settled = true;
    clearTimeout(this.#deadline);
    this.#signal?.removeEventListener('abort', this);
  }

  #text(): string {
    const body = this.#chunks === undefined ? this.#chunk : Buffer.concat(this.#chunks, this.#size);
    if (body === undefined) return '';
    // As undici's body.text() read a body of declared length: a UTF-8 byte order mark is dropped. A streamed body
    // was concatenated and decoded as it is, the mark kept.
    const bom = this.#declared && body.length > 2 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
    return body.toString('utf8', bom ? 3 : 0);
  }
}
