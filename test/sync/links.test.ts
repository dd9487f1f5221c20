import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { LinkWriter } from '../../activities/batch-recorder.ts';
import { stableUid } from '../../activities/payload-hash.ts';
import {
  addMembers,
  createGroup,
  createProvider,
  createSecretBox,
  createUser,
  deleteUser,
  generateSecretKey,
  makeLink,
  migrate,
  saveLinks,
  type Db,
} from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { startFaultWorld as world } from '../support/fault-world.ts';
import { testProviderInput } from '../support/providers.ts';

function newUser(db: Db, username: string) {
  return createUser(db, {
    username,
    displayName: username,
    email: username,
    givenName: 'Test',
    familyName: username,
    active: true,
    kind: 'internal',
    attributes: {},
  });
}

/**
 * A user as a database from before usernames were unique in any letter case may hold it, beside another in another
 * letter case (the directory's writes now refuse it): its row and its outbox row, written straight in SQL.
 */
async function preRuleUser(db: Db, username: string): Promise<{ id: string; username: string }> {
  const { rows } = await db.query<{ id: string; username: string }>(
    `INSERT INTO users (username, display_name, email, given_name, family_name) VALUES ($1, $1, $1, 'Test', $1)
     RETURNING id, username`,
    [username],
  );
  await db.query(`INSERT INTO outbox (object_type, object_id, change) VALUES ('user', $1, 'created')`, [rows[0]!.id]);
  return rows[0]!;
}

interface LinkRow {
  local_id: string;
  remote_id: string | null;
  status: string;
  last_error: { code: string; details?: Record<string, unknown> } | null;
}

async function linksOf(db: Db, providerId: string, type: 'user' | 'group'): Promise<Map<string, LinkRow>> {
  const { rows } = await db.query<LinkRow>(
    'SELECT local_id, remote_id, status, last_error FROM provider_links WHERE provider_id = $1 AND object_type = $2',
    [providerId, type],
  );
  return new Map(rows.map((row) => [row.local_id, row]));
}

describe('one remote object, one link', () => {
  test('two directory users whose userNames differ only in case never link one remote user: one adopts it, the other is refused with ERR_LINK_CONFLICT', async (t) => {
    const { db, engine, target, proxy, newProvider } = await world(t, {
      seed: 5,
      rates: { serverError: 0.15, resetAfter: 0.1 },
    });
    const existing = await target.seedUser({ userName: 'Alice@x.test', displayName: 'Alice from the target' });
    const upper = await newUser(db, 'Alice@x.test');
    const lower = await preRuleUser(db, 'alice@x.test');
    const others = [];
    for (let i = 0; i < 20; i += 1) others.push(await newUser(db, `other${i}@x.test`));
    const provider = await newProvider({ concurrency: 4 });

    const { report } = await engine.fullSync(provider);
    assert.equal(report.status, 'succeeded');
    assert.equal(report.failed, 1, 'the second claimant is refused');
    assert.equal(report.retrying, 0);

    const links = await linksOf(db, provider.id, 'user');
    const holders = [...links.values()].filter((link) => link.remote_id === existing.id);
    assert.equal(holders.length, 1, 'the remote user is linked once');
    const winner = holders[0]!.local_id;
    const loser = winner === upper.id ? lower : upper;
    assert.ok([upper.id, lower.id].includes(winner));
    const refused = links.get(loser.id)!;
    assert.equal(refused.status, 'failed');
    assert.equal(refused.remote_id, null);
    assert.equal(refused.last_error?.code, 'ERR_LINK_CONFLICT');
    assert.deepEqual(refused.last_error?.details, { remoteId: existing.id, linkedTo: winner });

    // The remote user was written by its holder only: the refused one sent nothing to it.
    const winnerName = winner === upper.id ? upper.username : lower.username;
    const writes = (await target.requests()).filter((r) => r.method === 'PUT' && r.path === `/Users/${existing.id}`);
    assert.ok(writes.length > 0);
    for (const write of writes) assert.equal((write.body as { userName: string }).userName, winnerName);
    const remote = await target.users();
    assert.deepEqual(
      remote.map((u) => u.userName.toLowerCase()).sort(),
      ['alice@x.test', ...others.map((u) => u.username)].sort(),
      'each user once',
    );
    assert.equal(remote.find((u) => u.id === existing.id)?.externalId, stableUid(winner));
    for (const user of others) assert.equal(links.get(user.id)?.status, 'ok');
    const faults = proxy.counts();
    assert.ok(faults['server-error'] + faults['reset-after'] > 0, 'the sync went through faults');

    // The next sync refuses it again and sends nothing to the remote user for it. Which refusal depends on the
    // target: SCIMMY filters userName case-sensitively, so a lookup of the loser's name alone may miss the remote user
    // (now named as its holder), and the target then refuses the create (its uniqueness ignores case).
    const again = await engine.fullSync(provider);
    assert.equal(again.report.failed, 1);
    const refusedAgain = (await linksOf(db, provider.id, 'user')).get(loser.id);
    assert.equal(refusedAgain?.remote_id, null);
    assert.ok(['ERR_LINK_CONFLICT', 'ERR_SCIM_CONFLICT'].includes(refusedAgain?.last_error?.code ?? ''));
    for (const write of (await target.requests()).filter(
      (r) => r.path === `/Users/${existing.id}` && r.method !== 'GET',
    )) {
      assert.equal((write.body as { userName: string }).userName, winnerName);
    }
    assert.equal((await target.users()).length, 21);
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT remote_id FROM provider_links WHERE provider_id = $1 AND remote_id IS NOT NULL
         GROUP BY object_type, remote_id HAVING count(*) > 1) d`,
      [provider.id],
    );
    assert.equal(Number(rows[0]!.n), 0, 'no remote id is linked twice');
  });

  test('a provider adopting by externalId only adopts the remote user whose externalId matches, and no user by its userName', async (t) => {
    const { db, engine, target, newProvider } = await world(t, { seed: 6, rates: { serverError: 0.1 } });
    const byId = await newUser(db, 'dave@x.test');
    const byName = await newUser(db, 'erin@x.test');
    const fresh = await newUser(db, 'frank@x.test');
    const matchingId = await target.seedUser({ userName: 'dave.old@x.test', externalId: stableUid(byId.id) });
    const matchingName = await target.seedUser({ userName: 'Erin@x.test', displayName: 'Not ours' });
    const provider = await newProvider({ adoptBy: 'externalId' });

    const { report } = await engine.fullSync(provider);
    assert.equal(report.status, 'succeeded');
    const links = await linksOf(db, provider.id, 'user');
    assert.equal(links.get(byId.id)?.remote_id, matchingId.id, 'adopted by its externalId');
    assert.equal(links.get(byName.id)?.status, 'failed', 'a userName match is not adopted');
    assert.equal(links.get(byName.id)?.last_error?.code, 'ERR_SCIM_CONFLICT');
    assert.equal(links.get(byName.id)?.remote_id, null);
    assert.equal(links.get(fresh.id)?.status, 'ok');
    const remote = await target.users();
    assert.equal(remote.find((u) => u.id === matchingId.id)?.userName, 'dave@x.test');
    const untouched = remote.find((u) => u.id === matchingName.id);
    assert.deepEqual([untouched?.userName, untouched?.displayName], ['Erin@x.test', 'Not ours'], 'left as it was');
    assert.equal((await target.requests()).filter((r) => r.path === `/Users/${matchingName.id}`).length, 0);
    assert.equal(remote.length, 3);

    // erin leaves the directory. Her refused create is kept on her link as sent, but the account made under her
    // name by someone else does not carry the externalId scimflow sent: it is not hers to remove.
    await deleteUser(db, byName.id);
    const after = await engine.fullSync(provider);
    assert.equal(after.report.status, 'succeeded');
    assert.equal(after.report.deleted, 0);
    const kept = (await target.users()).find((u) => u.id === matchingName.id);
    assert.deepEqual([kept?.userName, kept?.displayName], ['Erin@x.test', 'Not ours'], 'still there, as it was');
    assert.equal((await target.requests()).filter((r) => r.path === `/Users/${matchingName.id}`).length, 0);
    assert.equal((await linksOf(db, provider.id, 'user')).has(byName.id), false, 'her link is gone');
  });

  test("a remote id whose create's link is still waiting to be written cannot be claimed by another object", async (t) => {
    const testDb = await createTestDatabase();
    t.after(() => testDb.drop());
    const { db } = testDb;
    const target = { url: 'http://127.0.0.1:9/scim/v2', token: 'unused' } as Parameters<typeof testProviderInput>[0];
    const provider = await createProvider(db, createSecretBox(generateSecretKey()), testProviderInput(target, 'w'));
    const [other, ada, bob] = [
      await newUser(db, 'other@x.test'),
      await newUser(db, 'ada@x.test'),
      await preRuleUser(db, 'ADA@x.test'),
    ];
    const writer = new LinkWriter(db);
    const link = (localId: string, remoteId: string) =>
      makeLink(provider.id, 'user', localId, { remoteId, lastPayloadHash: 'h', status: 'ok' });
    // A write under way (held by a row lock), so that ada's link, for the user her create just made, waits its turn.
    await saveLinks(db, [link(other.id, 'remote-other')]);
    const locker = await db.connect();
    let holder: string | null;
    let before: Promise<void>;
    let created: Promise<void>;
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM provider_links WHERE local_id = $1 FOR UPDATE', [other.id]);
      before = writer.save(link(other.id, 'remote-other'));
      created = writer.save(link(ada.id, 'remote-ada'));
      // Meanwhile bob, whose create was refused as a duplicate, found that same remote user by its userName.
      holder = await writer.claim(link(bob.id, 'remote-ada'));
    } finally {
      await locker.query('COMMIT');
      locker.release();
    }
    assert.equal(holder, ada.id, 'the claim names the user whose link is on its way');
    await Promise.all([before, created]);
    const links = await linksOf(db, provider.id, 'user');
    assert.equal(links.get(ada.id)?.remote_id, 'remote-ada');
    assert.equal(links.has(bob.id), false, 'nothing is written for the refused claim');
  });

  test('migration 0010 keeps a remote id shared by several links on one of them and refuses the others', async (t) => {
    const testDb = await createTestDatabase();
    t.after(() => testDb.drop());
    const { db } = testDb;
    const target = { url: 'http://127.0.0.1:9/scim/v2', token: 'unused' } as Parameters<typeof testProviderInput>[0];
    const provider = await createProvider(db, createSecretBox(generateSecretKey()), testProviderInput(target, 'm'));
    const users = [await newUser(db, 'A@x.test'), await preRuleUser(db, 'a@x.test'), await newUser(db, 'b@x.test')];
    // The schema as it was before 0010: no unique index, so two links could share a remote id.
    await db.query(`DROP INDEX provider_links_remote_key;
      CREATE INDEX provider_links_remote_idx ON provider_links (provider_id, object_type, remote_id);
      ALTER TABLE providers DROP COLUMN adopt_by;
      DELETE FROM schema_migrations WHERE name = '0010_unique_remote_links.sql'`);
    const link = (localId: string, remoteId: string, status: string, syncedAt: string) =>
      db.query(
        `INSERT INTO provider_links (provider_id, object_type, local_id, remote_id, last_payload_hash, status, synced_at)
         VALUES ($1, 'user', $2, $3, 'h', $4, $5)`,
        [provider.id, localId, remoteId, status, syncedAt],
      );
    await link(users[0]!.id, 'r1', 'retrying', '2026-01-01');
    await link(users[1]!.id, 'r1', 'ok', '2026-01-02');
    await link(users[2]!.id, 'r2', 'ok', '2026-01-01');

    assert.deepEqual(await migrate(db), ['0010_unique_remote_links.sql']);
    const links = await linksOf(db, provider.id, 'user');
    assert.equal(links.get(users[1]!.id)?.remote_id, 'r1', 'the ok link keeps the remote id');
    assert.equal(links.get(users[0]!.id)?.remote_id, null);
    assert.equal(links.get(users[0]!.id)?.status, 'failed');
    assert.equal(links.get(users[0]!.id)?.last_error?.code, 'ERR_LINK_CONFLICT');
    assert.equal(links.get(users[2]!.id)?.remote_id, 'r2');
    await assert.rejects(link(randomUUID(), 'r2', 'ok', '2026-01-03'), /provider_links_remote_key/);
  });
});

describe('a group created before its members are sent', () => {
  test('is linked as soon as it exists: member requests cut off after the target wrote them never lead to a second POST', async (t) => {
    // A target that cannot filter: nothing but the link can find the group again.
    const { db, engine, target, proxy, newProvider } = await world(
      t,
      // Every member PATCH is cut off, before or after the target applied it, until the faults stop.
      { seed: 7, rates: { resetAfter: 0.5, resetBefore: 0.5 }, applies: ({ method }) => method === 'PATCH' },
      { target: { filter: false }, targets: { retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 20 } } },
    );
    const users = [];
    for (let i = 0; i < 7; i += 1) users.push(await newUser(db, `member${i}@x.test`));
    const group = await createGroup(db, { name: 'big', attributes: {}, members: [] });
    await addMembers(
      db,
      group.id,
      users.map((u) => u.id),
    );
    // Two members per request: the POST carries two, PATCHes add the other five.
    const provider = await newProvider({ pluginOptions: { maxMembersPerRequest: 2 } });

    const first = await engine.fullSync(provider);
    assert.equal(first.report.status, 'succeeded');
    assert.equal(first.report.retrying, 1, 'the group is left retrying');
    const [remoteGroup] = await target.groups();
    const link = (await linksOf(db, provider.id, 'group')).get(group.id);
    assert.equal(link?.status, 'retrying');
    assert.equal(link?.remote_id, remoteGroup!.id, 'its remote id is known');
    assert.ok(proxy.counts()['reset-after'] + proxy.counts()['reset-before'] > 0);

    proxy.setRates({});
    const second = await engine.fullSync(provider);
    assert.equal(second.report.retrying, 0);
    assert.equal(second.report.failed, 0);
    const groups = await target.groups();
    assert.equal(groups.length, 1, 'one group on the target');
    const remoteUsers = await target.users();
    assert.deepEqual(
      groups[0]!.members?.map((m) => m.value).sort(),
      remoteUsers.map((u) => u.id).sort(),
      'with exactly its seven members',
    );
    const posts = (await target.requests()).filter((r) => r.method === 'POST' && r.path === '/Groups');
    assert.equal(posts.length, 1, 'the group was POSTed once');
    assert.equal((await linksOf(db, provider.id, 'group')).get(group.id)?.status, 'ok');
  });
});
