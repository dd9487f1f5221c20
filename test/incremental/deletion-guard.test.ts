import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addMembers,
  attachMappings,
  createGroup,
  createMapping,
  createUser,
  deleteGroup,
  importDirectory,
  removeMember,
  updateProvider,
  type Db,
  type DirectoryUser,
  type ProviderView,
} from '../../db/index.ts';
import { accessGroupWith, eventually, fullSyncRun as fullSync, incrementalWorld, person } from './harness.ts';

/** Imports `count` users; `offboarded` sets the attribute the skip mapping below looks at. */
async function importPeople(db: Db, count: number, offboarded: boolean) {
  const users = Array.from({ length: count }, (_, i) => ({
    ...person(i),
    attributes: offboarded ? { offboarded } : {},
  }));
  await importDirectory(db, { users, groups: [] });
  return users.map((u) => u.username);
}

/** Attaches to the provider a user mapping that throws SkipObject for every offboarded user. */
async function attachSkipMapping(db: Db, provider: ProviderView) {
  const mapping = await createMapping(db, {
    name: 'skip-offboarded',
    objectType: 'user',
    expression: `if (user.attributes.offboarded) throw new SkipObject('offboarded'); return null;`,
  });
  await attachMappings(db, provider.id, [mapping.id]);
}

/** Every one of `usernames` is still on the target; then a full sync a person allowed removes them all. */
async function stillThereUntilAllowed(
  { db, target, control }: Awaited<ReturnType<typeof incrementalWorld>>,
  provider: ProviderView,
  usernames: string[],
) {
  assert.deepEqual((await target.users()).map((u) => u.userName).sort(), usernames.sort(), 'every user is still there');
  const allowed = await fullSync(db, control, provider, true);
  assert.equal(allowed.status, 'succeeded');
  assert.equal(allowed.deleted, usernames.length);
  assert.equal((await target.users()).length, 0);
}

describe('the deletion guard', () => {
  test('a full sync that would remove more than the deletion limit removes nothing until a person allows it', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    const { access, users } = await accessGroupWith(db, 6);
    const provider = await newProvider({
      deletionLimit: 3,
      scope: { includeServiceAccounts: false, accessGroups: [access.id] },
    });
    assert.equal((await fullSync(db, control, provider)).status, 'succeeded');
    assert.equal((await target.users()).length, 6);

    for (const u of users.slice(1)) await removeMember(db, access.id, u.id);
    const held = await fullSync(db, control, provider);
    assert.equal(held.status, 'failed');
    assert.equal(held.error?.code, 'ERR_DELETION_GUARD');
    assert.match(
      held.error?.message ?? '',
      /would delete 5 remote objects, more than its deletion limit of 3; nothing was removed/,
    );
    assert.equal(held.deleted, 0);
    assert.equal((await target.users()).length, 6, 'no user was removed from the target');

    const allowed = await fullSync(db, control, provider, true);
    assert.equal(allowed.status, 'succeeded');
    assert.equal(allowed.deleted, 5);
    assert.deepEqual(
      (await target.users()).map((u) => u.userName),
      [users[0]!.username],
    );

    // Consent is for one run: within the limit, later syncs remove without asking.
    await removeMember(db, access.id, users[0]!.id);
    const within = await fullSync(db, control, provider);
    assert.equal(within.status, 'succeeded');
    assert.equal((await target.users()).length, 0);
  });

  test('incremental pushes hold back removals above the limit, and an allowed full sync makes them', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t);
    const access = await createGroup(db, { name: 'app-users', attributes: {} });
    const provider = await newProvider({
      deletionLimit: 2,
      scope: { includeServiceAccounts: false, accessGroups: [access.id] },
    });
    const users: DirectoryUser[] = [];
    for (let i = 0; i < 5; i += 1) users.push(await createUser(db, person(i)));
    await addMembers(
      db,
      access.id,
      users.map((u) => u.id),
    );
    // The group too, so that what follows has only removals to make.
    await eventually('5 users and their group provisioned', async () => {
      const group = (await target.groups()).find((g) => g.displayName === 'app-users');
      return (await target.users()).length === 5 && group?.members?.length === 5 ? true : undefined;
    });

    // The access group cannot be deleted while the provider's scope names it; an import empties it by mistake, and
    // every user leaves scope at once.
    await assert.rejects(deleteGroup(db, access.id), { code: 'ERR_CONFLICT' });
    await importDirectory(db, { users: [], groups: [{ name: 'app-users', attributes: {}, members: [] }] });
    // Five users would go: every one of those removals is held back, in whichever batch.
    const held = await eventually(
      'the removals held back',
      async () => {
        const { rows } = await db.query<{ local_id: string }>(
          `SELECT DISTINCT e.local_id FROM sync_events e JOIN sync_runs r ON r.id = e.run_id
            WHERE r.kind = 'incremental' AND e.action = 'skip' AND e.detail ->> 'reason' = 'deletion guard'`,
        );
        return rows.length === 5 ? rows.map((row) => row.local_id).sort() : undefined;
      },
      30_000,
    );
    assert.deepEqual(held, users.map((u) => u.id).sort());
    // Events are written before a push closes its run: wait for the pushes to end before reading their outcome.
    await eventually('the pushes ended', async () => {
      const { rows } = await db.query(`SELECT 1 FROM sync_runs WHERE kind = 'incremental' AND status = 'running'`);
      return rows.length === 0 ? true : undefined;
    });
    const { rows: runs } = await db.query<{ deleted: number; status: string; code: string | null }>(
      `SELECT deleted, status, error ->> 'code' AS code FROM sync_runs WHERE kind = 'incremental' AND error IS NOT NULL`,
    );
    assert.ok(runs.length > 0);
    for (const run of runs)
      assert.deepEqual(
        { ...run, deleted: Number(run.deleted) },
        { deleted: 0, status: 'failed', code: 'ERR_DELETION_GUARD' },
      );
    assert.equal((await target.users()).length, 5, 'no user was removed from the target');

    const allowed = await fullSync(db, control, provider, true);
    assert.equal(allowed.status, 'succeeded');
    assert.equal(allowed.deleted, 5);
    assert.equal((await target.users()).length, 0);
    assert.deepEqual(
      (await target.groups()).map((g) => [g.displayName, g.members ?? []]),
      [['app-users', []]],
      'the emptied group stays, with no members',
    );
  });

  test('groups deleted from the directory are held back by the guard too, until a person allows it', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t);
    const provider = await newProvider({ deletionLimit: 1 });
    const member = await createUser(db, person(0));
    const groups = [];
    for (const name of ['design', 'sales', 'support']) {
      groups.push(await createGroup(db, { name, attributes: {}, members: [member.id] }));
    }
    await eventually('the three groups provisioned', async () =>
      (await target.groups()).length === 3 ? true : undefined,
    );

    for (const group of groups.slice(1)) await deleteGroup(db, group.id);
    const held = await eventually(
      'the group removals held back',
      async () => {
        const { rows } = await db.query<{ local_id: string }>(
          `SELECT DISTINCT e.local_id FROM sync_events e JOIN sync_runs r ON r.id = e.run_id
            WHERE r.kind = 'incremental' AND e.object_type = 'group' AND e.action = 'skip'
              AND e.detail ->> 'reason' = 'deletion guard'`,
        );
        return rows.length === 2 ? rows.map((row) => row.local_id).sort() : undefined;
      },
      30_000,
    );
    assert.deepEqual(
      held,
      groups
        .slice(1)
        .map((g) => g.id)
        .sort(),
    );
    assert.deepEqual(
      (await target.groups()).map((g) => g.displayName).sort(),
      ['design', 'sales', 'support'],
      'no group was removed from the target',
    );

    const allowed = await fullSync(db, control, provider, true);
    assert.equal(allowed.status, 'succeeded');
    assert.equal(allowed.deleted, 2);
    assert.deepEqual(
      (await target.groups()).map((g) => g.displayName),
      ['design'],
    );
    assert.equal((await target.users()).length, 1, 'the member stays');
  });

  test('in deactivate mode the guard counts deactivations: nothing is deactivated until a person allows it, and once done they are not counted again', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    const { access, users } = await accessGroupWith(db, 6);
    const provider = await newProvider({
      deprovision: 'deactivate',
      deletionLimit: 3,
      scope: { includeServiceAccounts: false, accessGroups: [access.id] },
    });
    assert.equal((await fullSync(db, control, provider)).status, 'succeeded');

    for (const u of users.slice(1)) await removeMember(db, access.id, u.id);
    const held = await fullSync(db, control, provider);
    assert.equal(held.status, 'failed');
    assert.equal(held.error?.code, 'ERR_DELETION_GUARD');
    assert.match(held.error?.message ?? '', /would deactivate 5 remote objects, more than its deletion limit of 3/);
    const activeOnTarget = async () =>
      (await target.users())
        .filter((u) => u.active)
        .map((u) => u.userName)
        .sort();
    assert.deepEqual(await activeOnTarget(), users.map((u) => u.username).sort(), 'no user was deactivated');

    const allowed = await fullSync(db, control, provider, true);
    assert.equal(allowed.status, 'succeeded');
    assert.equal(allowed.deleted, 5);
    assert.equal((await target.users()).length, 6, 'deactivated users stay on the target');
    assert.deepEqual(await activeOnTarget(), [users[0]!.username]);

    // The five deactivated users are done with: the next sync, without consent, neither counts nor touches them.
    await target.resetLog();
    const next = await fullSync(db, control, provider);
    assert.equal(next.status, 'succeeded');
    assert.equal(await target.writes(), 0);
  });

  test('in leave mode nothing is removed, so the guard never holds a sync back', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    const { access, users } = await accessGroupWith(db, 6);
    const provider = await newProvider({
      deprovision: 'leave',
      deletionLimit: 1,
      scope: { includeServiceAccounts: false, accessGroups: [access.id] },
    });
    assert.equal((await fullSync(db, control, provider)).status, 'succeeded');

    for (const u of users.slice(1)) await removeMember(db, access.id, u.id);
    const run = await fullSync(db, control, provider);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.deleted, 0);
    const remote = await target.users();
    assert.deepEqual(remote.map((u) => u.userName).sort(), users.map((u) => u.username).sort());
    assert.ok(
      remote.every((u) => u.active),
      'every user left as it was',
    );
  });

  test('a dry-run provider is not held back by the guard, and removes nothing', async (t) => {
    const { db, secrets, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    const { access, users } = await accessGroupWith(db, 6);
    const provider = await newProvider({
      deletionLimit: 1,
      scope: { includeServiceAccounts: false, accessGroups: [access.id] },
    });
    assert.equal((await fullSync(db, control, provider)).status, 'succeeded');
    const dryRun = await updateProvider(db, secrets, provider.id, { dryRun: true });

    for (const u of users.slice(1)) await removeMember(db, access.id, u.id);
    await target.resetLog();
    const run = await fullSync(db, control, dryRun);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(await target.writes(), 0, 'nothing was sent');
    assert.equal((await target.users()).length, 6);
    const { rows } = await db.query<{ local_id: string }>(
      `SELECT e.local_id FROM sync_events e JOIN sync_runs r ON r.id = e.run_id
        WHERE r.provider_id = $1 AND r.kind = 'full' AND e.action = 'delete' AND (e.detail ->> 'dryRun')::boolean`,
      [provider.id],
    );
    assert.deepEqual(
      rows.map((row) => row.local_id).sort(),
      users
        .slice(1)
        .map((u) => u.id)
        .sort(),
      'the deletions it would make are recorded',
    );
  });

  test('a mapping that skips every linked user removes nothing past the limit in a full sync until a person allows it', async (t) => {
    const world = await incrementalWorld(t, { relay: false });
    const { db, target, control, newProvider } = world;
    const usernames = await importPeople(db, 5, false);
    const provider = await newProvider({ deletionLimit: 2 });
    await attachSkipMapping(db, provider);
    assert.equal((await fullSync(db, control, provider)).status, 'succeeded');
    assert.equal((await target.users()).length, 5);

    await importPeople(db, 5, true);
    const held = await fullSync(db, control, provider);
    assert.equal(held.status, 'failed');
    assert.equal(held.error?.code, 'ERR_DELETION_GUARD');
    assert.match(held.error?.message ?? '', /would delete 5 remote objects, more than its deletion limit of 2/);
    assert.equal(held.deleted, 0);
    await stillThereUntilAllowed(world, provider, usernames);
  });

  test('a mapping that skips every linked user removes nothing past the limit in an incremental push', async (t) => {
    const world = await incrementalWorld(t);
    const { db, target, newProvider } = world;
    const provider = await newProvider({ deletionLimit: 2 });
    await attachSkipMapping(db, provider);
    const usernames = await importPeople(db, 5, false);
    await eventually('5 users provisioned', async () => ((await target.users()).length === 5 ? true : undefined));

    // One import offboards all five at once: one push, in which the mapping skips every one of them.
    await importPeople(db, 5, true);
    const run = await eventually('the push that held the removals back', async () => {
      const { rows } = await db.query<{ id: string; status: string; deleted: number; code: string | null }>(
        `SELECT id, status, deleted, error ->> 'code' AS code FROM sync_runs
          WHERE kind = 'incremental' AND status <> 'running' AND error IS NOT NULL`,
      );
      return rows[0];
    });
    assert.deepEqual(
      { ...run, deleted: Number(run.deleted), id: undefined },
      {
        id: undefined,
        status: 'failed',
        deleted: 0,
        code: 'ERR_DELETION_GUARD',
      },
    );
    const { rows: heldBack } = await db.query(
      `SELECT 1 FROM sync_events WHERE run_id = $1 AND action = 'skip' AND detail ->> 'reason' = 'deletion guard'`,
      [run.id],
    );
    assert.equal(heldBack.length, 5);
    await stillThereUntilAllowed(world, provider, usernames);
  });

  test('a provider without a deletion limit removes whatever left its scope', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    const { access, users } = await accessGroupWith(db, 4);
    const provider = await newProvider({
      deletionLimit: null,
      scope: { includeServiceAccounts: false, accessGroups: [access.id] },
    });
    await fullSync(db, control, provider);
    for (const u of users) await removeMember(db, access.id, u.id);
    const run = await fullSync(db, control, provider);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.deleted, 4);
    assert.equal((await target.users()).length, 0);
  });
});
