import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { ScimflowError } from '../errors/index.ts';
import { createLogger, SECRET_LOG_FIELDS } from './logger.ts';

/** A stream that keeps every line written to it. */
function capture(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, sink };
}

test('the logger writes every secret-bearing field as [redacted], at the top level, two levels down and in headers', () => {
  const { lines, sink } = capture();
  const log = createLogger('info', sink);
  for (const field of SECRET_LOG_FIELDS) {
    const secret = `s3cr3t-${field}-value`;
    log.info(
      {
        [field]: secret,
        provider: { slug: 'acme', [field]: secret, auth: { [field]: secret } },
        request: { headers: { [field]: secret } },
      },
      'with a secret',
    );
  }
  assert.equal(lines.length, SECRET_LOG_FIELDS.length);
  for (const [i, line] of lines.entries()) {
    const field = SECRET_LOG_FIELDS[i]!;
    assert.ok(!line.includes('s3cr3t'), `${field}: ${line}`);
    const parsed = JSON.parse(line) as Record<string, unknown> & { provider: Record<string, unknown> };
    assert.equal(parsed[field], '[redacted]');
    assert.equal(parsed.provider['slug'], 'acme', 'what is not secret is kept');
  }
});

test('a logged error keeps its class, message, code, stack and causes, and none of its other properties', () => {
  const { lines, sink } = capture();
  const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
    code: 'ECONNREFUSED',
    options: { deeply: { nested: { headers: { 'x-api-key': 's3cr3t-in-a-cause' } } } },
  });
  const error = Object.assign(
    new ScimflowError('ERR_SCIM_NETWORK', 'the target did not answer', { details: { status: 0 }, cause }),
    { request: { sent: { with: { headers: { authorization: 'Bearer s3cr3t-deep' } } } }, body: 's3cr3t-body' },
  );
  createLogger('info', sink).error({ err: error }, 'request failed');

  const line = lines[0]!;
  assert.ok(!line.includes('s3cr3t'), line);
  const { err } = JSON.parse(line) as { err: Record<string, unknown> & { cause: Record<string, unknown> } };
  assert.equal(err['type'], 'ScimflowError');
  assert.equal(err['message'], 'the target did not answer');
  assert.equal(err['code'], 'ERR_SCIM_NETWORK');
  assert.deepEqual(err['details'], { status: 0 });
  assert.match(String(err['stack']), /the target did not answer/);
  assert.deepEqual(
    { type: err.cause['type'], message: err.cause['message'], code: err.cause['code'] },
    { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:9', code: 'ECONNREFUSED' },
  );
});
