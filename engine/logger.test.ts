import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { loadEnv } from '../config/index.ts';
import { ScimflowError } from '../errors/index.ts';
import { createLogger, defaultLogFormat, SECRET_LOG_FIELDS } from './logger.ts';

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

test('a pretty logger writes each record as one readable line, its secrets redacted as in JSON', () => {
  const { lines, sink } = capture();
  const log = createLogger('info', sink, 'pretty');
  for (const field of SECRET_LOG_FIELDS) {
    const secret = `s3cr3t-${field}-value`;
    log.info({ [field]: secret, provider: { slug: 'acme', auth: { [field]: secret } } }, 'with a secret');
  }
  log.debug('below the level');

  const text = lines.join('');
  assert.ok(!text.includes('s3cr3t'), text);
  const written = text.split('\n').filter((line) => line !== '');
  assert.equal(written.length, SECRET_LOG_FIELDS.length, 'one line a record, none for a level below');
  for (const [i, line] of written.entries()) {
    const field = SECRET_LOG_FIELDS[i]!;
    assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: with a secret \{/, line);
    assert.ok(line.includes(`"${field}":"[redacted]"`) && line.includes('"slug":"acme"'), line);
    assert.ok(!line.includes('\u001b['), 'no colour codes when not written to a terminal');
  }
});

test('a pretty logger writes an error with its code and stack under its line, and nothing else it carries', () => {
  const { lines, sink } = capture();
  const error = Object.assign(new ScimflowError('ERR_SCIM_NETWORK', 'the target did not answer'), {
    request: { headers: { authorization: 'Bearer s3cr3t-deep' } },
  });
  createLogger('info', sink, 'pretty').error({ err: error }, 'request failed');

  const text = lines.join('');
  assert.ok(!text.includes('s3cr3t'), text);
  assert.match(text, /^\[[\d:.]+\] ERROR: request failed ?\n {4}err: \{\n/);
  assert.match(text, /"code": "ERR_SCIM_NETWORK"/);
  assert.match(text, /ScimflowError: the target did not answer\n\s+at /);
});

test('logs are readable on a terminal and JSON lines anywhere else, unless LOG_FORMAT says', () => {
  assert.equal(defaultLogFormat({ isTTY: true }), 'pretty');
  assert.equal(defaultLogFormat({ isTTY: false }), 'json');
  assert.equal(defaultLogFormat({}), 'json');
  assert.equal(loadEnv({ LOG_FORMAT: 'json' }).LOG_FORMAT, 'json');
  assert.equal(loadEnv({}).LOG_FORMAT, undefined);
  assert.throws(() => loadEnv({ LOG_FORMAT: 'xml' }), /ERR_CONFIG|invalid environment: LOG_FORMAT/);
});
