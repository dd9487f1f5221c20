/**
 * What the README promises about providers, checked on a real SCIMMY target through a real worker: dry runs,
 * deprovisioning of groups, reactivation, repair of remote objects deleted behind scimflow's back, service
 * accounts in scope, and the `ScimProvider` search attribute.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addMembers,
  createGroup,
  createUser,
  deleteGroup,
  deleteUser,
  removeMember,
  updateProvider,
  updateUser,
} from '../../db/index.ts';
import type { ScimTarget } from '../servers/index.ts';
import { accessGroupWith, eventually, fullSyncRun, incrementalWorld, person } from '../incremental/harness.ts';

/** Deletes a resource on the target directly, as someone working in the downstream app would. */
async function deleteOnTarget(target: ScimTarget, path: string): Promise<void> {
  const response = await fetch(`${target.url}${path}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${target.token}` },
  });
  assert.equal(response.status, 204, `DELETE ${path}`);
}

describe('provider modes on a real target', () => {
  test('a dry-run provider sends nothing, links nothing, and records what it would create', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    const users = [await createUser(db, person(1)), await createUser(db, person(2)), await createUser(db, person(3))];
    const group = await createGroup(db, { name: 'team', attributes: {}, members: users.map((u) => u.id) });
    const provider = await newProvider({ dryRun: true });

    const run = await fullSyncRun(db, control, provider);

    assert.equal(run.status, 'succeeded');
    assert.equal(await target.writes(), 0, 'no write reached the target');
    assert.deepEqual(await target.users(), []);
    const { rows: events } = await db.query<{ local_id: string; action: string; dry_run: boolean }>(
      `SELECT e.local_id, e.action, (e.detail ->> 'dryRun')::boolean AS dry_run FROM sync_events e
        JOIN sync_runs r ON r.id = e.run_id WHERE r.provider_id = $1 ORDER BY e.local_id`,
      [provider.id],
    );
    assert.deepEqual(
      events,
      [...users.map((u) => u.id), group.id].sort().map((id) => ({ local_id: id, action: 'create', dry_run: true })),
    );
    const { rows: links } = await db.query('SELECT 1 FROM provider_links WHERE provider_id = $1', [provider.id]);
    assert.equal(links.length, 0, 'a dry run leaves no link behind');
  });

  for (const mode of ['deactivate', 'leave'] as const) {
    test(`in ${mode} mode a group deleted from the directory is ${mode === 'deactivate' ? 'deleted from' : 'left on'} the target, and a deleted user leaves the groups that remain`, async (t) => {
      const { db, target, control, newProvider } = await incrementalWorld(t, { relay: false });
      const [ada, bob, cy] = [
        await createUser(db, person(1)),
        await createUser(db, person(2)),
        await createUser(db, person(3)),
      ];
      await createGroup(db, { name: 'team', attributes: {}, members: [ada.id, bob.id, cy.id] });
      const gone = await createGroup(db, { name: 'gone', attributes: {}, members: [ada.id, bob.id] });
      const provider = await newProvider({ deprovision: mode });
      assert.equal((await fullSyncRun(db, control, provider)).status, 'succeeded');
      const remoteId = new Map((await target.users()).map((u) => [u.userName, u.id]));

      await deleteGroup(db, gone.id);
      await deleteUser(db, cy.id);
      const run = await fullSyncRun(db, control, provider);

      assert.equal(run.status, 'succeeded');
      const groups = new Map(
        (await target.groups()).map((g) => [g.displayName, g.members?.map((m) => m.value).sort()]),
      );
      assert.deepEqual(groups.get('team'), [remoteId.get(ada.username), remoteId.get(bob.username)].sort());
      if (mode === 'deactivate') assert.equal(groups.has('gone'), false, 'the deleted group was deleted');
      else
        assert.deepEqual(
          groups.get('gone'),
          [remoteId.get(ada.username), remoteId.get(bob.username)].sort(),
          'the deleted group was left as last synced',
        );
      const remoteCy = (await target.users()).find((u) => u.userName === cy.username);
      assert.equal(
        remoteCy?.active,
        mode === 'leave',
        `the deleted user is ${mode === 'leave' ? 'left active' : 'deactivated'}`,
      );
      assert.equal(run.deleted, mode === 'deactivate' ? 2 : 0);

      await target.resetLog();
      assert.equal((await fullSyncRun(db, control, provider)).status, 'succeeded');
      assert.equal(await target.writes(), 0, 'nothing is deprovisioned twice');
    });
  }

  test('a deactivated user who comes back into scope is reactivated: the same remote user, active again', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    const { access, users } = await accessGroupWith(db, 2);
    const provider = await newProvider({
      deprovision: 'deactivate',
      scope: { includeServiceAccounts: false, accessGroups: [access.id] },
    });
    await fullSyncRun(db, control, provider);
    const before = (await target.users()).find((u) => u.userName === users[0]!.username);
    assert.equal(before?.active, true);

    await removeMember(db, access.id, users[0]!.id);
    await fullSyncRun(db, control, provider);
    assert.equal((await target.users()).find((u) => u.id === before.id)?.active, false);

    await addMembers(db, access.id, [users[0]!.id]);
    await target.resetLog();
    const run = await fullSyncRun(db, control, provider);

    assert.equal(run.status, 'succeeded');
    const after = (await target.users()).filter((u) => u.userName === users[0]!.username);
    assert.deepEqual(
      after.map((u) => [u.id, u.active]),
      [[before.id, true]],
      'reactivated in place, not created again',
    );
    assert.ok(
      !(await target.requests()).some((r) => r.method === 'POST' && r.path === '/Users'),
      'no user was created',
    );
    const team = (await target.groups()).find((g) => g.displayName === 'app-users');
    assert.ok(
      team?.members?.some((m) => m.value === before.id),
      'and back in the access group',
    );
  });

  test('a user or group deleted on the target behind scimflow is created again at its next change', async (t) => {
    const { db, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    const [ada, bob] = [await createUser(db, person(1)), await createUser(db, person(2))];
    const team = await createGroup(db, { name: 'team', attributes: {}, members: [ada.id] });
    const provider = await newProvider();
    await fullSyncRun(db, control, provider);
    const oldAda = (await target.users()).find((u) => u.userName === ada.username)!;
    const oldTeam = (await target.groups()).find((g) => g.displayName === 'team')!;
    await deleteOnTarget(target, `/Users/${oldAda.id}`);
    await deleteOnTarget(target, `/Groups/${oldTeam.id}`);

    await updateUser(db, ada.id, { displayName: 'Ada, again' });
    await addMembers(db, team.id, [bob.id]);
    await target.resetLog();
    const run = await fullSyncRun(db, control, provider);

    assert.equal(run.status, 'succeeded');
    const notFound = (await target.requests()).filter((r) => r.status === 404).map((r) => r.method);
    assert.deepEqual(notFound.sort(), ['PATCH', 'PUT'], 'the update of each answered 404');
    const newAda = (await target.users()).find((u) => u.userName === ada.username);
    assert.ok(newAda && newAda.id !== oldAda.id, 'ada was created again');
    assert.equal(newAda.displayName, 'Ada, again');
    const remoteBob = (await target.users()).find((u) => u.userName === bob.username)!;
    const newTeam = (await target.groups()).find((g) => g.displayName === 'team');
    assert.ok(newTeam && newTeam.id !== oldTeam.id, 'the group was created again');
    assert.deepEqual(newTeam.members?.map((m) => m.value).sort(), [newAda.id, remoteBob.id].sort());
    const { rows } = await db.query<{ remote_id: string }>(
      `SELECT remote_id FROM provider_links WHERE provider_id = $1 AND local_id = ANY($2) ORDER BY object_type DESC`,
      [provider.id, [ada.id, team.id]],
    );
    assert.deepEqual(
      rows.map((row) => row.remote_id),
      [newAda.id, newTeam.id],
      'the links point at the new objects',
    );
    await target.resetLog();
    await fullSyncRun(db, control, provider);
    assert.equal(await target.writes(), 0);
  });

  test('service accounts are provisioned only while the scope includes them', async (t) => {
    const { db, secrets, target, control, newProvider } = await incrementalWorld(t, { relay: false });
    await createUser(db, person(1));
    const robot = await createUser(db, { ...person(2, 'robot'), kind: 'service_account' });
    const provider = await newProvider();
    await fullSyncRun(db, control, provider);
    const userNames = async () => (await target.users()).map((u) => u.userName).sort();
    assert.deepEqual(await userNames(), ['person1@example.test']);

    const including = await updateProvider(db, secrets, provider.id, {
      scope: { ...provider.scope, includeServiceAccounts: true },
    });
    await fullSyncRun(db, control, including);
    assert.deepEqual(await userNames(), ['person1@example.test', robot.username]);

    const excluding = await updateProvider(db, secrets, provider.id, {
      scope: { ...provider.scope, includeServiceAccounts: false },
    });
    const run = await fullSyncRun(db, control, excluding);
    assert.equal(run.deleted, 1);
    assert.deepEqual(await userNames(), ['person1@example.test'], 'the service account left scope and was deleted');
  });

  test('every workflow of a provider carries its ScimProvider search attribute', async (t) => {
    const { db, client, control, newProvider } = await incrementalWorld(t);
    const provider = await newProvider();
    const other = await newProvider();
    await createUser(db, person(1));
    await fullSyncRun(db, control, provider);
    await fullSyncRun(db, control, other);

    const found = await eventually('the provider workflows listed by ScimProvider', async () => {
      const ids: string[] = [];
      for await (const workflow of client.workflow.list({ query: `ScimProvider = "${provider.slug}"` })) {
        ids.push(workflow.workflowId);
      }
      return ids.includes(`full-sync:${provider.slug}`) && ids.includes(`provider-sync:${provider.slug}`)
        ? ids
        : undefined;
    });
    assert.deepEqual(
      [...new Set(found)].sort(),
      [`full-sync:${provider.slug}`, `provider-sync:${provider.slug}`],
      "no other provider's workflow is listed",
    );
  });
});
