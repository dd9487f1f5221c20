/**
 * The conformance kit: one scenario set every plugin runs against its emulator (or a real independent server),
 * through a real worker on Temporal and a real database. After each step the target's store is compared object by
 * object with the directory: every user by externalId (userName, displayName, active), every group (displayName
 * and its members, as the target's own user ids). Steps share one world and run in order:
 *   1. adoption + full sync: a user already on the target is adopted, not duplicated; 260 users and three groups
 *      (one with 250 members) are created with their memberships;
 *   2. an attribute change; 3. membership adds and removes (110 removes from the big group);
 *   4. deprovisioning of a deleted user (deleted, or deactivated where the target only deactivates);
 *   5. a rate-limit storm: the next requests answered 429 with Retry-After, and the sync still ends exact.
 * A plugin author calls `describeConformance` from the plugin's test with a function that starts the emulator.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { stableUid } from '../../activities/index.ts';
import {
  addMembers,
  createGroup,
  createProvider,
  createUser,
  deleteUser,
  removeMember,
  updateUser,
  type Db,
  type ProviderInput,
  type ProviderView,
} from '../../db/index.ts';
import type { CommonOptions } from '../../plugins/index.ts';
import type { ScimGroup } from '../../scim/index.ts';
import type { ScimTarget } from '../servers/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';
import { testProviderInput } from '../support/providers.ts';

/** What a plugin brings to the kit. */
export interface ConformanceSpec {
  /** The plugin id under test. */
  plugin: string;
  /** Names the target in test titles, e.g. "the AWS emulator". */
  against: string;
  /** Starts a fresh target (emulator) for the run; the kit closes it. */
  start(): Promise<ScimTarget>;
  /** Provider settings (pluginOptions, rateLimit, …) over the kit's defaults. */
  provider?: Partial<ProviderInput>;
  /**
   * What the target does not support and does not say (its ServiceProviderConfig has no word for it), set as a
   * provider's `pluginOptions.capabilities` override would be: better-auth refuses `or` filters with 400.
   */
  capabilities?: CommonOptions['capabilities'];
  /** The target cannot create groups (Salesforce's public groups): the kit puts them there first, to be adopted. */
  groupsExist?: boolean;
  /** What the target does with a user the directory deleted: deletes it, or keeps it inactive. */
  deprovisioned: 'deleted' | 'inactive';
  /** Extra checks on every request the target received during the whole run (vendor limits, say). */
  checkRequests?(requests: Awaited<ReturnType<ScimTarget['requests']>>): void;
}

const USERS = 260;
const BIG_GROUP = 250;

/** Defines the scenario set as one `describe` of ordered tests. */
export function describeConformance(spec: ConformanceSpec): void {
  describe(`conformance of the ${spec.plugin} plugin against ${spec.against}`, () => {
    let testDb: TestDatabase;
    let engine: TestEngine;
    let target: ScimTarget;
    let provider: ProviderView;
    let userIds: string[] = [];
    const groupIds = new Map<string, string>();
    /** Directory users deleted in the deprovisioning step, by their externalId. */
    const gone: string[] = [];

    before(async () => {
      testDb = await createTestDatabase();
      engine = await startTestEngine({ db: testDb.db });
      target = await spec.start();
      provider = await createProvider(
        testDb.db,
        engine.secrets,
        testProviderInput(target, spec.plugin, {
          plugin: spec.plugin,
          pageSize: 50,
          concurrency: 4,
          ...spec.provider,
          ...(spec.capabilities === undefined
            ? {}
            : { pluginOptions: { ...(spec.provider?.pluginOptions ?? {}), capabilities: spec.capabilities } }),
        }),
      );
      userIds = await seedUsers(testDb.db);
      const groups = {
        'small-a': userIds.slice(0, 6),
        'small-b': userIds.slice(3, 10),
        big: userIds.slice(10, 10 + BIG_GROUP),
      };
      for (const [name, members] of Object.entries(groups)) {
        groupIds.set(name, (await createGroup(testDb.db, { name, attributes: {}, members })).id);
      }
    });

    after(async () => {
      await target?.close();
      await engine?.shutdown();
      await testDb?.drop();
    });

    async function sync() {
      const { report } = await engine.fullSync(provider);
      assert.equal(report.status, 'succeeded');
      if (report.failed > 0) {
        const { rows } = await testDb.db.query<{ object_type: string; last_error: unknown }>(
          'SELECT object_type, last_error FROM provider_links WHERE provider_id = $1 AND last_error IS NOT NULL',
          [provider.id],
        );
        assert.fail(`${report.failed} object(s) failed: ${JSON.stringify(rows)}`);
      }
      return report;
    }

    /** The target's store equals the directory, object by object. */
    async function assertMatchesDirectory(): Promise<void> {
      const remoteUsers = await target.users();
      const remoteGroups = await target.groups();
      const byExternalId = new Map(remoteUsers.map((user) => [user.externalId, user]));
      const { rows: users } = await testDb.db.query<{ id: string; username: string; display_name: string }>(
        'SELECT id, username, display_name FROM users ORDER BY username',
      );
      for (const user of users) {
        const remote = byExternalId.get(stableUid(user.id));
        assert.ok(remote, `${user.username} is on the target`);
        assert.deepEqual(
          { userName: remote.userName, displayName: remote.displayName, active: remote.active },
          { userName: user.username, displayName: user.display_name, active: true },
        );
      }
      for (const externalId of gone) {
        const remote = byExternalId.get(externalId);
        if (spec.deprovisioned === 'deleted') assert.equal(remote, undefined, 'a deleted user is gone');
        else assert.equal(remote?.active, false, 'a deleted user is kept inactive');
      }
      assert.equal(remoteUsers.length, users.length + (spec.deprovisioned === 'inactive' ? gone.length : 0));

      const remoteIdOf = new Map(users.map((user) => [user.id, byExternalId.get(stableUid(user.id))?.id]));
      const { rows: groups } = await testDb.db.query<{ id: string; name: string; members: string[] }>(
        `SELECT g.id, g.name, coalesce(array_agg(m.user_id) FILTER (WHERE m.user_id IS NOT NULL), '{}') AS members
           FROM groups g LEFT JOIN group_members m ON m.group_id = g.id GROUP BY g.id, g.name`,
      );
      assert.equal(remoteGroups.length, groups.length);
      for (const group of groups) {
        const remote = remoteGroups.find((candidate) => candidate.externalId === stableUid(group.id));
        assert.ok(remote, `group ${group.name} is on the target`);
        assert.equal(remote.displayName, group.name);
        assert.deepEqual(
          memberIds(remote),
          group.members.map((id) => remoteIdOf.get(id)).sort(),
          `members of ${group.name}`,
        );
      }
    }

    test(`adopts the user already on the target, and creates every other user${spec.groupsExist ? ', adopts the groups, ' : ', group'} and membership`, async () => {
      const existing = await target.seedUser({
        userName: 'user000@example.test',
        displayName: 'Already There',
        name: { givenName: 'Already', familyName: 'There' },
        emails: [{ value: 'user000@example.test', primary: true }],
      });
      if (spec.groupsExist) for (const name of groupIds.keys()) await target.seedGroup({ displayName: name });
      const report = await sync();
      const adoptedGroups = spec.groupsExist ? 3 : 0;
      assert.equal(report.created, USERS - 1 + 3 - adoptedGroups);
      assert.equal(
        report.updated,
        1 + adoptedGroups,
        'what is already on the target is adopted and brought up to date',
      );
      const adopted = (await target.users()).find((user) => user.userName === 'user000@example.test');
      assert.equal(adopted?.id, existing.id, 'adopted under its own id, not created again');
      assert.equal((await target.groups()).find((group) => group.displayName === 'big')?.members?.length, BIG_GROUP);
      await assertMatchesDirectory();
    });

    test('an attribute change reaches the target', async () => {
      await updateUser(testDb.db, userIds[1]!, { displayName: 'Renamed Person' });
      const report = await sync();
      assert.equal(report.updated, 1);
      await assertMatchesDirectory();
    });

    test('membership adds and removes reach the target, 110 removals from the big group included', async () => {
      await addMembers(testDb.db, groupIds.get('small-a')!, [userIds[8]!]);
      await removeMember(testDb.db, groupIds.get('small-a')!, userIds[0]!);
      for (const id of userIds.slice(10, 120)) await removeMember(testDb.db, groupIds.get('big')!, id);
      await addMembers(testDb.db, groupIds.get('big')!, userIds.slice(0, 3));
      const report = await sync();
      assert.equal(report.updated, 2);
      await assertMatchesDirectory();
    });

    test(`a user deleted from the directory is ${spec.deprovisioned === 'deleted' ? 'deleted' : 'deactivated'} on the target`, async () => {
      const id = userIds[2]!;
      gone.push(stableUid(id));
      await deleteUser(testDb.db, id);
      await sync();
      await assertMatchesDirectory();
    });

    test('a storm of 429s with Retry-After delays the sync but it still ends exact', async () => {
      const earlier = (await target.requests()).length;
      await target.failNext({ status: 429, headers: { 'retry-after': '1' }, times: 6 });
      for (const id of userIds.slice(20, 26)) await updateUser(testDb.db, id, { displayName: `Stormy ${id}` });
      const report = await sync();
      assert.equal(report.updated, 6);
      const refused = (await target.requests()).slice(earlier).filter((request) => request.status === 429);
      assert.equal(refused.length, 6, 'the storm happened');
      await assertMatchesDirectory();
    });

    test('every request the target received kept to its rules', async () => {
      const requests = await target.requests();
      assert.ok(requests.length > 0);
      // 429s are the storm's; a 404 only answers the DELETE of something already gone.
      const refused = requests.filter(
        (request) =>
          request.status >= 400 && request.status !== 429 && !(request.status === 404 && request.method === 'DELETE'),
      );
      assert.deepEqual(refused, [], 'no request was refused');
      spec.checkRequests?.(requests);
    });
  });
}

function memberIds(group: ScimGroup): Array<string | undefined> {
  return (group.members ?? []).map((member) => member.value).sort();
}

/** Seeds USERS directory users `user000@example.test`…, with the names every vendor requires. */
async function seedUsers(db: Db): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < USERS; i += 1) {
    const n = String(i).padStart(3, '0');
    const user = await createUser(db, {
      username: `user${n}@example.test`,
      displayName: `User ${n}`,
      email: `user${n}@example.test`,
      givenName: 'User',
      familyName: `Number ${n}`,
      active: true,
      kind: 'internal',
      attributes: {},
    });
    ids.push(user.id);
  }
  return ids;
}
