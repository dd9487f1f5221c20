import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGroup, createUser, type Db } from '../../db/index.ts';
import type { ScimTarget } from '../servers/index.ts';
import { eventually, incrementalWorld, person } from './harness.ts';

/**
 * Adds a group of `members` to the directory, waits until the push that brings it has linked it and ended, and
 * returns that run's counters.
 */
async function pushGroup(db: Db, target: ScimTarget, name: string, members: string[]) {
  const group = await createGroup(db, { name, attributes: {}, members });
  await eventually(`${name} on the target with its members`, async () => {
    const remote = (await target.groups()).find((g) => g.displayName === name);
    return remote?.members?.length === members.length ? true : undefined;
  });
  return eventually(`the push of ${name} linked it and ended`, async () => {
    const { rows } = await db.query<{ id: string; status: string; processed: number }>(
      `SELECT r.id, r.status, r.processed FROM sync_runs r
        WHERE EXISTS (SELECT 1 FROM sync_events e WHERE e.run_id = r.id AND e.local_id = $1)
          AND EXISTS (SELECT 1 FROM provider_links l WHERE l.local_id = $1 AND l.remote_id IS NOT NULL)
          AND r.status <> 'running'`,
      [group.id],
    );
    return rows[0];
  });
}

describe('a retried incremental push', () => {
  test('counts what a push that went through at once counts, and leaves one group on the target', async (t) => {
    const { db, target, newProvider } = await incrementalWorld(t);
    await newProvider();
    const [a, b] = [await createUser(db, person(1)), await createUser(db, person(2))];
    await eventually('both users on the target', async () => ((await target.users()).length === 2 ? true : undefined));

    // The first write of a group's link fails, as a database hiccup would: the push has sent the group and counted
    // what it processed by then, and Temporal runs the push again with the same run.
    await db.query(`
      CREATE SEQUENCE link_hiccup;
      CREATE FUNCTION link_hiccup() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.object_type = 'group' AND nextval('link_hiccup') = 1 THEN RAISE EXCEPTION 'database hiccup'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER link_hiccup BEFORE INSERT OR UPDATE ON provider_links
        FOR EACH ROW EXECUTE FUNCTION link_hiccup();`);
    const retried = await pushGroup(db, target, 'team', [a.id, b.id]);
    const { rows: hiccups } = await db.query<{ last_value: string }>('SELECT last_value FROM link_hiccup');
    assert.ok(Number(hiccups[0]!.last_value) >= 2, 'the push was attempted again after the hiccup');

    // The same change again, with nothing failing.
    const atOnce = await pushGroup(db, target, 'crew', [a.id, b.id]);

    assert.equal(retried.status, 'succeeded');
    assert.equal(atOnce.status, 'succeeded');
    assert.equal(retried.processed, atOnce.processed);
    assert.equal((await target.groups()).filter((g) => g.displayName === 'team').length, 1);
  });
});
