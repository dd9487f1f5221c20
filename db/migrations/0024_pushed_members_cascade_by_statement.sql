-- scimflow schema, version 24: provider_group_members loses its two foreign keys; statement triggers take over their
-- cascades. Each key was checked row by row as a created group's members were recorded: 29.0 ms per 2,000 rows with
-- both, 14.8 without (100 groups of 20 members, 100,000 linked users), and recording them was the largest write of a
-- first sync's groups phase, where PostgreSQL's CPU is what the sync waits for. A deleted group or provider still
-- takes its rows with it, in the statement that deletes it: by one join over the deleted rows, where the group key's
-- cascade scanned the whole table once per deleted group (no index leads with group_id). A row recorded for a group
-- deleted at that very moment is kept unread: every read of the table names an existing group.
ALTER TABLE provider_group_members
  DROP CONSTRAINT provider_group_members_provider_id_fkey,
  DROP CONSTRAINT provider_group_members_group_id_fkey;

-- Forgets what was sent to the groups, or by the providers, that a statement deleted (`deleted`, its transition table).
CREATE FUNCTION forget_pushed_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'groups' THEN
    DELETE FROM provider_group_members p USING deleted d WHERE p.group_id = d.id;
  ELSE
    DELETE FROM provider_group_members p USING deleted d WHERE p.provider_id = d.id;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER groups_forget_pushed_members AFTER DELETE ON groups
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION forget_pushed_members();

CREATE TRIGGER providers_forget_pushed_members AFTER DELETE ON providers
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION forget_pushed_members();
