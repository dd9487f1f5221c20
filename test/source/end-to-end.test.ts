/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment -- SCIM bodies are untyped JSON: the assertions are what check their shape */
/**
 * The hub end to end: what an identity provider pushes into a source reaches downstream SCIM targets through the
 * outbox, the relay and the provider workflows; and scimflow's own outbound scim2 plugin, provisioning one
 * directory into a source of another scimflow, leaves the second directory equal to the first, object by object.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { createApi, startApiServer } from '../../api/index.ts';
import {
  addMembers,
  createGroup,
  createProvider,
  createSecretBox,
  createSource,
  createUser,
  generateSecretKey,
  type Db,
} from '../../db/index.ts';
import { recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';
import { endedRun, eventually, incrementalWorld, person } from '../incremental/harness.ts';
import { createTestDatabase } from '../support/db.ts';
import { testProviderInput } from '../support/providers.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** An API serving the sources of `db`, and a source `slug` on it with a client. */
async function sourceOn(t: TestContext, db: Db, slug: string) {
  const app = createApi({
    db,
    secrets: createSecretBox(generateSecretKey()),
    sync: recordingSyncControl(),
    validatePluginOptions,
  });
  const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const { token } = await createSource(db, { slug, deletePolicy: 'delete', claim: false });
  const base = `${server.url}/source/scim/${slug}/v2`;
  const scim = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
  };
  return { base, token, scim };
}

/** A directory as plain comparable data: users by username, groups by name with their members' usernames. */
async function snapshot(db: Db, options: { skipServiceAccounts: boolean }) {
  const users = await db.query<{
    username: string;
    display_name: string | null;
    email: string | null;
    given_name: string | null;
    family_name: string | null;
    active: boolean;
  }>(
    `SELECT username, display_name, email, given_name, family_name, active FROM users
      WHERE NOT ($1 AND kind = 'service_account') ORDER BY username`,
    [options.skipServiceAccounts],
  );
  const groups = await db.query<{ name: string; members: string[] }>(
    `SELECT g.name, coalesce(array_agg(u.username ORDER BY u.username) FILTER (WHERE u.id IS NOT NULL), '{}') AS members
       FROM groups g LEFT JOIN group_members gm ON gm.group_id = g.id LEFT JOIN users u ON u.id = gm.user_id
      GROUP BY g.name ORDER BY g.name`,
  );
  return { users: users.rows, groups: groups.rows };
}

describe('inbound sources end to end', () => {
  test('a user and a group pushed into a source reach a downstream SCIM target through an outbound provider', async (t) => {
    const { db, target, newProvider } = await incrementalWorld(t);
    await newProvider();
    const entra = await sourceOn(t, db, 'entra');

    const started = performance.now();
    const created = await entra.scim('POST', '/Users', {
      schemas: [USER_SCHEMA],
      userName: 'pushed@example.test',
      displayName: 'Pushed User',
      name: { givenName: 'Pushed', familyName: 'User' },
      emails: [{ value: 'pushed@example.test', type: 'work', primary: true }],
      active: true,
    });
    assert.equal(created.status, 201);
    const remote = await eventually('the user on the downstream target', async () =>
      (await target.users()).find((u) => u.userName === 'pushed@example.test'),
    );
    t.diagnostic(`source POST to downstream user: ${Math.round(performance.now() - started)} ms`);
    assert.equal(remote.displayName, 'Pushed User');
    assert.equal(remote.name?.givenName, 'Pushed');
    assert.equal(remote.emails?.[0]?.value, 'pushed@example.test');

    const group = await entra.scim('POST', '/Groups', { displayName: 'Pushed Group', members: [] });
    await entra.scim('PATCH', `/Groups/${group.body['id']}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'Add', path: 'members', value: [{ value: created.body['id'] }] }],
    });
    const remoteGroup = await eventually('the group with its member downstream', async () => {
      const found = (await target.groups()).find((g) => g.displayName === 'Pushed Group');
      return found?.members?.length === 1 ? found : undefined;
    });
    assert.equal(remoteGroup.members?.[0]?.value, remote.id);

    await entra.scim('PATCH', `/Users/${created.body['id']}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'Replace', path: 'name.familyName', value: 'Renamed' }],
    });
    await eventually('the change downstream', async () =>
      (await target.users()).find((u) => u.userName === 'pushed@example.test')?.name?.familyName === 'Renamed'
        ? true
        : undefined,
    );
    assert.equal((await entra.scim('DELETE', `/Users/${created.body['id']}`)).status, 204);
    await eventually('the user gone downstream', async () =>
      (await target.users()).some((u) => u.userName === 'pushed@example.test') ? undefined : true,
    );
    assert.equal((await target.groups()).find((g) => g.displayName === 'Pushed Group')?.members?.length ?? 0, 0);
  });

  test("scimflow's scim2 plugin provisions a directory into another scimflow's source; both directories end equal", async (t) => {
    const upstream = await incrementalWorld(t, { relay: false });
    const downstreamDb = await createTestDatabase();
    t.after(() => downstreamDb.drop());
    const source = await sourceOn(t, downstreamDb.db, 'upstream');

    const users = [];
    for (let i = 0; i < 12; i += 1)
      users.push(await createUser(upstream.db, { ...person(i, 'rt'), active: i % 5 !== 0 }));
    await createUser(upstream.db, { username: 'no-name@example.test', active: true, kind: 'internal', attributes: {} });
    const engineers = await createGroup(upstream.db, { name: 'Engineers', attributes: {} });
    const everyone = await createGroup(upstream.db, { name: 'Everyone', attributes: {} });
    await createGroup(upstream.db, { name: 'Empty', attributes: {} });
    await addMembers(
      upstream.db,
      engineers.id,
      users.slice(0, 4).map((u) => u.id),
    );
    await addMembers(
      upstream.db,
      everyone.id,
      users.map((u) => u.id),
    );

    const provider = await createProvider(
      upstream.db,
      upstream.secrets,
      testProviderInput(upstream.target, 'rt', { baseUrl: source.base, auth: { mode: 'bearer', token: source.token } }),
    );
    const run = await endedRun(upstream.db, (await upstream.control.requestFullSync(provider, {})).runId);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));

    const expected = await snapshot(upstream.db, { skipServiceAccounts: true });
    // The default user mapping sends userName as displayName when a user has none (sandbox/defaults.ts).
    for (const user of expected.users) user.display_name ??= user.username;
    const actual = await snapshot(downstreamDb.db, { skipServiceAccounts: true });
    assert.deepEqual(actual.users, expected.users);
    assert.deepEqual(actual.groups, expected.groups);
    assert.equal(expected.users.length, 13);

    // A second full sync finds nothing to change: what the source answers matches what was sent.
    const second = await endedRun(upstream.db, (await upstream.control.requestFullSync(provider, {})).runId);
    assert.equal(second.status, 'succeeded');
    const counts = await upstream.db.query<{ created: number; updated: number; deleted: number }>(
      'SELECT created, updated, deleted FROM sync_runs ORDER BY started_at DESC LIMIT 1',
    );
    assert.deepEqual(counts.rows[0], { created: 0, updated: 0, deleted: 0 });
  });
});
