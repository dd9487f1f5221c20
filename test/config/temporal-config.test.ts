import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeTemporalSecurity, loadEnv, temporalConnectionOptions } from '../../config/index.ts';
import { isScimflowError } from '../../errors/index.ts';

const ADDRESS = 'temporal.internal:7233';

/** Files the option builder may read, by path. */
function files(contents: Record<string, string>) {
  return (path: string): Buffer => {
    const content = contents[path];
    if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return Buffer.from(content);
  };
}

/** The ERR_CONFIG message `loadEnv` throws for `env`. */
function configError(env: Record<string, string>): string {
  try {
    loadEnv(env);
  } catch (error) {
    assert.ok(isScimflowError(error));
    assert.equal(error.code, 'ERR_CONFIG');
    return error.message;
  }
  assert.fail('loadEnv accepted the environment');
}

describe('Temporal connection settings', () => {
  test('with no TLS variable the connection is plaintext, as the embedded dev server needs', () => {
    const env = loadEnv({ TEMPORAL_ADDRESS: ADDRESS });
    const options = temporalConnectionOptions(env, ADDRESS, files({}));
    assert.deepEqual(options, { address: ADDRESS });
    assert.equal(describeTemporalSecurity(options), 'plaintext');
  });

  test('TEMPORAL_TLS=true connects with TLS against the system CAs', () => {
    const env = loadEnv({ TEMPORAL_ADDRESS: ADDRESS, TEMPORAL_TLS: 'true' });
    assert.deepEqual(temporalConnectionOptions(env, ADDRESS, files({})), { address: ADDRESS, tls: {} });
  });

  test('the CA, the client pair and the server name reach the TLS options, read from the named files', () => {
    const env = loadEnv({
      TEMPORAL_ADDRESS: ADDRESS,
      TEMPORAL_TLS_CA_PATH: '/etc/scimflow/ca.pem',
      TEMPORAL_TLS_CERT_PATH: '/etc/scimflow/client.pem',
      TEMPORAL_TLS_KEY_PATH: '/etc/scimflow/client.key',
      TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
    });
    const options = temporalConnectionOptions(
      env,
      ADDRESS,
      files({
        '/etc/scimflow/ca.pem': 'CA PEM',
        '/etc/scimflow/client.pem': 'CLIENT CERT PEM',
        '/etc/scimflow/client.key': 'CLIENT KEY PEM',
      }),
    );
    assert.equal(options.tls?.serverRootCACertificate?.toString(), 'CA PEM');
    assert.equal(Buffer.from(options.tls?.clientCertPair?.crt ?? []).toString(), 'CLIENT CERT PEM');
    assert.equal(Buffer.from(options.tls?.clientCertPair?.key ?? []).toString(), 'CLIENT KEY PEM');
    assert.equal(options.tls?.serverNameOverride, 'frontend.temporal.internal');
    assert.equal(options.apiKey, undefined);
    assert.equal(describeTemporalSecurity(options), 'mutual TLS, own CA');
  });

  test('an API key turns TLS on and is passed to the connection', () => {
    const env = loadEnv({ TEMPORAL_ADDRESS: ADDRESS, TEMPORAL_API_KEY: 'tk-123' });
    const options = temporalConnectionOptions(env, ADDRESS, files({}));
    assert.deepEqual(options, { address: ADDRESS, tls: {}, apiKey: 'tk-123' });
    assert.equal(describeTemporalSecurity(options), 'TLS, API key');
    assert.doesNotMatch(describeTemporalSecurity(options), /tk-123/);
  });

  test('a client certificate without its key is refused, naming the missing variable', () => {
    const message = configError({ TEMPORAL_ADDRESS: ADDRESS, TEMPORAL_TLS_CERT_PATH: '/c.pem' });
    assert.match(message, /TEMPORAL_TLS_KEY_PATH: mutual TLS needs both/);
  });

  test('TEMPORAL_TLS=false with an API key is refused rather than sending the key in clear text', () => {
    const message = configError({ TEMPORAL_ADDRESS: ADDRESS, TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' });
    assert.match(message, /TEMPORAL_API_KEY: is set while TEMPORAL_TLS=false/);
    assert.doesNotMatch(message, /: k\b/);
  });

  test('TEMPORAL_TLS accepts only true or false', () => {
    assert.match(
      configError({ TEMPORAL_ADDRESS: ADDRESS, TEMPORAL_TLS: 'yes' }),
      /TEMPORAL_TLS: must be true or false/,
    );
  });

  test('TLS settings without TEMPORAL_ADDRESS are refused: the embedded dev server speaks plaintext only', () => {
    assert.match(configError({ TEMPORAL_TLS_CA_PATH: '/ca.pem' }), /TEMPORAL_ADDRESS: must be set when TLS/);
  });

  test('a file that cannot be read fails at start with the variable and path, not at the first call', () => {
    const env = loadEnv({ TEMPORAL_ADDRESS: ADDRESS, TEMPORAL_TLS_CA_PATH: '/missing/ca.pem' });
    assert.throws(
      () => temporalConnectionOptions(env, ADDRESS, files({})),
      (error: unknown) =>
        isScimflowError(error) &&
        error.code === 'ERR_CONFIG' &&
        error.message === 'TEMPORAL_TLS_CA_PATH: cannot read /missing/ca.pem (ENOENT)',
    );
  });
});
