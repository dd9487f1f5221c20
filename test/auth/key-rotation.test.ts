/**
 * The key ring: secrets sealed under one key keep working while a new key takes over, `scimflow secrets rotate-key`
 * re-encrypts every stored secret without stopping anything, and afterwards the old key can go. Checked with every
 * credential kind a provider stores (static token, OAuth client secret, private key, interactive refresh token)
 * through real syncs; and keys are parsed strictly.
 */
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  createSecretBox,
  createUser,
  generateSecretKey,
  parseSecretKey,
  secretKeyId,
  type ProviderInput,
  type ProviderView,
  type SecretBox,
} from '../../db/index.ts';
import { callApi } from '../api/api-harness.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';
import { runScimflow } from '../support/cli.ts';
import { seedDirectory } from '../support/directory.ts';
import { testProviderInput } from '../support/providers.ts';
import { startOAuthWorld, type OAuthWorld } from './oauth-world.ts';

/** A box whose keys can be changed while everything runs, as a redeploy with a new key ring would. */
function swappableBox(initial: SecretBox): SecretBox & { use(box: SecretBox): void } {
  let box = initial;
  return {
    use: (next) => void (box = next),
    get currentKeyId() {
      return box.currentKeyId;
    },
    keyIdOf: (value) => box.keyIdOf(value),
    seal: (plaintext, context) => box.seal(plaintext, context),
    open: (sealed, context) => box.open(sealed, context),
    fingerprint: (plaintext, context) => box.fingerprint(plaintext, context),
    fingerprintMatches: (stored, plaintext, context) => box.fingerprintMatches(stored, plaintext, context),
  };
}

describe('key rotation leaves every provider working', () => {
  const oldKey = generateSecretKey();
  const newKey = generateSecretKey();
  const box = swappableBox(createSecretBox(oldKey));
  let skewMs = 0;
  let world: OAuthWorld;
  let staticTarget: ScimTarget;
  let providers: ProviderView[];
  let users = 0;

  before(async () => {
    world = await startOAuthWorld({ secrets: box, now: () => Date.now() + skewMs });
    staticTarget = await startScimTarget();
    await seedDirectory(world.database.db, 2, 1);
    const { oauth } = world;
    const inputs: ProviderInput[] = [
      testProviderInput(staticTarget, 'rot-bearer'),
      testProviderInput(world.target, 'rot-basic', {
        auth: {
          mode: 'oauth_client_credentials',
          issuer: oauth.issuer,
          clientId: oauth.clients.basic.clientId,
          clientAuth: 'client_secret_basic',
          clientSecret: oauth.clients.basic.clientSecret,
        },
      }),
      testProviderInput(world.target, 'rot-jwt', {
        auth: {
          mode: 'oauth_client_credentials',
          tokenUrl: oauth.tokenUrl,
          clientId: oauth.clients.jwt.clientId,
          clientAuth: 'private_key_jwt',
          privateKey: oauth.clients.jwt.privateKeyPem,
        },
      }),
      testProviderInput(world.target, 'rot-interactive', {
        auth: {
          mode: 'oauth_interactive',
          issuer: oauth.issuer,
          clientId: oauth.clients.interactive.clientId,
          clientAuth: 'client_secret_basic',
          clientSecret: oauth.clients.interactive.clientSecret,
          scope: 'scim',
        },
      }),
    ];
    providers = [];
    for (const input of inputs) {
      const created = await callApi<ProviderView>(world.api.url, world.admin, 'POST', '/providers', input);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      providers.push(created.body);
    }
    const { page } = await world.authoriseInBrowser(providers[3]!);
    assert.equal(page.status, 200, page.text);
  });

  after(async () => {
    await staticTarget.close();
    await world.close();
  });

  /** Adds a user and runs a full sync of every provider; every run must send it with the provider's credential. */
  async function syncEveryProvider(): Promise<void> {
    users += 1;
    await createUser(world.database.db, {
      username: `rotation${users}@example.test`,
      displayName: `Rotation ${users}`,
      email: `rotation${users}@example.test`,
      active: true,
      kind: 'internal',
      attributes: {},
    });
    for (const provider of providers) {
      const run = await world.syncRun(provider);
      assert.equal(run.status, 'succeeded', `${provider.slug}: ${JSON.stringify(run.error)}`);
      assert.ok(run.created + run.updated >= 1, `${provider.slug} sent the new user`);
    }
  }

  /** The key id of every sealed value and fingerprint in the database, by where it is. */
  async function storedKeyIds(): Promise<Map<string, string | null>> {
    const ids = new Map<string, string | null>();
    const { rows } = await world.database.db.query<{ slug: string; secret: Buffer; fingerprint: Buffer }>(
      'SELECT slug, auth_secret AS secret, auth_fingerprint AS fingerprint FROM providers WHERE auth_secret IS NOT NULL',
    );
    for (const row of rows) {
      ids.set(`${row.slug} secret`, box.keyIdOf(row.secret));
      ids.set(`${row.slug} fingerprint`, box.keyIdOf(row.fingerprint));
    }
    const grants = await world.database.db.query<{ slug: string; token: Buffer }>(
      `SELECT p.slug, g.refresh_token AS token FROM provider_oauth_grants g JOIN providers p ON p.id = g.provider_id
        WHERE g.refresh_token IS NOT NULL`,
    );
    for (const row of grants.rows) ids.set(`${row.slug} refresh token`, box.keyIdOf(row.token));
    return ids;
  }

  test('every provider syncs under the old key', async () => {
    await syncEveryProvider();
    const ids = await storedKeyIds();
    assert.equal(ids.size, 9, [...ids.keys()].join(', '));
    assert.ok([...ids.values()].every((id) => id === secretKeyId(oldKey)));
  });

  test('with the new key sealing and the old one still decrypting, every provider keeps working and an unchanged credential stays unchanged', async () => {
    box.use(createSecretBox(newKey, { decryptOnly: [oldKey] }));
    await syncEveryProvider();
    // Re-sending the same client secret is recognised through the old key's fingerprint: no credential change.
    const basic = providers[1]!;
    const updated = await callApi<ProviderView>(world.api.url, world.admin, 'PATCH', `/providers/${basic.id}`, {
      auth: {
        mode: 'oauth_client_credentials',
        issuer: world.oauth.issuer,
        clientId: world.oauth.clients.basic.clientId,
        clientAuth: 'client_secret_basic',
        clientSecret: world.oauth.clients.basic.clientSecret,
      },
    });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.configVersion, basic.configVersion);
  });

  test('scimflow secrets rotate-key re-encrypts every secret under the new key, and a second run has nothing left to do', async () => {
    const env = {
      DATABASE_URL: world.database.url,
      SCIMFLOW_SECRET_KEY: newKey,
      SCIMFLOW_DECRYPT_KEYS: oldKey,
    };
    const first = await runScimflow(['secrets', 'rotate-key'], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stdout.trim(),
      `re-encrypted 5 secrets under key ${secretKeyId(newKey)}; 0 were under it already`,
    );
    const ids = await storedKeyIds();
    assert.equal(ids.size, 9);
    for (const [where, id] of ids) assert.equal(id, secretKeyId(newKey), where);

    const second = await runScimflow(['secrets', 'rotate-key'], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(
      second.stdout.trim(),
      `re-encrypted 0 secrets under key ${secretKeyId(newKey)}; 5 were under it already`,
    );
  });

  test('after the rotation the old key can go: every provider works with the new key alone, fetching fresh tokens', async () => {
    box.use(createSecretBox(newKey));
    // Cached access tokens are due for refresh: every OAuth provider goes back to its authorization server.
    skewMs = 3_600_000;
    const basic = world.tokenRequestsFromNow(world.oauth.clients.basic.clientId);
    const jwt = world.tokenRequestsFromNow(world.oauth.clients.jwt.clientId);
    const interactive = world.tokenRequestsFromNow();
    await syncEveryProvider();
    assert.deepEqual(
      basic().map((r) => [r.grantType, r.ok]),
      [['client_credentials', true]],
    );
    assert.deepEqual(
      jwt().map((r) => [r.grantType, r.ok]),
      [['client_credentials', true]],
    );
    assert.deepEqual(
      interactive().map((r) => [r.grantType, r.ok]),
      [['refresh_token', true]],
    );
    assert.equal((await world.oauthStatus(providers[3]!)).state, 'authorised');
  });

  test('rotating without the key the secrets were sealed with fails, names what it could not open, and changes nothing', async () => {
    const third = generateSecretKey();
    const result = await runScimflow(['secrets', 'rotate-key'], {
      env: { DATABASE_URL: world.database.url, SCIMFLOW_SECRET_KEY: third, SCIMFLOW_DECRYPT_KEYS: '' },
    });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /re-encrypted 0 secrets under key/);
    assert.match(
      result.stderr,
      /provider rot-bearer-\w+: credential: stored secret was sealed with key [0-9a-f]{8}, which is neither/,
    );
    assert.match(result.stderr, /5 secrets could not be opened with any key given/);
    assert.ok(!result.stderr.includes(newKey) && !result.stderr.includes(third));
    for (const [where, id] of await storedKeyIds()) assert.equal(id, secretKeyId(newKey), where);
  });
});

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** `key` (32 bytes, base64) with the spare low bit of its last character set the other way. */
function nonCanonical(key: string): string {
  return `${key.slice(0, 42)}${BASE64[BASE64.indexOf(key[42]!) ^ 1]!}=`;
}

describe('key parsing and the key ring', () => {
  test('a malformed key is refused with a clear error that does not quote it', () => {
    const valid = generateSecretKey();
    const malformed = [
      valid.slice(0, -1), // padding missing
      ` ${valid}`,
      `${valid}\n`,
      randomBytes(31).toString('base64'),
      randomBytes(33).toString('base64'),
      randomBytes(16).toString('hex'),
      nonCanonical(valid), // a last character with its spare bits set: not what an encoder writes
      'A'.repeat(43) + '=', // 32 zero bytes
      '0'.repeat(64),
      'correct horse battery staple',
    ];
    for (const key of malformed) {
      assert.throws(
        () => createSecretBox(key),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'ERR_CONFIG');
          assert.match(error.message, /SCIMFLOW_SECRET_KEY is not a valid key/);
          assert.ok(!error.message.includes(key.trim()), error.message);
          return true;
        },
        JSON.stringify(key),
      );
    }
    assert.equal(parseSecretKey(valid).length, 32);
    assert.equal(parseSecretKey(randomBytes(32).toString('hex')).length, 32);
  });

  test('a value sealed under a key the ring does not hold is refused naming that key id', () => {
    const oldKey = generateSecretKey();
    const sealed = createSecretBox(oldKey).seal('a client secret', 'provider-1');
    assert.throws(
      () => createSecretBox(generateSecretKey()).open(sealed, 'provider-1'),
      new RegExp(
        `sealed with key ${secretKeyId(oldKey)}, which is neither SCIMFLOW_SECRET_KEY nor in SCIMFLOW_DECRYPT_KEYS`,
      ),
    );
    assert.equal(
      createSecretBox(generateSecretKey(), { decryptOnly: [oldKey] }).open(sealed, 'provider-1'),
      'a client secret',
    );
    assert.throws(() => createSecretBox(oldKey).open(sealed, 'provider-2'), /does not authenticate/);
  });

  test('values sealed before key ids (format 1) still open with whichever key of the ring sealed them', () => {
    const key = generateSecretKey();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(key, 'base64'), iv);
    cipher.setAAD(Buffer.from('provider-1', 'utf8'));
    const body = Buffer.concat([cipher.update('legacy token', 'utf8'), cipher.final()]);
    const legacy = Buffer.concat([Buffer.from([1]), iv, cipher.getAuthTag(), body]);
    const ring = createSecretBox(generateSecretKey(), { decryptOnly: [key] });
    assert.equal(ring.keyIdOf(legacy), null);
    assert.equal(ring.open(legacy, 'provider-1'), 'legacy token');
    assert.throws(() => createSecretBox(generateSecretKey()).open(legacy, 'provider-1'), /no key of the ring/);
  });

  test('production roles refuse a malformed key at once; the development key is for scimflow start only', async () => {
    const worker = await runScimflow(['worker'], { env: { SCIMFLOW_SECRET_KEY: 'not-a-key' } });
    assert.notEqual(worker.code, 0);
    assert.match(worker.stderr, /SCIMFLOW_SECRET_KEY is not a valid key/);
    for (const command of [['worker'], ['api'], ['secrets', 'rotate-key']]) {
      const refused = await runScimflow(command, { env: { SCIMFLOW_SECRET_KEY: '' } });
      assert.notEqual(refused.code, 0, command.join(' '));
      assert.match(refused.stderr, /SCIMFLOW_SECRET_KEY is not set/, command.join(' '));
    }
  });
});
