/** Provider auth settings: validated on save with errors naming the field, and secrets never shown. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProviderAuthInputSchema, splitAuth } from '../../auth/schemas.ts';
import { redactSecrets } from '../../scim/redact.ts';

/** The field paths of the issues `input` fails with. */
function issuePaths(input: unknown): string[] {
  const parsed = ProviderAuthInputSchema.safeParse(input);
  assert.equal(parsed.success, false, 'expected the settings to be refused');
  return parsed.error.issues.map((issue) => issue.path.join('.'));
}

const clientCredentials = {
  mode: 'oauth_client_credentials',
  tokenUrl: 'https://idp.example.com/oauth2/token',
  clientId: 'scimflow',
  clientSecret: 's3cret-value',
};

describe('validation', () => {
  test('accepts each mode with its required fields', () => {
    for (const input of [
      { mode: 'none' },
      { mode: 'bearer', token: 'abc' },
      { mode: 'bearer', token: 'abc', headerName: 'X-Api-Key' },
      { mode: 'basic', username: 'scim', password: 'pw' },
      clientCredentials,
      { ...clientCredentials, tokenUrl: undefined, issuer: 'https://idp.example.com' },
      { mode: 'oauth_interactive', issuer: 'https://idp.example.com', clientId: 'c', clientSecret: 's' },
    ]) {
      assert.equal(ProviderAuthInputSchema.safeParse(input).success, true, JSON.stringify(input));
    }
  });

  test('client_secret_basic (the default) needs a client secret', () => {
    assert.deepEqual(issuePaths({ ...clientCredentials, clientSecret: undefined }), ['clientSecret']);
  });

  test('private_key_jwt needs a private key and refuses a client secret', () => {
    assert.deepEqual(issuePaths({ ...clientCredentials, clientAuth: 'private_key_jwt' }).sort(), [
      'clientSecret',
      'privateKey',
    ]);
  });

  test('exactly one of issuer and tokenUrl', () => {
    assert.deepEqual(issuePaths({ ...clientCredentials, issuer: 'https://idp.example.com' }), ['tokenUrl']);
    assert.deepEqual(issuePaths({ ...clientCredentials, tokenUrl: undefined }), ['tokenUrl']);
  });

  test('interactive OAuth needs an issuer (its endpoints come from discovery)', () => {
    assert.deepEqual(issuePaths({ mode: 'oauth_interactive', clientId: 'c', clientSecret: 's' }), ['issuer']);
  });

  test('endpoints must be https, except on loopback, and carry no credentials', () => {
    assert.deepEqual(issuePaths({ ...clientCredentials, tokenUrl: 'http://idp.example.com/token' }), ['tokenUrl']);
    assert.deepEqual(issuePaths({ ...clientCredentials, tokenUrl: 'https://u:p@idp.example.com/token' }), ['tokenUrl']);
    assert.equal(
      ProviderAuthInputSchema.safeParse({ ...clientCredentials, tokenUrl: 'http://127.0.0.1:9000/token' }).success,
      true,
    );
  });

  test('a token parameter may not override a field scimflow sets itself', () => {
    assert.deepEqual(issuePaths({ ...clientCredentials, tokenParams: { client_secret: 'x' } }), [
      'tokenParams.client_secret',
    ]);
  });

  test('a custom header name must be a header name', () => {
    assert.deepEqual(issuePaths({ mode: 'bearer', token: 't', headerName: 'X Api Key' }), ['headerName']);
  });

  test('a bearer token is printable ASCII, spaces only inside: it is sent as a header value as it is', () => {
    for (const token of ['a\u0001b', 'a\u0000b', 'a\u007fb', 'ö', 'a\u2028b', ' a', 'a ', 'a\r\nb']) {
      assert.deepEqual(issuePaths({ mode: 'bearer', token }), ['token'], JSON.stringify(token));
      assert.deepEqual(
        issuePaths({ mode: 'bearer', token, headerName: 'X-Api-Key' }),
        ['token'],
        JSON.stringify(token),
      );
    }
    for (const token of ['eyJhbGciOi.J9-_~+/=', 'SSWS 00ab', 'a\tb', '!']) {
      assert.equal(ProviderAuthInputSchema.safeParse({ mode: 'bearer', token }).success, true, JSON.stringify(token));
    }
  });

  test('a basic-auth password and a client secret may hold any character but a line break: they are encoded', () => {
    assert.equal(
      ProviderAuthInputSchema.safeParse({ mode: 'basic', username: 'scim', password: 'pässwörd \u0001' }).success,
      true,
    );
    assert.equal(
      ProviderAuthInputSchema.safeParse({ ...clientCredentials, clientSecret: 'sécret\u0001' }).success,
      true,
    );
  });

  test('an unknown mode or field is refused', () => {
    assert.deepEqual(issuePaths({ mode: 'kerberos' }), ['mode']);
    const extra = ProviderAuthInputSchema.safeParse({ mode: 'bearer', token: 't', extra: 1 });
    assert.deepEqual(
      extra.error?.issues.map((issue) => [issue.code, (issue as { keys?: string[] }).keys]),
      [['unrecognized_keys', ['extra']]],
    );
  });
});

describe('secrets', () => {
  test('splitting keeps every secret out of the public half, and token parameter names in it', () => {
    const split = splitAuth(
      ProviderAuthInputSchema.parse({
        ...clientCredentials,
        tokenParams: { subject_token: 'subject-secret', grant_type: 'urn:x' },
      }),
    );
    assert.deepEqual(split.config['tokenParamNames'], ['grant_type', 'subject_token']);
    assert.ok(!JSON.stringify(split.config).includes('s3cret-value'));
    assert.ok(!JSON.stringify(split.config).includes('subject-secret'));
    assert.deepEqual(Object.keys(split.secret).sort(), ['clientSecret', 'tokenParams']);
  });

  test('a secret echoed back raw, base64, base64url, URL-encoded or JSON-escaped is redacted', () => {
    const secret = 'tok+en/with "quotes"=';
    const echoes = [
      secret,
      Buffer.from(secret).toString('base64'),
      Buffer.from(secret).toString('base64url'),
      encodeURIComponent(secret),
      encodeURIComponent(secret).toLowerCase(),
      JSON.stringify(secret).slice(1, -1),
    ];
    for (const echo of echoes) {
      const redacted = redactSecrets(`invalid token: ${echo}.`, [secret]);
      assert.equal(redacted, 'invalid token: [redacted].', echo);
    }
  });
});
