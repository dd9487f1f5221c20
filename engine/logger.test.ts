import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, SECRET_LOG_FIELDS } from './logger.ts';

test('the logger writes every secret-bearing field as [redacted], at the top level, two levels down and in headers', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
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
