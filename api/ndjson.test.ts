import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isScimflowError } from '../errors/index.ts';
import { NdjsonBody, type JsonLine } from './ndjson.ts';

/** A body that arrives in exactly these byte chunks. */
function bodyOf(chunks: ReadonlyArray<string | Uint8Array>): ReadableStream<Uint8Array> {
  const bytes = chunks.map((chunk) => (typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk));
  return new ReadableStream({
    pull(controller) {
      const next = bytes.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(next);
    },
  });
}

async function linesOf(chunks: ReadonlyArray<string | Uint8Array>, maxLineBytes = 1024): Promise<JsonLine[]> {
  const lines: JsonLine[] = [];
  for await (const line of new NdjsonBody(bodyOf(chunks), maxLineBytes).lines()) lines.push(line);
  return lines;
}

/** The line number and message of the error reading `chunks` throws. */
async function failureOf(chunks: ReadonlyArray<string | Uint8Array>, maxLineBytes = 1024) {
  try {
    await linesOf(chunks, maxLineBytes);
  } catch (error) {
    assert.ok(isScimflowError(error) && error.code === 'ERR_VALIDATION', String(error));
    return { line: error.details['line'], message: error.message };
  }
  assert.fail('no error');
}

test('lines split anywhere across chunks, even inside a character, read as written', async () => {
  const text = '{"name":"Zoë"}\r\n\n[1,2]\n"ünïcode"';
  const bytes = new TextEncoder().encode(text);
  // Every split point, including the middle of the two-byte "ë" and between \r and \n.
  for (let cut = 0; cut <= bytes.length; cut += 1) {
    const lines = await linesOf([bytes.subarray(0, cut), bytes.subarray(cut)]);
    assert.deepEqual(
      lines,
      [
        { line: 1, value: { name: 'Zoë' } },
        { line: 3, value: [1, 2] },
        { line: 4, value: 'ünïcode' },
      ],
      `cut at ${cut}`,
    );
  }
});

test('a line that is not JSON, not UTF-8 or too long is named by its number, and its text is not repeated', async () => {
  assert.deepEqual(await failureOf(['{"a":1}\n\n{"password": "hunter2"\n{"b":2}\n']), {
    line: 3,
    message: 'line 3: is not valid JSON at position 22',
  });
  assert.equal((await failureOf(['{"a":1}\n', new Uint8Array([0x22, 0xff, 0x22, 0x0a])])).line, 2);
  assert.deepEqual(await failureOf(['{"a":1}\n', `"${'x'.repeat(40)}`, `${'x'.repeat(40)}"\n`], 64), {
    line: 2,
    message: 'line 2: is longer than 64 bytes',
  });
});

test('what is left of the body after a bad line is read and dropped, so the sender is not left hanging', async () => {
  const pulled: string[] = [];
  const chunks = ['{"a":1}\nnope\n', '{"b":2}\n', '{"c":3}\n'];
  const body = new NdjsonBody(
    new ReadableStream({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) return controller.close();
        pulled.push(next);
        controller.enqueue(new TextEncoder().encode(next));
      },
    }),
    1024,
  );
  await assert.rejects(async () => {
    for await (const line of body.lines()) void line;
  });
  await body.drain();
  assert.equal(pulled.length, 3);
});
