/**
 * Reads a request body of newline-delimited JSON (one value per line) as it arrives: a few lines over the Web stream
 * the server hands us, no parser dependency (each line is a whole JSON text, so `JSON.parse` does the parsing). The
 * stream is read only as fast as lines are taken, so an importer that is writing a batch holds the client back
 * (TCP backpressure) instead of buffering the body.
 */
import { importLineError } from '../db/index.ts';
import { assertJsonDepth } from './guards.ts';

/** One parsed line and its number (1-based; blank lines are skipped but counted, so numbers match an editor's). */
export interface JsonLine {
  line: number;
  value: unknown;
}

const NEWLINE = 0x0a;
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A body of NDJSON: its lines one at a time, then what was left of it read and dropped. */
export class NdjsonBody {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array> | null;
  private readonly maxLineBytes: number;
  private ended = false;

  constructor(body: ReadableStream<Uint8Array> | null, maxLineBytes: number) {
    this.reader = body?.getReader() ?? null;
    this.maxLineBytes = maxLineBytes;
  }

  /** The lines of the body; a line that is too long, not UTF-8 or not JSON throws `importLineError` naming it. */
  async *lines(): AsyncGenerator<JsonLine> {
    let parts: Uint8Array[] = [];
    let length = 0;
    let line = 0;
    const keep = (part: Uint8Array) => {
      length += part.length;
      if (length > this.maxLineBytes) {
        throw importLineError(line + 1, [{ path: '', message: `is longer than ${this.maxLineBytes} bytes` }]);
      }
      if (part.length > 0) parts.push(part);
    };
    // A line within one chunk (most of them) is parsed from the chunk itself; one across chunks is put together first.
    const finish = (last: Uint8Array): JsonLine | null => {
      keep(last);
      line += 1;
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
      parts = [];
      length = 0;
      return this.parse(line, bytes);
    };
    for (let chunk = await this.read(); chunk !== null; chunk = await this.read()) {
      let start = 0;
      for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
        const parsed = finish(chunk.subarray(start, end));
        start = end + 1;
        if (parsed !== null) yield parsed;
      }
      keep(chunk.subarray(start));
    }
    if (length > 0) {
      const parsed = finish(new Uint8Array(0));
      if (parsed !== null) yield parsed;
    }
  }

  /** Reads what is left of the body and drops it, so that the client, still sending, gets the answer. */
  async drain(): Promise<void> {
    while ((await this.read()) !== null);
  }

  private async read(): Promise<Uint8Array | null> {
    if (this.reader === null || this.ended) return null;
    const { done, value } = await this.reader.read();
    if (done) this.ended = true;
    return done ? null : value;
  }

  private parse(line: number, bytes: Uint8Array): JsonLine | null {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw importLineError(line, [{ path: '', message: 'is not valid UTF-8' }]);
    }
    if (text.trim() === '') return null;
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch (error) {
      // V8's message quotes the text around the error, which may be a secret: keep the position only.
      const position = /at position (\d+)/.exec(error instanceof Error ? error.message : '')?.[1];
      const where = position === undefined ? '' : ` at position ${position}`;
      throw importLineError(line, [{ path: '', message: `is not valid JSON${where}` }]);
    }
    try {
      assertJsonDepth(value);
    } catch {
      throw importLineError(line, [{ path: '', message: 'nests too deeply' }]);
    }
    return { line, value };
  }
}
