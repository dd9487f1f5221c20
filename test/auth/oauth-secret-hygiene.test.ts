/**
 * No OAuth secret reaches the Temporal history or the worker's log: a worker process (LOG_LEVEL=debug) completes an
 * interactive authorisation, checks a connection and runs full syncs of three OAuth providers (interactive, client
 * secret, private key JWT), one of them through a 401 and a token refresh; then every workflow history on its task
 * queue and everything the worker printed are searched for each secret, raw and encoded.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { createSecretBox, generateSecretKey, type ProviderView } from '../../db/index.ts';
import { createSyncControl } from '../../engine/index.ts';
import { callApi, createTestToken } from '../api/api-harness.ts';
import { endedRun, eventually } from '../incremental/harness.ts';
import { loginAndConsent } from '../servers/oauth-login.ts';
import { startOAuthServer } from '../servers/oauth-server.ts';
import { startScimTarget } from '../servers/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { seedDirectory } from '../support/directory.ts';
import { testProviderInput } from '../support/providers.ts';
import { startWorkerProcess } from '../support/worker-process.ts';
import { startProviderAuthApi } from './oauth-world.ts';
import { hasLogLine } from '../support/log-lines.ts';

/** The ways a secret may be written: raw, base64 (padded or not), base64url, URL- and form-encoded, JSON-escaped. */
function spellings(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [
    ...new Set([
      secret,
      bytes.toString('base64'),
      bytes.toString('base64').replace(/=+$/, ''),
      bytes.toString('base64url'),
      encodeURIComponent(secret),
      new URLSearchParams({ s: secret }).toString().slice(2),
      JSON.stringify(secret).slice(1, -1),
    ]),
  ];
}

/** Every string in a protobuf message (bytes as UTF-8 text, the way payload data holds JSON). */
function textOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const item of value) textOf(item, out);
  else if (typeof value === 'object' && value !== null) for (const item of Object.values(value)) textOf(item, out);
  return out;
}

test('OAuth client secrets, private keys, access and refresh tokens, codes and states appear in no workflow history and no worker log line, in any encoding', async (t) => {
  assert.ok(process.env['TEMPORAL_ADDRESS'], 'npm test provides a Temporal server');
  const testDb = await createTestDatabase();
  const secretKey = generateSecretKey();
  const taskQueue = `oauth-hygiene-${randomBytes(4).toString('hex')}`;
  const worker = await startWorkerProcess({
    DATABASE_URL: testDb.url,
    SCIMFLOW_SECRET_KEY: secretKey,
    SCIMFLOW_TASK_QUEUE: taskQueue,
    LOG_LEVEL: 'debug',
  });
  const connection = await Connection.connect({ address: process.env['TEMPORAL_ADDRESS'] });
  const client = new Client({ connection });
  const { api, redirectUri } = await startProviderAuthApi({
    db: testDb.db,
    secrets: createSecretBox(secretKey),
    client,
    taskQueue,
  });
  const oauth = await startOAuthServer({ redirectUri });
  const target = await startScimTarget({ oauth: oauth.jwtRules });
  t.after(async () => {
    await worker.kill();
    await api.close();
    await target.close();
    await oauth.close();
    await connection.close();
    await testDb.drop();
  });

  const admin = await createTestToken(testDb.db, 'admin');
  const create = async (input: ReturnType<typeof testProviderInput>): Promise<ProviderView> => {
    const created = await callApi<ProviderView>(api.url, admin, 'POST', '/providers', input);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body;
  };
  const { clients } = oauth;
  const interactive = await create(
    testProviderInput(target, 'hygiene-interactive', {
      auth: {
        mode: 'oauth_interactive',
        issuer: oauth.issuer,
        clientId: clients.interactive.clientId,
        clientSecret: clients.interactive.clientSecret,
        clientAuth: 'client_secret_basic',
        scope: 'scim',
      },
    }),
  );
  const basic = await create(
    testProviderInput(target, 'hygiene-basic', {
      auth: {
        mode: 'oauth_client_credentials',
        issuer: oauth.issuer,
        clientId: clients.basic.clientId,
        clientSecret: clients.basic.clientSecret,
        clientAuth: 'client_secret_basic',
      },
    }),
  );
  const jwt = await create(
    testProviderInput(target, 'hygiene-jwt', {
      auth: {
        mode: 'oauth_client_credentials',
        tokenUrl: oauth.tokenUrl,
        clientId: clients.jwt.clientId,
        privateKey: clients.jwt.privateKeyPem,
        clientAuth: 'private_key_jwt',
      },
    }),
  );

  // The administrator authorises the interactive provider; the worker process exchanges the code.
  const started = await callApi<{ authorizationUrl: string }>(
    api.url,
    admin,
    'POST',
    `/providers/${interactive.id}/oauth/authorize`,
    {},
  );
  const callback = new URL(await loginAndConsent(started.body.authorizationUrl, { redirectUri }));
  const page = await fetch(callback);
  assert.equal(page.status, 200, await page.text());

  const check = await callApi<{ ok: boolean }>(api.url, admin, 'POST', `/providers/${basic.id}/test`, {});
  assert.equal(check.body.ok, true, JSON.stringify(check.body));

  await seedDirectory(testDb.db, 3, 1);
  const control = createSyncControl({ client, taskQueue });
  // The first SCIM request is refused once: its provider fetches a new token and the request is retried.
  await target.failNext({ status: 401, times: 1 });
  for (const provider of [basic, jwt, interactive]) {
    const run = await endedRun(testDb.db, (await control.requestFullSync(provider)).runId);
    assert.equal(run.status, 'succeeded', `${provider.slug}: ${JSON.stringify(run.error)}`);
  }
  // Whichever request met the 401 (the worker's relay may push a change first), its provider fetched a new token.
  assert.equal((await target.requests()).filter((request) => request.status === 401).length, 1);
  assert.equal(await worker.stop(), 0, worker.output());

  // Every workflow the worker ran: the authorisation, the check, each provider's workflow and its full sync.
  const histories = await eventually(
    'every workflow of the task queue listed',
    async () => {
      const found: Array<{ workflowId: string; type: string }> = [];
      for await (const info of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) {
        found.push({ workflowId: info.workflowId, type: info.type });
      }
      const types = found.map((info) => info.type);
      const want = ['completeProviderAuthorisation', 'checkProvider', 'providerSync', 'fullSync'];
      const complete = want.every((type) => types.includes(type)) && found.length >= 8;
      return complete ? found : undefined;
    },
    30_000,
  );
  const historyText: string[] = [];
  for (const { workflowId } of histories) {
    historyText.push(...textOf(await client.workflow.getHandle(workflowId).fetchHistory()));
  }
  const history = historyText.join('\n');
  const log = worker.output();
  // Both were really captured: the histories name the providers, the log has debug lines of the runs.
  for (const provider of [basic, jwt, interactive]) assert.ok(history.includes(provider.id), provider.slug);
  assert.ok(hasLogLine(log, 'debug', 'Activity completed'), 'the SDK logged its activities at debug level');

  const pem = clients.jwt.privateKeyPem;
  const jwk = createPrivateKey(pem).export({ format: 'jwk' });
  const secrets: Array<[string, string]> = [
    ['interactive client secret', clients.interactive.clientSecret],
    ['basic client secret', clients.basic.clientSecret],
    ...[clients.interactive, clients.basic].map((c): [string, string] => [
      `${c.clientId} Basic credentials`,
      `${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`,
    ]),
    ['private key (PEM)', pem],
    ...pem
      .split('\n')
      .filter((line) => /^[A-Za-z0-9+/=]{40,}$/.test(line))
      .map((line, i): [string, string] => [`private key PEM line ${i + 1}`, line]),
    ['private key (JWK d)', String(jwk.d)],
    ['authorization code', callback.searchParams.get('code')!],
    ['state', callback.searchParams.get('state')!],
    ...oauth.issuedTokens.flatMap((token, i): Array<[string, string]> => [
      [`issued token ${i + 1}`, token],
      // A JWT's signature alone identifies it.
      ...(token.split('.').length === 3
        ? [[`issued token ${i + 1} signature`, token.split('.')[2]!] as [string, string]]
        : []),
    ]),
  ];
  assert.ok(oauth.issuedTokens.length >= 5, `${oauth.issuedTokens.length} tokens issued`);
  for (const [what, secret] of secrets) {
    for (const form of spellings(secret)) {
      assert.ok(!history.includes(form), `the workflow histories carry the ${what}`);
      assert.ok(!log.includes(form), `the worker log carries the ${what}`);
    }
  }
});
